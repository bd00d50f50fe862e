"""Callbacks from buttons and forms: POST /actions/<name>."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import g

from addon.auth.roles import can
from addon.cards import records as record_cards
from addon.cards.admin import admin_links
from addon.cards.responses import notify, pop_and_update, push, trigger_card, update
from addon.cards.sidebar import homepage_card
from addon.cards.widgets import button, button_list, card, decorated, esc, section
from addon.crm.models import Record
from addon.crm.records import (
    RecordDetail,
    ValidationError,
    add_note,
    link_thread,
    load_detail,
    mark_viewed,
    save_record,
    search_records,
    unlink_thread,
)
from addon.crm.sidebar import contact_prefill
from addon.crm.workspaces import folder_fields
from addon.digits import ascii_digits
from addon.web.events import AddonRequest
from addon.web.helpers import (
    context_params,
    folder_for,
    members_of,
    record_card_for,
    record_for,
    scope,
)
from addon.web.hygiene_actions import duplicate_warning, restore_form, unreadable_form
from addon.web.registry import Result, action
from addon.web.view_actions import homepage_views


@action("search", "view")
def search(req: AddonRequest) -> Result:
    """Homepage search."""
    query = req.text("query").strip()
    results = (
        search_records(req.session, req.member.workspace_id, query, scope=scope(req))
        if query
        else None
    )
    views, more_views = homepage_views(req.session, req.member)
    return update(
        homepage_card(
            req.actions,
            req.member,
            query=query,
            results=results,
            views=views,
            more_views=more_views,
        )
    )


@action("open_record", "view")
def open_record(req: AddonRequest) -> Result:
    """Push a record's card."""
    record = record_for(req, req.param("record_id"))
    card = record_card_for(req, record)
    # Written last: on SQLite the write lock is then held only until the commit, not
    # while the card's reads run, so concurrent opens do not queue behind each other.
    mark_viewed(req.session, req.member, record)
    return push(card, state_changed=True)


@action("new_record", "create")
def new_record(req: AddonRequest) -> Result:
    """Push an empty create form for a folder."""
    folder = folder_for(req, req.param("folder"))
    values: dict[str, Any] = {}
    if req.param("link_to"):
        linked = record_for(req, req.param("link_to"), "view")
        if linked.folder.key == "companies":
            values["company"] = linked.title
    fields = folder_fields(req.session, folder.id)
    return push(
        record_cards.record_form(
            req.actions,
            folder,
            fields,
            members_of(req),
            values=values,
            hidden=context_params(req),
            locale=req.locale,
            tz=req.timezone,
            edit_locked=can(req.member, "admin"),
        )
    )


@action("new_contact", "create")
def new_contact(req: AddonRequest) -> Result:
    """Push the Add contact form pre-filled from a message participant."""
    folder = folder_for(req, "contacts")
    values, company_domain = contact_prefill(
        req.session, req.member, req.param("email"), req.param("name")
    )
    hidden = context_params(req)
    if company_domain:
        hidden["company_domain"] = company_domain
    fields = folder_fields(req.session, folder.id)
    return push(
        record_cards.record_form(
            req.actions,
            folder,
            fields,
            members_of(req),
            values=values,
            hidden=hidden,
            locale=req.locale,
            tz=req.timezone,
            edit_locked=can(req.member, "admin"),
        )
    )


def _form_for_errors(
    req: AddonRequest, folder: Any, errors: dict[str, str], record: Record | None
) -> Result:
    fields = folder_fields(req.session, folder.id)
    detail = load_detail(req.session, record) if record is not None else None
    # Show what the user typed, not what is stored, so they can correct it.
    form = record_cards.record_form(
        req.actions,
        folder,
        fields,
        members_of(req),
        values=detail.values if detail is not None else None,
        detail=detail,
        errors=errors,
        hidden=context_params(req),
        typed=req.form,
        locale=req.locale,
        tz=req.timezone,
        edit_locked=can(req.member, "admin"),
    )
    g.db_rollback = True
    return update(form)


@action("create_record", "create")
def create_record(req: AddonRequest) -> Result:
    """Save a new record from its form; show the form again when input is invalid.

    A record matching existing ones (email, phone, domain, company name) is not kept: the
    answer shows the matches, and "Create anyway" comes back with force=1 and the form.
    """
    folder = folder_for(req, req.param("folder"))
    force = req.param("force") == "1"
    if force and req.param("values") and not restore_form(req):
        return unreadable_form()
    form = dict(req.form)
    if req.param("link_to"):
        linked = record_for(req, req.param("link_to"), "view")
        if folder.key == "deals" and linked.folder.key == "contacts":
            form["contacts"] = [f"#{linked.id}"]
    try:
        # The open thread is linked only when the email ledger links it (a new contact
        # picks up the recorded conversations of its addresses); otherwise the new
        # record's card offers "Link this thread", so the rep decides.
        record = save_record(
            req.session,
            req.member,
            folder,
            form,
            company_domain=req.param("company_domain") or None,
        )
    except ValidationError as exc:
        return _form_for_errors(req, folder, exc.errors, None)
    warning = None if force else duplicate_warning(req, folder, record)
    if warning is not None:
        return warning
    mark_viewed(req.session, req.member, record)
    return update(
        record_card_for(req, record), state_changed=True, notify=f"{folder.singular} saved"
    )


