"""Mass update: set, clear or add to one field on every record of a saved view, in one go.

The value is parsed once, through the field's type, before anything is written; then every
record goes through `save_record` (required fields, normalisation, indexes, per-record
audit) inside one savepoint, so a record that breaks a rule undoes the whole update. A
summary audit entry names the view, field, mode, value and count. The count the user
confirmed in the preview is checked against the view as it is when applying.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from addon.crm.audit import record_audit
from addon.crm.fields import FieldError, field_type
from addon.crm.models import (
    AuditEntry,
    FieldDef,
    FieldValue,
    Folder,
    Member,
    Record,
    RecordRelation,
    SavedView,
)
from addon.crm.records import (
    FormResolver,
    RecordNotFound,
    ValidationError,
    find_member_id,
    get_record,
    normalise_domain,
    runtime_options,
    save_record,
)
from addon.crm.views import ViewError, count_view, load_definition, view_record_ids
from addon.crm.workspaces import folder_fields, folders_by_key

MAX_RECORDS = 10_000
# How a mode reads in a sentence ("set Owner to …", "clear Owner", "add gold to Tags").
MODES = {"set": "Set to", "clear": "Clear", "add": "Add to"}
# Types holding several values, which "add" extends; many-links are added to as well.
_MULTI_TYPES = frozenset({"multidropdown", "email", "phone", "social"})
# Records loaded per statement: well below SQLite's bound-parameter limit.
_CHUNK = 500
_COMPUTED = {
    "autonumber": "numbers are assigned automatically",
    "formula": "it is calculated from a formula",
    "stats": "it is computed from email activity",
}


class MassUpdateError(ValueError):
    """A mass update that cannot run; the message says why (and names the record at fault)."""


@dataclass(frozen=True)
class MassUpdatePreview:
    """What applying would do: how many records, which value (as text), or why it cannot."""

    view: SavedView
    folder: Folder
    field: FieldDef | None
    mode: str
    count: int
    value: Any = None
    value_text: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the update can be applied as previewed."""
        return self.error is None and self.field is not None

    def sentence(self) -> str:
        """ "set Owner to bob@acme.test on 1,000 contacts"."""
        if self.field is None:
            return ""
        return describe(self.mode, self.field, self.value_text, self.count, self.folder)


@dataclass(frozen=True)
class MassUpdateResult:
    """A mass update that was applied."""

    count: int  # records of the view
    changed: int  # records whose value changed (the others already had it)
    field: FieldDef
    mode: str
    value_text: str
    audit: AuditEntry


@dataclass(frozen=True)
class _Plan:
    """A validated request: the field, the parsed value and what the view selects."""

    view: SavedView
    folder: Folder
    field: FieldDef
    mode: str
    value: Any
    value_text: str
    ids_query: Select[int]
    count: int


def records_phrase(count: int, folder: Folder) -> str:
    """ "1,000 contacts", "1 contact"."""
    noun = folder.singular.lower() if count == 1 else folder.name.lower()
    return f"{count:,} {noun}"


def describe(mode: str, fdef: FieldDef, value_text: str, count: int, folder: Folder) -> str:
    """The update in words: "set Owner to bob@acme.test on 1,000 contacts"."""
    where = f"on {records_phrase(count, folder)}"
    if mode == "clear":
        return f"clear {fdef.label} {where}"
    if mode == "add":
        return f"add {value_text} to {fdef.label} {where}"
    return f"set {fdef.label} to {value_text} {where}"


def is_multi_valued(fdef: FieldDef) -> bool:
    """Whether a field holds several values, so that "add" makes sense for it."""
    if fdef.type == "link":
        return bool(fdef.options.get("many"))
    return fdef.type in _MULTI_TYPES


def editable_fields(
    session: Session, folder: Folder, member: Member | None = None
) -> list[FieldDef]:
    """The folder's fields a mass update (by `member`) may change: computed fields are
    excluded, and locked fields unless the member is an admin."""
    return [
        f
        for f in folder_fields(session, folder.id)
        if not field_type(f.type).read_only
        and not (f.locked and member is not None and member.role != "admin")
    ]


def modes_for(fdef: FieldDef | None) -> list[str]:
    """The modes a field allows: set and clear, and add for multi-valued fields."""
    if fdef is None or is_multi_valued(fdef):
        return list(MODES)
    return ["set", "clear"]


