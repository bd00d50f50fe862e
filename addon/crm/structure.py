"""Admin changes to a workspace's structure: folders and fields; services flush, never commit.

Every change is audit-logged ("folder_change" / "field_change") with before and after.
Keys never change once made: formulas, saved views, CSV mappings, link options and the
record services refer to folders and fields by key, so renaming only touches names/labels.

Changing a field's type converts the stored values in place with `convert_value`. A value
the new type cannot read is KEPT in its row unchanged and listed in the report (record,
value, reason), so nothing is lost. Afterwards such a value shows as its raw text (the
field type's `display_for` falls back to `str(value)`), is indexed as plain text for views,
and the record's edit form refuses it until someone corrects it. The audit entry of the
change lists the records that kept an unconverted value.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.crm.audit import record_audit
from addon.crm.fields import (
    FORMULA_INPUT_TYPES,
    FieldError,
    FieldType,
    check_formula_references,
    convert_value,
    field_type,
    parse_formula,
    validate_options,
)
from addon.crm.fieldtypes_base import clean_line
from addon.crm.models import FieldDef, FieldValue, Folder, Member, Record, RecordRelation
from addon.crm.records import RecordNotFound, compute_formula, reindex_record, runtime_options
from addon.crm.workspaces import folders_by_key
from addon.digits import ascii_digits
from addon.ledger.models import RecordStats
from addon.ledger.stats import METRIC_COLUMNS

MAX_ACTIVE_FOLDERS = 30
MAX_FIELDS_PER_FOLDER = 100
MAX_NAME_CHARS = 100
DEFAULT_FOLDER_KEYS = frozenset({"contacts", "companies", "deals"})
# The record services depend on these: titles come from the name fields, contacts are
# matched by email and companies by domain. They can be renamed, never retyped or hidden.
PROTECTED_FIELDS = frozenset(
    {("contacts", "first_name"), ("contacts", "last_name"), ("contacts", "emails")}
    | {("companies", "domain"), ("companies", "name"), ("deals", "name")}
)
# Links and users hold ids of records and members: no other type can hold those.
REFERENCE_TYPES = frozenset({"link", "user"})
CHOICE_TYPES = frozenset({"dropdown", "multidropdown"})
# save_record normalises any field keyed "domain" as a web domain and indexes it for
# company matching, so a new field never gets that key by accident.
RESERVED_FIELD_KEYS = frozenset({"domain"})
# Options that keep their meaning when a field changes between these types.
_PORTABLE_OPTIONS = ("choices", "decimals", "max_length", "default_currency")
_BATCH = 500

_Ordered = TypeVar("_Ordered", Folder, FieldDef)


class StructureError(ValueError):
    """A structure change that is refused; the message is meant for the admin."""


@dataclass(frozen=True)
class KeptValue:
    """A stored value the new field type could not read; it stays as it was."""

    record_id: int
    title: str
    value: Any
    reason: str


@dataclass
class TypeChangeReport:
    """What a type change did to the stored values of one field."""

    field_id: int
    label: str
    from_type: str
    to_type: str
    converted: int = 0
    cleared: int = 0
    kept: list[KeptValue] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line for the audit log and the report card."""
        text = (
            f"Changed “{self.label}” from {self.from_type} to {self.to_type}: "
            f"{self.converted} value{'s' if self.converted != 1 else ''} converted"
        )
        if self.cleared:
            text += f", {self.cleared} became empty"
        return text + f", {len(self.kept)} kept unconverted"


# ------------------------------------------------------------------------------ lookups


def _int_id(value: int | str) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    # Keys are 32-bit integers on PostgreSQL; larger ids cannot exist.
    return number if 0 < number < 2**31 else None


def get_folder(session: Session, workspace_id: int, folder_id: int | str) -> Folder:
    """The folder with this id in this workspace, or RecordNotFound (as for records)."""
    number = _int_id(folder_id)
    folder = session.get(Folder, number) if number is not None else None
    if folder is None or folder.workspace_id != workspace_id:
        raise RecordNotFound(folder_id)
    return folder


