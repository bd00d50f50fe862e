"""Admin actions for folders and fields: thin handlers over addon.crm.structure.

Every action needs the "admin" permission, viewing included. Ids in parameters are looked
up in the caller's workspace only (another workspace's id answers 403, as for records).
Refused input redraws the same card with the message, and the transaction is rolled back
so nothing half-done is committed. Entry point: `admin_structure` (linked from Settings).
"""

from __future__ import annotations

from typing import Any

from flask import g

from addon.cards import settings as cards
from addon.cards.responses import pop_and_update, push, update
from addon.crm.models import FieldDef, Folder
from addon.crm.structure import (
    CHOICE_TYPES,
    StructureError,
    TypeChangeReport,
    add_field,
    add_folder,
    all_fields,
    change_field_type,
    field_counts,
    get_field,
    get_folder,
    list_folders,
    move_field,
    move_folder,
    options_from_inputs,
    rename_field,
    rename_folder,
    set_dropdown_choices,
    set_field_active,
    set_field_required,
    set_folder_active,
    value_count,
)
from addon.web.events import AddonRequest
from addon.web.registry import Result, action

Card = dict[str, Any]


# ------------------------------------------------------------------------------ helpers


def _folder(req: AddonRequest) -> Folder:
    return get_folder(req.session, req.member.workspace_id, req.param("folder_id"))


def _field(req: AddonRequest) -> tuple[FieldDef, Folder]:
    fdef = get_field(req.session, req.member.workspace_id, req.param("field_id"))
    return fdef, get_folder(req.session, req.member.workspace_id, fdef.folder_id)


def _page(req: AddonRequest) -> int:
    text = req.param("page", "0")
    return int(text) if text.isdigit() and len(text) < 6 else 0


def _typed(req: AddonRequest) -> dict[str, str]:
    """The form as typed (first value of each input), to show it again after an error."""
    return {name: values[0] if values else "" for name, values in req.form.items()}


def _refused(response: dict[str, Any]) -> dict[str, Any]:
    # Whatever a service flushed before refusing must not be committed.
    g.db_rollback = True
    return response


def _shown(req: AddonRequest, built: Card, *, notify: str | None = None) -> dict[str, Any]:
    """Answer with a card the way the button asked: push (default), update, or pop + update."""
    nav = req.param("nav")
    if nav == "pop":
        return pop_and_update(built, notify=notify)
    if nav == "update":
        return update(built, notify=notify)
    return push(built, notify=notify)


def _structure_card(req: AddonRequest, *, error: str | None = None) -> Card:
    folders = list_folders(req.session, req.member.workspace_id)
    counts = field_counts(req.session, req.member.workspace_id)
    values = _typed(req) if error else None
    return cards.structure_card(req.actions, folders, counts, error=error, values=values)


def _folder_card(
    req: AddonRequest, folder: Folder, *, error: str | None = None, typed: bool = False
) -> Card:
    fields = all_fields(req.session, folder)
    values = _typed(req) if typed else None
    return cards.folder_card(
        req.actions, folder, fields, page=_page(req), error=error, values=values
    )


def _new_field_card(req: AddonRequest, folder: Folder, *, error: str | None = None) -> Card:
    targets = [f for f in list_folders(req.session, req.member.workspace_id) if f.active]
    values = _typed(req) if error else None
    return cards.new_field_card(req.actions, folder, targets, error=error, values=values)