def _raw(raw_value: Sequence[str] | str | None) -> list[str]:
    if raw_value is None:
        return []
    if isinstance(raw_value, str):
        return [raw_value]
    return [str(v) for v in raw_value]


def _resolve_links(
    session: Session, member: Member, fdef: FieldDef, items: list[str]
) -> tuple[list[int], list[str]]:
    """Ids and titles of existing records of the link's folder named by "#id" or exact title."""
    target_key = str(fdef.options.get("folder"))
    target = folders_by_key(session, member.workspace_id).get(target_key)
    if target is None:
        raise MassUpdateError(f"{fdef.label} links to a folder that no longer exists")
    ids: list[int] = []
    titles: list[str] = []
    for item in items:
        record: Record | None
        if item.startswith("#"):
            try:
                record = get_record(session, member.workspace_id, item[1:])
            except RecordNotFound:
                record = None
            if record is not None and record.folder_id != target.id:
                record = None
        else:
            # Unlike the record form, a mass update never creates the linked record:
            # a typo would otherwise create it once and link a thousand records to it.
            record = session.execute(
                select(Record)
                .where(
                    Record.workspace_id == member.workspace_id,
                    Record.folder_id == target.id,
                    Record.search_key == " ".join(item.split()).lower(),
                )
                .order_by(Record.id)
                .limit(1)
            ).scalar_one_or_none()
        if record is None:
            raise MassUpdateError(
                f"{fdef.label}: no {target.singular.lower()} “{item}” in this workspace"
            )
        if record.id not in ids:
            ids.append(record.id)
            titles.append(record.title or f"#{record.id}")
    if len(ids) > 1 and not fdef.options.get("many"):
        raise MassUpdateError(f"{fdef.label} takes one record only")
    return ids, titles


def _parse_value(
    session: Session,
    member: Member,
    fdef: FieldDef,
    raw: list[str],
    *,
    locale: str,
    tz: str | None,
) -> tuple[Any, str]:
    """The stored value and its display text, parsed once as save_record would."""
    ftype = field_type(fdef.type)
    options = runtime_options(fdef, member.workspace.settings)
    # What the user typed is read the way they write: their locale and time zone.
    options["_locale"] = locale
    if tz:
        options["_tz"] = tz
    if not any(item.strip() for item in raw):
        raise MassUpdateError(f"enter a value for {fdef.label} (or choose Clear to empty it)")
    try:
        value = ftype.parse(raw, options)
    except FieldError as exc:
        raise MassUpdateError(f"{fdef.label} {exc}") from None
    if value is None:
        raise MassUpdateError(f"enter a value for {fdef.label} (or choose Clear to empty it)")
    if fdef.type == "user":
        text = value[0]
        member_id = find_member_id(session, member.workspace_id, text)
        if member_id is None:
            raise MassUpdateError(f"“{text}” is not a member of this workspace")
        owner = session.get(Member, member_id)
        return member_id, owner.email if owner is not None else f"#{member_id}"
    if fdef.type == "link":
        ids, titles = _resolve_links(session, member, fdef, value)
        return ids, ", ".join(titles)
    if fdef.key == "domain":
        # save_record keeps only the bare host of a domain; so does the preview.
        domain = normalise_domain(str(value))
        if domain is None:
            raise MassUpdateError(f"{fdef.label}: “{value}” is not a domain")
        value = domain
    return value, ftype.display_for(value, locale, tz or options["_tz"], fdef.options)