def get_field(session: Session, workspace_id: int, field_id: int | str) -> FieldDef:
    """The field definition with this id in this workspace, or RecordNotFound."""
    number = _int_id(field_id)
    fdef = session.get(FieldDef, number) if number is not None else None
    if fdef is None or fdef.workspace_id != workspace_id:
        raise RecordNotFound(field_id)
    return fdef


def list_folders(session: Session, workspace_id: int) -> list[Folder]:
    """All folders of a workspace, inactive ones included, in display order."""
    return list(
        session.execute(
            select(Folder)
            .where(Folder.workspace_id == workspace_id)
            .order_by(Folder.position, Folder.id)
        ).scalars()
    )


def all_fields(session: Session, folder: Folder) -> list[FieldDef]:
    """All fields of a folder, inactive ones included, in display order."""
    return list(
        session.execute(
            select(FieldDef)
            .where(FieldDef.folder_id == folder.id)
            .order_by(FieldDef.position, FieldDef.id)
        ).scalars()
    )


def field_counts(session: Session, workspace_id: int) -> dict[int, int]:
    """Number of active fields per folder id."""
    rows = session.execute(
        select(FieldDef.folder_id, func.count())
        .where(FieldDef.workspace_id == workspace_id, FieldDef.active.is_(True))
        .group_by(FieldDef.folder_id)
    )
    return {folder_id: int(count) for folder_id, count in rows}


def value_count(session: Session, fdef: FieldDef) -> int:
    """How many records hold a value in this field."""
    if fdef.type == "link":
        query = select(func.count(func.distinct(RecordRelation.from_record_id))).where(
            RecordRelation.field_id == fdef.id
        )
    elif fdef.type == "stats":
        # Read from the records' email stats (stats fields store no values).
        column = METRIC_COLUMNS[str(fdef.options.get("metric"))]
        query = (
            select(func.count())
            .select_from(RecordStats)
            .join(Record, Record.id == RecordStats.record_id)
            .where(Record.folder_id == fdef.folder_id, column.is_not(None))
        )
    else:
        query = select(func.count()).select_from(FieldValue).where(FieldValue.field_id == fdef.id)
    return int(session.execute(query).scalar_one())


def is_protected(folder: Folder, fdef: FieldDef) -> bool:
    """Whether the field can be renamed only (never retyped or deactivated)."""
    return (folder.key, fdef.key) in PROTECTED_FIELDS or (
        folder.key not in DEFAULT_FOLDER_KEYS and fdef.key == "name"
    )


def formulas_using(fields: Iterable[FieldDef], key: str) -> list[FieldDef]:
    """Active formula fields whose expression refers to the field with this key."""
    found: list[FieldDef] = []
    for fdef in fields:
        if fdef.type != "formula" or not fdef.active:
            continue
        try:
            references = parse_formula(fdef.options.get("expression", "")).references
        except FieldError:
            continue
        if key in references:
            found.append(fdef)
    return found


# ------------------------------------------------------------------------------ helpers


def _sentence(message: str) -> str:
    text = message.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _clean_name(text: str, what: str) -> str:
    name = clean_line(text or "")
    if not name:
        raise StructureError(f"Enter a {what}.")
    if len(name) > MAX_NAME_CHARS:
        raise StructureError(f"The {what} is longer than {MAX_NAME_CHARS} characters.")
    return name


