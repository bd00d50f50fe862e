"""Callbacks from buttons and forms: POST /actions/<name>."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, jsonify
from sqlalchemy import select

from addon.auth.roles import PermissionDenied, can, require
from addon.cards import records as record_cards
from addon.cards.responses import notify, pop_and_update, push, trigger_card, update
from addon.cards.sidebar import homepage_card
from addon.cards.widgets import button, button_list, card, decorated, esc, section
from addon.crm.models import Member, Record
from addon.crm.records import (
    RecordNotFound,
    ValidationError,
    add_note,
    get_record,
    link_thread,
    load_detail,
    mark_viewed,
    save_record,
    search_records,
    unlink_thread,
)
from addon.crm.sidebar import contact_prefill
from addon.crm.workspaces import folder_fields, folders_by_key
from addon.web.events import AddonRequest, addon_endpoint

bp = Blueprint("actions", __name__)

Result = dict[str, Any] | Response
ACTIONS: dict[str, tuple[str, Callable[[AddonRequest], Result]]] = {}


def action(
    name: str, permission: str
) -> Callable[[Callable[[AddonRequest], Result]], Callable[[AddonRequest], Result]]:
    """Register an action handler with the permission it needs."""

    def register(handler: Callable[[AddonRequest], Result]) -> Callable[[AddonRequest], Result]:
        ACTIONS[name] = (permission, handler)
        return handler

    return register


@bp.post("/actions/<name>")
@addon_endpoint
def dispatch(req: AddonRequest, name: str) -> Result:
    """Run a registered action after the one authorization check."""
    entry = ACTIONS.get(name)
    if entry is None:
        response = jsonify({"error": f"unknown action “{name}”"})
        response.status_code = 404
        return response
    permission, handler = entry
    try:
        require(req.member, permission)
        return handler(req)
    except PermissionDenied as exc:
        g.db_rollback = True
        return push(record_cards.error_card("Not allowed", str(exc).capitalize() + "."))
    except RecordNotFound:
        response = jsonify({"error": "record not found in your workspace"})
        response.status_code = 403
        return response


def _members(req: AddonRequest) -> list[Member]:
    return list(
        req.session.execute(
            select(Member)
            .where(Member.workspace_id == req.member.workspace_id)
            .order_by(Member.email)
            .limit(99)
        ).scalars()
    )


def _record_card(req: AddonRequest, record: Record) -> dict[str, Any]:
    thread_id = req.thread_id() or None
    return record_cards.record_card(
        req.actions,
        load_detail(req.session, record),
        thread_id=thread_id,
        subject=req.param("subject"),
    )


def _folder(req: AddonRequest, key: str) -> Any:
    folder = folders_by_key(req.session, req.member.workspace_id).get(key)
    if folder is None:
        raise RecordNotFound(key)
    return folder


def _context_params(req: AddonRequest) -> dict[str, str]:
    keep = ("thread_id", "subject", "company_domain", "link_to")
    return {k: req.param(k) for k in keep if req.param(k)}


@action("search", "view")
def search(req: AddonRequest) -> Result:
    """Homepage search."""
    query = req.text("query").strip()
    results = search_records(req.session, req.member.workspace_id, query) if query else None
    return update(homepage_card(req.actions, req.member, query=query, results=results))


@action("open_record", "view")
def open_record(req: AddonRequest) -> Result:
    """Push a record's card."""
    record = get_record(req.session, req.member.workspace_id, req.param("record_id"))
    mark_viewed(req.session, req.member, record)
    return push(_record_card(req, record), state_changed=True)


@action("new_record", "create")
def new_record(req: AddonRequest) -> Result:
    """Push an empty create form for a folder."""
    folder = _folder(req, req.param("folder"))
    values: dict[str, Any] = {}
    if req.param("link_to"):
        linked = get_record(req.session, req.member.workspace_id, req.param("link_to"))
        if linked.folder.key == "companies":
            values["company"] = linked.title
    fields = folder_fields(req.session, folder.id)
    return push(
        record_cards.record_form(
            req.actions, folder, fields, _members(req), values=values, hidden=_context_params(req)
        )
    )


@action("new_contact", "create")
def new_contact(req: AddonRequest) -> Result:
    """Push the Add contact form pre-filled from a message participant."""
    folder = _folder(req, "contacts")
    values, company_domain = contact_prefill(
        req.session, req.member, req.param("email"), req.param("name")
    )
    hidden = _context_params(req)
    if company_domain:
        hidden["company_domain"] = company_domain
    fields = folder_fields(req.session, folder.id)
    return push(
        record_cards.record_form(
            req.actions, folder, fields, _members(req), values=values, hidden=hidden
        )
    )


def _form_for_errors(
    req: AddonRequest, folder: Any, errors: dict[str, str], record: Record | None
) -> Result:
    fields = folder_fields(req.session, folder.id)
    # Show what the user typed, not what is stored, so they can correct it.
    typed: dict[str, Any] = {k: ", ".join(v) for k, v in req.form.items()}
    detail = load_detail(req.session, record) if record is not None else None
    form = record_cards.record_form(
        req.actions,
        folder,
        fields,
        _members(req),
        values=typed,
        detail=detail,
        errors=errors,
        hidden=_context_params(req),
    )
    g.db_rollback = True
    return update(form)