def _plan(
    session: Session,
    member: Member,
    view: SavedView,
    field_key: str,
    mode: str,
    raw_value: Sequence[str] | str | None,
    *,
    locale: str,
    tz: str | None,
) -> _Plan:
    """Validate everything a mass update needs, reading nothing but the view's count."""
    if view.workspace_id != member.workspace_id:
        raise MassUpdateError("this view does not exist")
    folder = session.get(Folder, view.folder_id)
    if folder is None or folder.workspace_id != member.workspace_id:
        raise MassUpdateError("this view does not exist")
    try:
        definition = load_definition(session, view)
    except ViewError as exc:
        raise MassUpdateError(f"the view “{view.name}” cannot be used: {exc}") from None
    fdef = next((f for f in folder_fields(session, folder.id) if f.key == field_key), None)
    if fdef is None:
        raise MassUpdateError("choose a field to update")
    if fdef.type in _COMPUTED:
        raise MassUpdateError(f"{fdef.label} cannot be changed: {_COMPUTED[fdef.type]}")
    if fdef.locked and member.role != "admin":
        raise MassUpdateError(f"{fdef.label} is locked: only admins can change it")
    if mode not in MODES:
        raise MassUpdateError("choose what to do: set, clear or add to the field")
    if mode == "add" and not is_multi_valued(fdef):
        raise MassUpdateError(f"{fdef.label} holds one value: nothing can be added to it, use Set")
    value: Any = None
    value_text = ""
    if mode != "clear":
        value, value_text = _parse_value(
            session, member, fdef, _raw(raw_value), locale=locale, tz=tz
        )
    count = count_view(session, folder, definition)
    if count > MAX_RECORDS:
        raise MassUpdateError(
            f"the view holds {count:,} records; a mass update changes at most "
            f"{MAX_RECORDS:,} at a time. Narrow the view with another condition."
        )
    ids_query = view_record_ids(session, folder, definition)
    return _Plan(view, folder, fdef, mode, value, value_text, ids_query, count)


def preview_mass_update(
    session: Session,
    member: Member,
    view: SavedView,
    field_key: str,
    mode: str,
    raw_value: Sequence[str] | str | None,
    *,
    locale: str = "en",
    tz: str | None = None,
) -> MassUpdatePreview:
    """How many records the update would change and the value it would write; writes nothing.

    A value the field refuses, a computed field, "add" on a single-valued field or a view
    over the cap come back as `error`.
    """
    try:
        plan = _plan(session, member, view, field_key, mode, raw_value, locale=locale, tz=tz)
    except MassUpdateError as exc:
        folder = session.get(Folder, view.folder_id)
        assert folder is not None  # views reference their folder by foreign key
        fdef = None
        if view.workspace_id == member.workspace_id:
            fdef = next((f for f in folder_fields(session, folder.id) if f.key == field_key), None)
        return MassUpdatePreview(view, folder, fdef, mode, 0, error=_sentence(str(exc)))
    return MassUpdatePreview(
        plan.view, plan.folder, plan.field, plan.mode, plan.count, plan.value, plan.value_text
    )


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _current_values(session: Session, fdef: FieldDef, ids: list[int]) -> dict[int, Any]:
    """The field's stored value per record (link fields: the linked ids)."""
    if fdef.type == "link":
        rows = session.execute(
            select(RecordRelation.from_record_id, RecordRelation.to_record_id)
            .where(RecordRelation.field_id == fdef.id, RecordRelation.from_record_id.in_(ids))
            .order_by(RecordRelation.id)
        )
        links: dict[int, Any] = {}
        for from_id, to_id in rows:
            links.setdefault(from_id, []).append(to_id)
        return links
    rows = session.execute(
        select(FieldValue.record_id, FieldValue.value).where(
            FieldValue.field_id == fdef.id, FieldValue.record_id.in_(ids)
        )
    )
    return {record_id: value for record_id, value in rows}


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _inputs(fdef: FieldDef, value: Any) -> list[str]:
    """The form input save_record reads back as exactly this value."""
    if fdef.type == "link":
        return [f"#{i}" for i in value or []]
    if fdef.type == "user":
        return [f"#{value}"] if value is not None else []
    return field_type(fdef.type).to_input(value)


def _contains(current: Any, added: Any) -> bool:
    """Whether a multi-valued field already holds every value being added."""
    if isinstance(added, dict):
        return isinstance(current, dict) and all(current.get(k) == v for k, v in added.items())
    have = current if isinstance(current, list) else []
    return all(item in have for item in added)


def _form_for(plan: _Plan, current: Any) -> dict[str, list[str]] | None:
    """What save_record gets for one record, or None when the record already matches."""
    fdef, value = plan.field, plan.value
    if plan.mode == "clear":
        # A blank text, not an absent input: an absent checkbox reads as "No", a blank
        # one as "not known", which is what clearing means.
        return None if _empty(current) else {fdef.key: [""]}
    if plan.mode == "add":
        if not _empty(current) and _contains(current, value):
            return None
        # The record's values first, then the new ones: the field type drops duplicates
        # and keeps its own order (dropdown choices in the admin's order).
        return {fdef.key: _inputs(fdef, current) + _inputs(fdef, value)}
    # Link order carries no meaning; every other value compares as stored.
    unchanged = set(current or []) == set(value) if fdef.type == "link" else current == value
    return None if unchanged else {fdef.key: _inputs(fdef, value)}