def derive_key(text: str, taken: Collection[str], fallback: str) -> str:
    """A lowercase identifier from a name ("Support tickets" -> support_tickets), unique.

    Keys are formula identifiers ([a-z_][a-z0-9_]*), so "2nd phone" becomes f_2nd_phone.
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")[:40].rstrip("_")
    slug = slug or fallback
    if slug[0].isdigit():
        slug = "f_" + slug
    key, number = slug, 2
    while key in taken:
        key = f"{slug}_{number}"
        number += 1
    return key


def _singular_of(name: str) -> str:
    # "Support tickets" -> "Support ticket"; anything else stays as typed.
    if name.endswith("s") and not name.endswith("ss") and len(name) > 1:
        return name[:-1]
    return name


def _same_workspace(member: Member, *rows: Folder | FieldDef) -> None:
    for row in rows:
        if row.workspace_id != member.workspace_id:
            raise RecordNotFound(row.id)


def _folder_of(session: Session, member: Member, fdef: FieldDef) -> Folder:
    _same_workspace(member, fdef)
    return get_folder(session, member.workspace_id, fdef.folder_id)


def _folder_state(folder: Folder) -> dict[str, Any]:
    return {
        "key": folder.key,
        "name": folder.name,
        "singular": folder.singular,
        "position": folder.position,
        "active": folder.active,
    }


def _field_state(fdef: FieldDef) -> dict[str, Any]:
    return {
        "key": fdef.key,
        "label": fdef.label,
        "type": fdef.type,
        "options": dict(fdef.options),
        "required": fdef.required,
        "active": fdef.active,
        "position": fdef.position,
    }


def _audit(
    session: Session,
    member: Member,
    action: str,
    folder_id: int,
    summary: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    record_audit(
        session,
        member,
        action,
        workspace_id=member.workspace_id,
        folder_id=folder_id,
        summary=summary,
        before=before,
        after=after,
    )


def _move(items: Sequence[_Ordered], item: _Ordered, direction: int) -> bool:
    """Swap an item with its neighbour; positions are renumbered 0..n-1 first."""
    if direction not in (-1, 1):
        raise StructureError("Move up or down by one place.")
    # Default rows may share positions; renumbering makes the swap well-defined.
    for position, each in enumerate(items):
        each.position = position
    index = next(i for i, each in enumerate(items) if each is item)
    other = index + direction
    if not 0 <= other < len(items):
        return False
    items[index].position, items[other].position = other, index
    return True


def _options_error(exc: FieldError, type_name: str = "") -> StructureError:
    message = str(exc)
    # Expression errors ("ends too early") need saying what ends too early.
    if type_name == "formula" and not any(w in message for w in ("formula", "option")):
        message = f"the formula {message}"
    return StructureError(_sentence(message))


def _keys(
    ftype: FieldType, value: Any, options: Mapping[str, Any]
) -> tuple[str | None, float | None]:
    text, number = ftype.index_keys(value, options)
    return (text[:255] if text else text), number


# ------------------------------------------------------------------------------ folders


def add_folder(session: Session, member: Member, name: str, singular: str = "") -> Folder:
    """Create a custom folder (with a required Name field) in the member's workspace."""
    clean = _clean_name(name, "folder name")
    one = _clean_name(singular, "singular name") if singular.strip() else _singular_of(clean)
    folders = list_folders(session, member.workspace_id)
    _check_unique(folders, clean, None, "folder named")
    if sum(f.active for f in folders) >= MAX_ACTIVE_FOLDERS:
        raise StructureError(f"A workspace has at most {MAX_ACTIVE_FOLDERS} active folders.")
    folder = Folder(
        workspace_id=member.workspace_id,
        key=derive_key(clean, {f.key for f in folders}, "folder"),
        name=clean,
        singular=one,
        position=max((f.position for f in folders), default=-1) + 1,
    )
    session.add(folder)
    session.flush()
    # Records of every folder but Contacts take their title from the "name" field.
    session.add(
        FieldDef(
            workspace_id=member.workspace_id,
            folder_id=folder.id,
            key="name",
            label="Name",
            type="text",
            options={},
            required=True,
            position=0,
        )
    )
    session.flush()
    _audit(
        session,
        member,
        "folder_change",
        folder.id,
        f"Added folder {clean}",
        None,
        _folder_state(folder),
    )
    return folder