@action("edit_record", "edit")
def edit_record(req: AddonRequest) -> Result:
    """Push the edit form of a record."""
    record = record_for(req, req.param("record_id"))
    detail = load_detail(req.session, record)
    return push(
        record_cards.record_form(
            req.actions,
            record.folder,
            detail.fields,
            members_of(req),
            values=detail.values,
            detail=detail,
            locale=req.locale,
            tz=req.timezone,
            edit_locked=can(req.member, "admin"),
        )
    )


# Google leaves these inputs out of formInputs when they are empty (an unticked checkbox,
# a multiselect with nothing chosen, a cleared picker). The edit form showed them all, so
# a missing one means "emptied", not "unchanged".
_OMITTED_WHEN_EMPTY = frozenset({"checkbox", "multidropdown", "date", "datetime"})


def _edited_form(
    detail: RecordDetail, submitted: dict[str, list[str]], *, edit_locked: bool
) -> dict[str, list[str]]:
    """The submitted edit form as save_record should read it, so that an untouched form
    changes nothing."""
    form = dict(submitted)
    for fdef in detail.fields:
        stored = detail.values.get(fdef.key)
        given = form.get(fdef.key)
        if fdef.locked and not edit_locked:
            # Shown as text, so never submitted: an input for it was forged, and
            # save_record refuses it.
            continue
        if given is None:
            # A checkbox that was never set shows unticked; left so, it stays unknown.
            never_set_checkbox = fdef.type == "checkbox" and stored is None
            if fdef.type in _OMITTED_WHEN_EMPTY and not never_set_checkbox:
                form[fdef.key] = []
        elif fdef.type == "link":
            shown = ", ".join(r.title for r in detail.links.get(fdef.key, []))
            # The link as shown is kept as it is rather than looked up again by title,
            # which could pick another record of the same name.
            if shown and ", ".join(given).strip() == shown:
                del form[fdef.key]
        elif fdef.type == "datetime" and stored and len(given) == 1 and ascii_digits(given[0]):
            # Pickers work in minutes: the stored seconds of an imported value are kept.
            try:
                stored_minute = int(datetime.fromisoformat(str(stored)).timestamp()) // 60
            except ValueError:
                continue
            if int(given[0]) // 60000 == stored_minute:
                del form[fdef.key]
    return form


@action("update_record", "edit")
def update_record(req: AddonRequest) -> Result:
    """Save an edited record; show the form again when input is invalid."""
    record = record_for(req, req.param("record_id"))
    detail = load_detail(req.session, record, full=False)
    form = _edited_form(detail, req.form, edit_locked=can(req.member, "admin"))
    try:
        save_record(req.session, req.member, record.folder, form, record)
    except ValidationError as exc:
        return _form_for_errors(req, record.folder, exc.errors, record)
    return pop_and_update(record_card_for(req, record), notify="Saved")


@action("link_search", "link")
def link_search(req: AddonRequest) -> Result:
    """Find any record to link the open thread to."""
    query = req.text("query").strip()
    results = (
        search_records(req.session, req.member.workspace_id, query, scope=scope(req))
        if query
        else []
    )
    picker = record_cards.link_picker(
        req.actions, req.thread_id(), req.param("subject"), query, results
    )
    return update(picker) if "query" in req.form else push(picker)


@action("link_thread", "link")
def link(req: AddonRequest) -> Result:
    """Link the open thread to a record; linking twice changes nothing."""
    record = record_for(req, req.param("record_id"))
    try:
        created = link_thread(
            req.session, req.member, record, req.thread_id(), req.param("subject")
        )
    except ValidationError as exc:
        return notify(next(iter(exc.errors.values())).capitalize())
    message = "Thread linked" if created else "This thread was already linked"
    return update(record_card_for(req, record), state_changed=created, notify=message)


@action("unlink_thread", "link")
def unlink(req: AddonRequest) -> Result:
    """Remove a thread link from a record."""
    record = record_for(req, req.param("record_id"))
    removed = unlink_thread(req.session, record, req.thread_id())
    return update(
        record_card_for(req, record),
        state_changed=removed,
        notify="Thread unlinked" if removed else "Not linked",
    )


@action("new_note", "note")
def new_note(req: AddonRequest) -> Result:
    """Push the note form."""
    record = record_for(req, req.param("record_id"))
    return push(record_cards.note_form(req.actions, record))


@action("create_note", "note")
def create_note(req: AddonRequest) -> Result:
    """Save a note; an empty note shows the form again."""
    record = record_for(req, req.param("record_id"))
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
    return pop_and_update(record_card_for(req, record), notify="Note added")


@action("settings", "view")
def settings(req: AddonRequest) -> Result:
    """The universal Settings action: workspace and members (managed by admins)."""
    members = members_of(req)
    widgets = [decorated(esc(m.email), bottom=esc(m.role), icon="PERSON") for m in members]
    workspace = req.member.workspace
    sections = [
        section(widgets, f"Members of {esc(workspace.domain)}"),
        section(
            [button_list(button("Gmail access", req.actions.on_click("gmail_access")))],
            "Your Gmail",
        ),
    ]
    if can(req.member, "admin"):
        sections.append(
            section(
                [
                    button_list(
                        button("Folders and fields", req.actions.on_click("admin_structure")),
                        button("Web forms", req.actions.on_click("webforms")),
                    )
                ],
                "Structure",
            )
        )
        sections.append(admin_links(req.actions))
    return trigger_card(
        card(
            "Settings",
            sections,
            subtitle=f"Your role: {req.member.role}",
            name="settings",
        )
    )