class _SameValueResolver(FormResolver):
    """Lookups for a mass update: every record gets the same member or linked records, so
    each is looked up once instead of once per record."""

    def __init__(self, session: Session, workspace_id: int) -> None:
        super().__init__(session, workspace_id)
        self._members: dict[str, int | None] = {}
        self._records: dict[str, tuple[int, int] | None] = {}

    def member_id(self, text: str) -> int | None:
        """The member named by "#id" or email address (cached)."""
        if text not in self._members:
            self._members[text] = super().member_id(text)
        return self._members[text]

    def record_by_id(self, text: str) -> tuple[int, int] | None:
        """(id, folder id) of the record with this id (cached)."""
        if text not in self._records:
            self._records[text] = super().record_by_id(text)
        return self._records[text]


def _refusal(record: Record, fields: list[FieldDef], exc: ValidationError) -> MassUpdateError:
    labels = {f.key: f.label for f in fields}
    problems = "; ".join(f"{labels.get(k, k)} {v}" for k, v in exc.errors.items())
    name = record.title or "(no name)"
    return MassUpdateError(
        f"{name} (#{record.id}) cannot be updated: {problems}. Nothing was changed."
    )


def apply_mass_update(
    session: Session,
    member: Member,
    view: SavedView,
    field_key: str,
    mode: str,
    raw_value: Sequence[str] | str | None,
    expected_count: int,
    *,
    locale: str = "en",
    tz: str | None = None,
) -> MassUpdateResult:
    """Apply the update to every record the view selects now, all or nothing; flushes only.

    `expected_count` is the count the user confirmed in the preview: a different count
    now means the view changed, and nothing is done. MassUpdateError says why it refused.
    """
    plan = _plan(session, member, view, field_key, mode, raw_value, locale=locale, tz=tz)
    ids = list(session.execute(plan.ids_query.order_by(Record.id)).scalars())
    if len(ids) > MAX_RECORDS:
        raise MassUpdateError(
            f"the view now holds {len(ids):,} records, more than {MAX_RECORDS:,}. "
            "Narrow the view with another condition."
        )
    if len(ids) != expected_count:
        raise MassUpdateError(
            f"the view changed: {len(ids):,} records now, not {expected_count:,}; preview again"
        )
    fields = folder_fields(session, plan.folder.id)
    resolver = _SameValueResolver(session, member.workspace_id)
    changed = 0
    # One savepoint around every record: the first record that breaks a rule rolls all
    # of them back, whether or not the caller goes on to commit.
    with session.begin_nested():
        for chunk in _chunks(ids):
            current = _current_values(session, plan.field, chunk)
            records = session.execute(
                select(Record).where(Record.id.in_(chunk)).order_by(Record.id)
            ).scalars()
            for record in records:
                form = _form_for(plan, current.get(record.id))
                if form is None:
                    continue
                try:
                    save_record(
                        session,
                        member,
                        plan.folder,
                        form,
                        record,
                        source="mass update",
                        fields=fields,
                        resolver=resolver,
                    )
                except ValidationError as exc:
                    raise _refusal(record, fields, exc) from None
                changed += 1
    summary = describe(plan.mode, plan.field, plan.value_text, len(ids), plan.folder)
    entry = record_audit(
        session,
        member,
        "mass_update",
        workspace_id=member.workspace_id,
        folder_id=plan.folder.id,
        summary=f"Mass update of view “{plan.view.name}”: {summary} ({changed:,} changed)",
        after={
            "view_id": plan.view.id,
            "view": plan.view.name,
            "field": plan.field.key,
            "mode": plan.mode,
            "value": plan.value,
            "value_text": plan.value_text,
            "count": len(ids),
            "changed": changed,
        },
    )
    return MassUpdateResult(len(ids), changed, plan.field, plan.mode, plan.value_text, entry)