def _check_unique(
    others: Iterable[Folder | FieldDef], name: str, current: Folder | FieldDef | None, what: str
) -> None:
    # Folder names and field labels name CSV columns and form inputs; two alike would be
    # ambiguous, inactive ones included (they can come back).
    for other in others:
        taken = other.name if isinstance(other, Folder) else other.label
        if other is not current and taken.casefold() == name.casefold():
            state = "" if other.active else " (inactive: activate it instead)"
            raise StructureError(f"A {what} “{taken}” already exists{state}.")


def rename_folder(
    session: Session, member: Member, folder: Folder, name: str, singular: str = ""
) -> None:
    """Rename a folder (its key stays, so links and views keep working)."""
    _same_workspace(member, folder)
    clean = _clean_name(name, "folder name")
    one = _clean_name(singular, "singular name") if singular.strip() else _singular_of(clean)
    _check_unique(list_folders(session, member.workspace_id), clean, folder, "folder named")
    before = _folder_state(folder)
    folder.name, folder.singular = clean, one
    session.flush()
    _audit(
        session,
        member,
        "folder_change",
        folder.id,
        f"Renamed folder {before['name']} to {clean}",
        before,
        _folder_state(folder),
    )


def set_folder_active(session: Session, member: Member, folder: Folder, active: bool) -> None:
    """Deactivate (records kept, hidden from lists and forms) or reactivate a folder."""
    _same_workspace(member, folder)
    if folder.active == active:
        return
    if not active and folder.key in DEFAULT_FOLDER_KEYS:
        raise StructureError(f"{folder.name} is a built-in folder and cannot be deactivated.")
    if active:
        folders = list_folders(session, member.workspace_id)
        if sum(f.active for f in folders) >= MAX_ACTIVE_FOLDERS:
            raise StructureError(f"A workspace has at most {MAX_ACTIVE_FOLDERS} active folders.")
    before = _folder_state(folder)
    folder.active = active
    session.flush()
    verb = "Reactivated" if active else "Deactivated"
    _audit(
        session,
        member,
        "folder_change",
        folder.id,
        f"{verb} folder {folder.name}",
        before,
        _folder_state(folder),
    )


def move_folder(session: Session, member: Member, folder: Folder, direction: int) -> bool:
    """Move a folder one place up (-1) or down (+1); False when it is already at the end."""
    _same_workspace(member, folder)
    folders = list_folders(session, member.workspace_id)
    before = _folder_state(folder)
    if not _move(folders, folder, direction):
        return False
    session.flush()
    _audit(
        session,
        member,
        "folder_change",
        folder.id,
        f"Moved folder {folder.name} {'up' if direction < 0 else 'down'}",
        before,
        _folder_state(folder),
    )
    return True


# ------------------------------------------------------------------------------- fields


def _check_formula(expression: str, fields: Iterable[FieldDef]) -> None:
    try:
        check_formula_references(
            parse_formula(expression), {f.key: f.type for f in fields if f.active}
        )
    except FieldError as exc:
        raise _options_error(exc, "formula") from None


def _check_link_target(session: Session, workspace_id: int, key: str) -> None:
    target = folders_by_key(session, workspace_id).get(key)
    if target is None or not target.active:
        raise StructureError(f"Links must point to an active folder; “{key}” is not one.")