@action("create_record", "create")
def create_record(req: AddonRequest) -> Result:
    """Save a new record from its form; show the form again when input is invalid."""
    folder = _folder(req, req.param("folder"))
    form = dict(req.form)
    if req.param("link_to"):
        linked = get_record(req.session, req.member.workspace_id, req.param("link_to"))
        if folder.key == "deals" and linked.folder.key == "contacts":
            form["contacts"] = [f"#{linked.id}"]
    try:
        # The open thread is not linked silently: the new record's card offers
        # "Link this thread", so the rep decides.
        record = save_record(
            req.session,
            req.member,
            folder,
            form,
            company_domain=req.param("company_domain") or None,
        )
    except ValidationError as exc:
        return _form_for_errors(req, folder, exc.errors, None)
    mark_viewed(req.session, req.member, record)
    return update(_record_card(req, record), state_changed=True, notify=f"{folder.singular} saved")


@action("edit_record", "edit")
def edit_record(req: AddonRequest) -> Result:
    """Push the edit form of a record."""
    record = get_record(req.session, req.member.workspace_id, req.param("record_id"))
    detail = load_detail(req.session, record)
    return push(
        record_cards.record_form(
            req.actions,
            record.folder,
            detail.fields,
            _members(req),
            values=detail.values,
            detail=detail,
        )
    )


@action("update_record", "edit")
def update_record(req: AddonRequest) -> Result:
    """Save an edited record; show the form again when input is invalid."""
    record = get_record(req.session, req.member.workspace_id, req.param("record_id"))
    form = dict(req.form)
    # Google leaves an unticked checkbox out of formInputs: the edit form showed every
    # checkbox, so a missing one means "unticked", not "unchanged".
    for fdef in folder_fields(req.session, record.folder_id):
        if fdef.type == "checkbox":
            form.setdefault(fdef.key, [])
    try:
        save_record(req.session, req.member, record.folder, form, record)
    except ValidationError as exc:
        return _form_for_errors(req, record.folder, exc.errors, record)
    return pop_and_update(_record_card(req, record), notify="Saved")


@action("link_search", "link")
def link_search(req: AddonRequest) -> Result:
    """Find any record to link the open thread to."""
    query = req.text("query").strip()
    results = search_records(req.session, req.member.workspace_id, query) if query else []
    picker = record_cards.link_picker(
        req.actions, req.thread_id(), req.param("subject"), query, results
    )
    return update(picker) if "query" in req.form else push(picker)


@action("link_thread", "link")
def link(req: AddonRequest) -> Result:
    """Link the open thread to a record; linking twice changes nothing."""
    record = get_record(req.session, req.member.workspace_id, req.param("record_id"))
    try:
        created = link_thread(
            req.session, req.member, record, req.thread_id(), req.param("subject")
        )
    except ValidationError as exc:
        return notify(next(iter(exc.errors.values())).capitalize())
    message = "Thread linked" if created else "This thread was already linked"
    return update(_record_card(req, record), state_changed=created, notify=message)


@action("unlink_thread", "link")
def unlink(req: AddonRequest) -> Result:
    """Remove a thread link from a record."""
    record = get_record(req.session, req.member.workspace_id, req.param("record_id"))
    removed = unlink_thread(req.session, record, req.thread_id())
    return update(
        _record_card(req, record),
        state_changed=removed,
        notify="Thread unlinked" if removed else "Not linked",
    )


@action("new_note", "note")
def new_note(req: AddonRequest) -> Result:
    """Push the note form."""
    record = get_record(req.session, req.member.workspace_id, req.param("record_id"))
    return push(record_cards.note_form(req.actions, record))


@action("create_note", "note")
def create_note(req: AddonRequest) -> Result:
    """Save a note; an empty note shows the form again."""
    record = get_record(req.session, req.member.workspace_id, req.param("record_id"))
    try:
        add_note(req.session, req.member, record, req.text("body"))
    except ValidationError as exc:
        g.db_rollback = True
        return update(
            record_cards.note_form(
                req.actions,
                record,
                body=req.text("body"),
                error=next(iter(exc.errors.values())).capitalize(),
            )
        )
    return pop_and_update(_record_card(req, record), notify="Note added")


@action("settings", "view")
def settings(req: AddonRequest) -> Result:
    """The universal Settings action: workspace and members (managed by admins)."""
    members = _members(req)
    widgets = [decorated(esc(m.email), bottom=esc(m.role), icon="PERSON") for m in members]
    workspace = req.member.workspace
    sections = [section(widgets, f"Members of {esc(workspace.domain)}")]
    if can(req.member, "admin"):
        sections.append(
            section(
                [
                    button_list(
                        button("Folders and fields", req.actions.on_click("admin_structure"))
                    )
                ],
                "Structure",
            )
        )
    return trigger_card(
        card(
            "Settings",
            sections,
            subtitle=f"Your role: {req.member.role}",
            name="settings",
        )
    )