def _edit_card(
    req: AddonRequest, fdef: FieldDef, folder: Folder, *, error: str | None = None
) -> Card:
    return cards.edit_field_card(
        req.actions,
        folder,
        fdef,
        values_count=value_count(req.session, fdef),
        page=_page(req),
        error=error,
        values=_typed(req) if error else None,
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' if count != 1 else ''}"


# ------------------------------------------------------------------------------ folders


@action("admin_structure", "admin")
def admin_structure(req: AddonRequest) -> Result:
    """The Folders and fields card."""
    return _shown(req, _structure_card(req))


@action("admin_add_folder", "admin")
def admin_add_folder(req: AddonRequest) -> Result:
    """Add a custom folder from the form on the Folders and fields card."""
    try:
        folder = add_folder(req.session, req.member, req.text("name"), req.text("singular"))
    except StructureError as exc:
        return _refused(update(_structure_card(req, error=str(exc))))
    return update(_structure_card(req), state_changed=True, notify=f"Folder {folder.name} added")


@action("admin_folder", "admin")
def admin_folder(req: AddonRequest) -> Result:
    """A folder's card: its name, status and fields."""
    return _shown(req, _folder_card(req, _folder(req)))


@action("admin_rename_folder", "admin")
def admin_rename_folder(req: AddonRequest) -> Result:
    """Rename a folder."""
    folder = _folder(req)
    try:
        rename_folder(req.session, req.member, folder, req.text("name"), req.text("singular"))
    except StructureError as exc:
        return _refused(update(_folder_card(req, folder, error=str(exc), typed=True)))
    return update(_folder_card(req, folder), state_changed=True, notify="Folder renamed")


@action("admin_toggle_folder", "admin")
def admin_toggle_folder(req: AddonRequest) -> Result:
    """Deactivate or reactivate a folder (`active` says which, so a double click is harmless)."""
    folder = _folder(req)
    active = req.param("active") == "true"
    try:
        set_folder_active(req.session, req.member, folder, active)
    except StructureError as exc:
        return _refused(update(_folder_card(req, folder, error=str(exc))))
    message = "Folder activated" if active else "Folder deactivated; its records are kept"
    return update(_folder_card(req, folder), state_changed=True, notify=message)


@action("admin_move_folder", "admin")
def admin_move_folder(req: AddonRequest) -> Result:
    """Move a folder one place up or down."""
    folder = _folder(req)
    try:
        moved = move_folder(req.session, req.member, folder, _direction(req))
    except StructureError as exc:
        return _refused(update(_folder_card(req, folder, error=str(exc))))
    note = "Folder moved" if moved else "Already at the end"
    return update(_folder_card(req, folder), state_changed=moved, notify=note)


def _direction(req: AddonRequest) -> int:
    text = req.param("direction")
    return int(text) if text in ("-1", "1") else 0


# ------------------------------------------------------------------------------- fields


@action("admin_new_field", "admin")
def admin_new_field(req: AddonRequest) -> Result:
    """Push the Add field form of a folder."""
    return push(_new_field_card(req, _folder(req)))


def _options(req: AddonRequest, type_name: str, prefix: str = "") -> dict[str, Any]:
    return options_from_inputs(
        type_name,
        choices=req.text(prefix + "choices"),
        folder=req.text("target"),
        many=req.text("many"),
        currency=req.text(prefix + "currency"),
        expression=req.text("expression"),
        decimals=req.text(prefix + "decimals"),
    )


@action("admin_add_field", "admin")
def admin_add_field(req: AddonRequest) -> Result:
    """Add a field from the Add field form; back to the folder's card."""
    folder = _folder(req)
    type_name = req.text("type")
    try:
        if type_name not in cards.ADDABLE_TYPES:
            raise StructureError(f"Choose a field type (“{type_name}” cannot be added here).")
        fdef = add_field(
            req.session,
            req.member,
            folder,
            req.text("label"),
            type_name,
            _options(req, type_name),
            required=req.text("required") == "yes",
        )
    except StructureError as exc:
        return _refused(update(_new_field_card(req, folder, error=str(exc))))
    return pop_and_update(_folder_card(req, folder), notify=f"Field {fdef.label} added")


@action("admin_edit_field", "admin")
def admin_edit_field(req: AddonRequest) -> Result:
    """Push the edit card of a field."""
    fdef, folder = _field(req)
    return push(_edit_card(req, fdef, folder))


@action("admin_update_field", "admin")
def admin_update_field(req: AddonRequest) -> Result:
    """Save a field's label, required flag and choices; back to the folder's card."""
    fdef, folder = _field(req)
    notes: list[str] = []
    try:
        rename_field(req.session, req.member, fdef, req.text("label"))
        if "required" in req.form:
            missing = set_field_required(
                req.session, req.member, fdef, req.text("required") == "yes"
            )
            if missing and fdef.required:
                notes.append(f"{_plural(missing, 'record')} still without a value")
        if fdef.type in CHOICE_TYPES and "choices" in req.form:
            choices = [line for line in req.text("choices").splitlines() if line.strip()]
            orphaned = set_dropdown_choices(req.session, req.member, fdef, choices)
            if orphaned:
                notes.append(f"{_plural(orphaned, 'record')} keep a removed choice")
    except StructureError as exc:
        return _refused(update(_edit_card(req, fdef, folder, error=str(exc))))
    notify = "Saved" + (f" ({'; '.join(notes)})" if notes else "")
    return pop_and_update(_folder_card(req, folder), notify=notify)


def _field_refused(req: AddonRequest, fdef: FieldDef, folder: Folder, message: str) -> Result:
    # From the edit card (nav=pop) the error shows there; from the folder card, there.
    if req.param("nav") == "pop":
        return _refused(update(_edit_card(req, fdef, folder, error=message)))
    return _refused(update(_folder_card(req, folder, error=message)))


@action("admin_move_field", "admin")
def admin_move_field(req: AddonRequest) -> Result:
    """Move a field one place up or down."""
    fdef, folder = _field(req)
    try:
        moved = move_field(req.session, req.member, fdef, _direction(req))
    except StructureError as exc:
        return _field_refused(req, fdef, folder, str(exc))
    note = "Field moved" if moved else "Already at the end"
    if req.param("nav") == "pop":
        return pop_and_update(_folder_card(req, folder), notify=note)
    return update(_folder_card(req, folder), state_changed=moved, notify=note)


@action("admin_toggle_field", "admin")
def admin_toggle_field(req: AddonRequest) -> Result:
    """Deactivate a field (values kept) or reactivate it."""
    fdef, folder = _field(req)
    active = req.param("active") == "true"
    try:
        set_field_active(req.session, req.member, fdef, active)
    except StructureError as exc:
        return _field_refused(req, fdef, folder, str(exc))
    note = f"{fdef.label} activated" if active else f"{fdef.label} deactivated; values kept"
    if req.param("nav") == "pop":
        return pop_and_update(_folder_card(req, folder), notify=note)
    return update(_folder_card(req, folder), state_changed=True, notify=note)


@action("admin_change_type", "admin")
def admin_change_type(req: AddonRequest) -> Result:
    """Change a field's type, converting its values; answer with the report."""
    fdef, folder = _field(req)
    new_type = req.text("new_type")
    report: TypeChangeReport
    try:
        options = _options(req, new_type, "type_")
        report = change_field_type(req.session, req.member, fdef, new_type, options or None)
    except StructureError as exc:
        return _refused(update(_edit_card(req, fdef, folder, error=str(exc))))
    built = cards.type_change_card(req.actions, folder, fdef, report, page=_page(req))
    kept = f", {len(report.kept)} kept as they were" if report.kept else ""
    return update(built, state_changed=True, notify=f"Type changed{kept}")