def add_field(
    session: Session,
    member: Member,
    folder: Folder,
    label: str,
    type_name: str,
    options: Mapping[str, Any] | None = None,
    required: bool = False,
) -> FieldDef:
    """Add a field to a folder; its key is derived from the label and never changes."""
    _same_workspace(member, folder)
    clean = _clean_name(label, "field label")
    fields = all_fields(session, folder)
    _check_unique(fields, clean, None, "field labelled")
    if sum(f.active for f in fields) >= MAX_FIELDS_PER_FOLDER:
        raise StructureError(f"A folder has at most {MAX_FIELDS_PER_FOLDER} active fields.")
    try:
        ftype = field_type(type_name)
        clean_options = validate_options(type_name, options)
    except FieldError as exc:
        raise _options_error(exc, type_name) from None
    if type_name == "link":
        _check_link_target(session, member.workspace_id, clean_options["folder"])
    if type_name == "formula":
        _check_formula(clean_options["expression"], fields)
    if required and ftype.read_only:
        raise StructureError(f"{type_name.capitalize()} fields are computed; never required.")
    fdef = FieldDef(
        workspace_id=member.workspace_id,
        folder_id=folder.id,
        key=derive_key(clean, {f.key for f in fields} | RESERVED_FIELD_KEYS, "field"),
        label=clean,
        type=type_name,
        options=clean_options,
        required=required,
        active=True,
        position=max((f.position for f in fields), default=-1) + 1,
        next_number=int(clean_options.get("start", 1)) if type_name == "autonumber" else 1,
    )
    session.add(fdef)
    session.flush()
    if type_name == "formula":
        # Existing records get the new formula's value now, not at their next edit.
        recompute_formulas(session, folder)
    _audit(
        session,
        member,
        "field_change",
        folder.id,
        f"Added field {clean} ({type_name}) to {folder.name}",
        None,
        _field_state(fdef),
    )
    return fdef


def rename_field(session: Session, member: Member, fdef: FieldDef, label: str) -> None:
    """Change a field's label (its key stays, so formulas and views keep working)."""
    folder = _folder_of(session, member, fdef)
    clean = _clean_name(label, "field label")
    _check_unique(all_fields(session, folder), clean, fdef, "field labelled")
    if clean == fdef.label:
        return
    before = _field_state(fdef)
    fdef.label = clean
    session.flush()
    _audit(
        session,
        member,
        "field_change",
        folder.id,
        f"Renamed field {before['label']} to {clean} in {folder.name}",
        before,
        _field_state(fdef),
    )


def move_field(session: Session, member: Member, fdef: FieldDef, direction: int) -> bool:
    """Move a field one place up (-1) or down (+1); False when it is already at the end."""
    folder = _folder_of(session, member, fdef)
    before = _field_state(fdef)
    if not _move(all_fields(session, folder), fdef, direction):
        return False
    session.flush()
    _audit(
        session,
        member,
        "field_change",
        folder.id,
        f"Moved field {fdef.label} {'up' if direction < 0 else 'down'} in {folder.name}",
        before,
        _field_state(fdef),
    )
    return True


def set_field_active(session: Session, member: Member, fdef: FieldDef, active: bool) -> None:
    """Deactivate a field (its values are kept, it leaves forms and cards) or reactivate it."""
    folder = _folder_of(session, member, fdef)
    if fdef.active == active:
        return
    fields = all_fields(session, folder)
    if not active:
        if is_protected(folder, fdef):
            raise StructureError(f"{fdef.label} is needed by the CRM and cannot be deactivated.")
        users = formulas_using(fields, fdef.key)
        if users:
            raise StructureError(
                f"The formula “{users[0].label}” uses {fdef.label}; change or deactivate "
                "that formula first."
            )
    else:
        if sum(f.active for f in fields) >= MAX_FIELDS_PER_FOLDER:
            raise StructureError(f"A folder has at most {MAX_FIELDS_PER_FOLDER} active fields.")
        if fdef.type == "formula":
            _check_formula(str(fdef.options.get("expression", "")), fields)
        if fdef.type == "link":
            _check_link_target(session, member.workspace_id, str(fdef.options.get("folder")))
    before = _field_state(fdef)
    fdef.active = active
    session.flush()
    if active and fdef.type == "formula":
        # Values changed while it was inactive; bring its results up to date.
        recompute_formulas(session, folder)
    verb = "Reactivated" if active else "Deactivated"
    _audit(
        session,
        member,
        "field_change",
        folder.id,
        f"{verb} field {fdef.label} in {folder.name}",
        before,
        _field_state(fdef),
    )


def records_missing(session: Session, folder: Folder, fdef: FieldDef) -> int:
    """How many records of the folder hold no value in this field."""
    total = session.execute(
        select(func.count()).select_from(Record).where(Record.folder_id == folder.id)
    ).scalar_one()
    return int(total) - value_count(session, fdef)


def set_field_required(session: Session, member: Member, fdef: FieldDef, required: bool) -> int:
    """Mark a field required or optional; returns how many records lack a value today.

    Those records are not touched; save_record asks for the value at their next edit.
    """
    folder = _folder_of(session, member, fdef)
    if required and field_type(fdef.type).read_only:
        raise StructureError(f"{fdef.label} is computed; it cannot be required.")
    missing = records_missing(session, folder, fdef) if required else 0
    if fdef.required == required:
        return missing
    before = _field_state(fdef)
    fdef.required = required
    session.flush()
    _audit(
        session,
        member,
        "field_change",
        folder.id,
        f"Made field {fdef.label} in {folder.name} {'required' if required else 'optional'}",
        before,
        {**_field_state(fdef), "records_missing": missing},
    )
    return missing


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _recoded(value: Any, renamed: Mapping[str, str], order: Sequence[str]) -> Any:
    if isinstance(value, str):
        return renamed.get(value, value)
    if isinstance(value, list):
        items = list(dict.fromkeys(renamed.get(str(v), str(v)) for v in value))
        # Choices keep the admin's order; values no longer offered go last, untouched.
        known = [c for c in order if c in items]
        return known + [v for v in items if v not in order]
    return value


def _holds_unknown(value: Any, choices: Collection[str]) -> bool:
    items = value if isinstance(value, list) else [value]
    return any(str(item) not in choices for item in items)


def set_dropdown_choices(
    session: Session, member: Member, fdef: FieldDef, choices: Sequence[str]
) -> int:
    """Replace a dropdown's choices; returns how many records hold a choice no longer offered.

    Those values are kept as they are (shown as stored). A choice only re-cased or
    re-spaced ("lead" -> "Lead") counts as renamed and its stored values follow it.
    """
    folder = _folder_of(session, member, fdef)
    if fdef.type not in CHOICE_TYPES:
        raise StructureError(f"{fdef.label} is not a dropdown field.")
    try:
        options = validate_options(fdef.type, {**fdef.options, "choices": list(choices)})
    except FieldError as exc:
        raise _options_error(exc) from None
    new = list(options["choices"])
    old = [str(c) for c in fdef.options.get("choices") or []]
    renamed = {o: n for o in old for n in new if o != n and _fold(o) == _fold(n)}
    before = _field_state(fdef)
    fdef.options = options
    ftype = field_type(fdef.type)
    orphaned = 0
    for row in session.execute(select(FieldValue).where(FieldValue.field_id == fdef.id)).scalars():
        value = _recoded(row.value, renamed, new)
        if value != row.value:
            row.value = value
        # Dropdown sort keys are positions among the choices, which may have moved.
        row.text_key, row.num_key = _keys(ftype, value, options)
        if _holds_unknown(value, new):
            orphaned += 1
    session.flush()
    _audit(
        session,
        member,
        "field_change",
        folder.id,
        f"Changed the choices of {fdef.label} in {folder.name}"
        + (f" ({orphaned} records hold removed choices)" if orphaned else ""),
        before,
        {**_field_state(fdef), "records_with_removed_choices": orphaned},
    )
    return orphaned


# ---------------------------------------------------------------------------- formulas


def recompute_formulas(session: Session, folder: Folder) -> int:
    """Recompute every active formula field for every record of a folder; returns changes."""
    fields = [f for f in all_fields(session, folder) if f.active and f.type != "link"]
    formulas = [f for f in fields if f.type == "formula"]
    if not formulas:
        return 0
    key_of = {f.id: f.key for f in fields}
    formula_ids = {f.id for f in formulas}
    formula_type = field_type("formula")
    record_ids = list(
        session.execute(
            select(Record.id).where(Record.folder_id == folder.id).order_by(Record.id)
        ).scalars()
    )
    changed = 0
    for start in range(0, len(record_ids), _BATCH):
        batch = record_ids[start : start + _BATCH]
        values: dict[int, dict[str, Any]] = {rid: {} for rid in batch}
        rows: dict[tuple[int, int], FieldValue] = {}
        for row in session.execute(
            select(FieldValue).where(
                FieldValue.record_id.in_(batch), FieldValue.field_id.in_(list(key_of))
            )
        ).scalars():
            values[row.record_id][key_of[row.field_id]] = row.value
            if row.field_id in formula_ids:
                rows[(row.record_id, row.field_id)] = row
        for rid in batch:
            # In field order, as save_record does, so a formula may use an earlier one.
            for fdef in formulas:
                result = compute_formula(fdef, fields, values[rid])
                values[rid][fdef.key] = result
                current = rows.get((rid, fdef.id))
                if (current.value if current is not None else None) == result:
                    continue
                changed += 1
                if result is None:
                    if current is not None:
                        session.delete(current)
                    continue
                text_key, num_key = _keys(formula_type, result, fdef.options)
                if current is None:
                    session.add(
                        FieldValue(
                            workspace_id=folder.workspace_id,
                            record_id=rid,
                            field_id=fdef.id,
                            value=result,
                            text_key=text_key,
                            num_key=num_key,
                        )
                    )
                else:
                    current.value, current.text_key, current.num_key = result, text_key, num_key
        session.flush()
    return changed


# --------------------------------------------------------------------------- type change


def _default_choices(rows: Iterable[tuple[FieldValue, str]], source: FieldType) -> list[str]:
    """The distinct values in use, as choices for a field becoming a dropdown."""
    seen: dict[str, str] = {}
    for row, _title in rows:
        items = row.value if isinstance(row.value, list) else [row.value]
        for item in items:
            text = clean_line(source.display(item) if not isinstance(item, str) else item)
            if text and "|" not in text and len(text) <= 100:
                seen.setdefault(text.casefold(), text)
    return list(seen.values())


def _new_options(
    fdef: FieldDef,
    new_type: str,
    given: Mapping[str, Any] | None,
    rows: list[tuple[FieldValue, str]],
) -> dict[str, Any]:
    target = field_type(new_type)
    carried = {k: fdef.options[k] for k in _PORTABLE_OPTIONS if k in fdef.options}
    options = {k: v for k, v in carried.items() if k in target.option_rules}
    options.update(given or {})
    if new_type in CHOICE_TYPES and "choices" not in options:
        # A text field becoming a dropdown offers the values already in use.
        choices = _default_choices(rows, field_type(fdef.type))
        if not choices:
            raise StructureError("List the dropdown's choices.")
        if len(choices) > 100:
            raise StructureError(
                f"{fdef.label} holds {len(choices)} different values; a dropdown offers at "
                "most 100. List the choices to keep."
            )
        options["choices"] = choices
    try:
        return validate_options(new_type, options)
    except FieldError as exc:
        raise _options_error(exc) from None


def change_field_type(
    session: Session,
    member: Member,
    fdef: FieldDef,
    new_type: str,
    new_options: Mapping[str, Any] | None = None,
) -> TypeChangeReport:
    """Change a field's type, converting every stored value in this one transaction.

    Options portable to the new type (choices, decimals ...) are carried over unless
    given. Values that convert are rewritten with new view keys; values that cannot are
    kept unchanged and listed in the report. Links, users and computed types are refused.
    """
    folder = _folder_of(session, member, fdef)
    old_type = fdef.type
    if is_protected(folder, fdef):
        raise StructureError(f"{fdef.label} is needed by the CRM; its type cannot change.")
    try:
        target = field_type(new_type)
    except FieldError as exc:
        raise _options_error(exc) from None
    if new_type == old_type:
        raise StructureError(f"{fdef.label} already is a {new_type} field.")
    if old_type in REFERENCE_TYPES or new_type in REFERENCE_TYPES:
        raise StructureError(
            "Link and user fields hold references to records and members; "
            f"{old_type} values cannot become {new_type} values."
        )
    if target.read_only:
        raise StructureError(
            f"{new_type.capitalize()} values are computed, not entered; add a new field instead."
        )
    if old_type == "stats":
        raise StructureError("Email statistics are computed from mail; their type cannot change.")
    fields = all_fields(session, folder)
    users = formulas_using(fields, fdef.key)
    if users and new_type not in FORMULA_INPUT_TYPES:
        raise StructureError(
            f"The formula “{users[0].label}” uses {fdef.label}, so it must stay a number or date."
        )
    rows = [
        (row, title)
        for row, title in session.execute(
            select(FieldValue, Record.title)
            .join(Record, Record.id == FieldValue.record_id)
            .where(FieldValue.field_id == fdef.id)
            .order_by(FieldValue.record_id)
        )
    ]
    options = _new_options(fdef, new_type, new_options, rows)
    settings = member.workspace.settings
    # Parsing reads the workspace context (phone region, time zone) as forms do.
    from_options = runtime_options(fdef, settings)
    to_options = {**options, **{k: v for k, v in from_options.items() if k.startswith("_")}}
    report = TypeChangeReport(fdef.id, fdef.label, old_type, new_type)
    before = _field_state(fdef)
    for row, title in rows:
        try:
            value = convert_value(
                row.value, old_type, new_type, to_options, from_options=from_options
            )
        except FieldError as exc:
            report.kept.append(KeptValue(row.record_id, title, row.value, _sentence(str(exc))))
            # Kept as stored; indexed the way the new type indexes what it cannot read.
            row.text_key, row.num_key = _keys(target, row.value, options)
            continue
        if value is None:
            report.cleared += 1
            session.delete(row)
            continue
        report.converted += 1
        row.value = value
        row.text_key, row.num_key = _keys(target, value, options)
    fdef.type, fdef.options = new_type, options
    session.flush()
    if {old_type, new_type} & {"email", "phone"}:
        # The email and phone indexes (matching, duplicates) follow the field's type.
        for row, _title in rows:
            record = session.get(Record, row.record_id)
            if record is not None:
                reindex_record(session, record)
    if users:
        recompute_formulas(session, folder)
    _audit(
        session,
        member,
        "field_change",
        folder.id,
        report.summary,
        before,
        {
            **_field_state(fdef),
            "converted": report.converted,
            "cleared": report.cleared,
            "kept": [{"record_id": k.record_id, "value": k.value} for k in report.kept[:200]],
        },
    )
    return report


# --------------------------------------------------------------------------- form input


def options_from_inputs(
    type_name: str,
    *,
    choices: str = "",
    folder: str = "",
    many: str = "",
    currency: str = "",
    expression: str = "",
    decimals: str = "",
) -> dict[str, Any]:
    """Options for a type from the admin form's text inputs; inputs of other types are ignored.

    Blank inputs give no option, so a type's own defaults (or carried options) apply.
    """
    options: dict[str, Any] = {}
    if type_name in CHOICE_TYPES and choices.strip():
        options["choices"] = [line for line in choices.splitlines() if line.strip()]
    if type_name == "link":
        if folder.strip():
            options["folder"] = folder.strip()
        options["many"] = many == "true"
    if type_name == "currency" and currency.strip():
        options["default_currency"] = currency.strip()
    if type_name == "formula" and expression.strip():
        options["expression"] = expression.strip()
    if type_name in ("number", "percent", "formula") and decimals.strip():
        if not ascii_digits(decimals.strip()):
            raise StructureError("Decimals must be a whole number from 0 to 10.")
        options["decimals"] = int(decimals.strip())
    return options
