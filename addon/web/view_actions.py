"""Saved views in the sidebar: open a view's records, create, edit, share and delete views.

Personal views need only "view" (a viewer may keep their own filters); saving a view
shared with the workspace, and editing or deleting a shared one, needs "share_view".
Someone else's personal view answers like an unknown id (403), as another workspace's does.
"""

from __future__ import annotations

from typing import Any

from flask import g
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.auth.roles import PermissionDenied, can, record_scope
from addon.cards import views as cards
from addon.cards.responses import navigate, push, update
from addon.cards.sidebar import homepage_card
from addon.crm.models import FieldDef, Folder, Member, SavedView
from addon.crm.records import RecordNotFound, get_record, recent_records, recently_created
from addon.crm.views import (
    MAX_CONDITIONS,
    Condition,
    ViewDefinition,
    ViewError,
    count_view_capped,
    delete_view,
    parse_definition,
    save_view,
    view_filter,
    view_page,
    visible_views,
)
from addon.crm.workspaces import folder_fields
from addon.web.events import AddonRequest
from addon.web.helpers import scope, view_for
from addon.web.registry import Result, action

HOMEPAGE_VIEWS = 20
VIEWS_PER_PAGE = 20
VIEW_PAGE_SIZE = 25


# ------------------------------------------------------------------------------ helpers


def _active_folders(session: Session, workspace_id: int) -> list[Folder]:
    return list(
        session.execute(
            select(Folder)
            .where(Folder.workspace_id == workspace_id, Folder.active.is_(True))
            .order_by(Folder.position, Folder.id)
        ).scalars()
    )


def _counted(
    session: Session, member: Member, pairs: list[tuple[SavedView, Folder]]
) -> list[cards.ViewLine]:
    """Views with the counts of their records the member may see; None for a view that no
    longer compiles."""
    visible = record_scope(session, member)
    fields: dict[int, list[FieldDef]] = {}
    lines: list[cards.ViewLine] = []
    for view, folder in pairs:
        # Fields are read once per folder: with the count, two statements per view.
        if folder.id not in fields:
            fields[folder.id] = folder_fields(session, folder.id)
        try:
            count, more = count_view_capped(
                session,
                folder,
                parse_definition(fields[folder.id], view.definition),
                visible=visible,
            )
        except ViewError:
            # A field it uses was removed, or a value no longer parses.
            lines.append(cards.ViewLine(view, folder, None))
        else:
            lines.append(cards.ViewLine(view, folder, count, more))
    return lines


def _lines(session: Session, member: Member) -> list[tuple[SavedView, Folder]]:
    """Visible views of active folders, grouped by folder (in folder order), then by name."""
    folders = {
        f.id: f for f in _active_folders(session, member.workspace_id) if can(member, "view", f)
    }
    pairs = [
        (v, folders[v.folder_id]) for v in visible_views(session, member) if v.folder_id in folders
    ]
    pairs.sort(key=lambda p: (p[1].position, p[1].id, p[0].name.casefold(), p[0].id))
    return pairs


def homepage_views(session: Session, member: Member) -> tuple[list[cards.ViewLine], bool]:
    """The views the homepage lists with their counts, and whether there are more."""
    pairs = _lines(session, member)
    # One count query per listed view: the cap keeps the homepage fast.
    return _counted(session, member, pairs[:HOMEPAGE_VIEWS]), len(pairs) > HOMEPAGE_VIEWS


def _homepage(req: AddonRequest) -> dict[str, Any]:
    views, more = homepage_views(req.session, req.member)
    return homepage_card(
        req.actions,
        req.member,
        recent=recent_records(req.session, req.member, scope=scope(req)),
        created=recently_created(req.session, req.member.workspace_id, scope=scope(req)),
        views=views,
        more_views=more,
    )


def _may_manage(member: Member, view: SavedView) -> bool:
    return view.owner_id == member.id or (view.owner_id is None and can(member, "share_view"))


def _require_manage(member: Member, view: SavedView) -> None:
    # Only shared views reach here unmanageable: get_view hides others' personal views.
    if not _may_manage(member, view):
        raise PermissionDenied("share_view", member.role)


def _page(req: AddonRequest) -> int:
    text = req.param("page", "0")
    return int(text) if text.isdigit() and len(text) < 7 else 0


def _shown(req: AddonRequest, built: dict[str, Any]) -> Result:
    return update(built) if req.param("nav") == "update" else push(built)


def _view_card(req: AddonRequest, view: SavedView, folder: Folder, page: int = 0) -> dict[str, Any]:
    fields = folder_fields(req.session, folder.id)
    allowed = cards.ViewPermissions(
        manage=_may_manage(req.member, view),
        export=can(req.member, "export"),
        bulk_edit=can(req.member, "bulk_edit"),
    )
    labels = cards.field_labels(fields)
    try:
        definition = parse_definition(fields, view.definition)
    except ViewError as exc:
        description = "This view uses a field or an operator that no longer exists."
        return cards.view_card(
            req.actions, view, folder, description, None, allowed, error=str(exc)
        )
    description = cards.describe_definition(definition, labels)
    try:
        found = view_page(
            req.session, folder, definition, page=page, page_size=VIEW_PAGE_SIZE, visible=scope(req)
        )
    except ViewError as exc:
        return cards.view_card(
            req.actions, view, folder, description, None, allowed, error=str(exc)
        )
    listing = cards.ViewPage(found.records, found.count, found.page, VIEW_PAGE_SIZE, found.more)
    return cards.view_card(req.actions, view, folder, description, listing, allowed)


# ------------------------------------------------------------------------------ reading


@action("open_view", "view")
def open_view(req: AddonRequest) -> Result:
    """A view's records, a page at a time (parameters view_id, page; nav=update to page)."""
    view, folder = view_for(req)
    return _shown(req, _view_card(req, view, folder, _page(req)))


@action("all_views", "view")
def all_views(req: AddonRequest) -> Result:
    """Every view the member can see, with counts, a page at a time (parameter page)."""
    pairs = _lines(req.session, req.member)
    page = min(_page(req), max(0, (len(pairs) - 1) // VIEWS_PER_PAGE))
    chunk = pairs[page * VIEWS_PER_PAGE : (page + 1) * VIEWS_PER_PAGE]
    lines = _counted(req.session, req.member, chunk)
    has_next = (page + 1) * VIEWS_PER_PAGE < len(pairs)
    return _shown(req, cards.all_views_card(req.actions, lines, page=page, has_next=has_next))


# ------------------------------------------------------------------------------ editing


def _editor(
    req: AddonRequest,
    form: cards.ViewForm,
    *,
    view: SavedView | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    folders = _active_folders(req.session, req.member.workspace_id)
    folder = next((f for f in folders if f.key == form.folder_key), None)
    if view is not None:
        # An edited view keeps its folder, even one deactivated since.
        folder = req.session.get(Folder, view.folder_id)
    fields = folder_fields(req.session, folder.id) if folder is not None else []
    return cards.view_editor(
        req.actions,
        form,
        folders,
        fields,
        view_id=view.id if view is not None else None,
        can_share=can(req.member, "share_view"),
        error=error,
    )


def _stored_form(view: SavedView, folder: Folder) -> cards.ViewForm:
    raw = view.definition if isinstance(view.definition, dict) else {}
    conditions = raw.get("conditions") if isinstance(raw.get("conditions"), list) else []
    sort = raw.get("sort") if isinstance(raw.get("sort"), dict) else {}
    return cards.ViewForm(
        name=view.name,
        folder_key=folder.key,
        match_any=raw.get("match") == "any",
        rows=[
            cards.ConditionRow(
                str(c.get("field", "")), str(c.get("op", "")), str(c.get("value", ""))
            )
            for c in (conditions or [])[:MAX_CONDITIONS]
            if isinstance(c, dict)
        ],
        sort_field=str((sort or {}).get("field") or "_title"),
        sort_desc=bool((sort or {}).get("desc")),
        shared=view.owner_id is None,
    )


def _typed_form(req: AddonRequest, view: SavedView | None, folder: Folder | None) -> cards.ViewForm:
    """The editor's inputs as the user left them."""
    rows_text = req.param("rows", "0")
    rows = min(int(rows_text), MAX_CONDITIONS) if rows_text.isdigit() and len(rows_text) < 4 else 0
    if view is not None and folder is not None:
        folder_key = folder.key
    else:
        folder_key = req.text("view_folder") or req.param("folder") or "contacts"
    return cards.ViewForm(
        name=req.text("view_name"),
        folder_key=folder_key,
        match_any=req.text("match") == "any",
        rows=[
            cards.ConditionRow(
                req.text(f"c{i}_field"), req.text(f"c{i}_op"), req.text(f"c{i}_value")
            )
            for i in range(rows)
        ],
        sort_field=req.text("sort_field") or "_title",
        sort_desc=req.text("sort_dir") == "desc",
        shared="yes" in req.form.get("shared", []),
    )


def _fit_to_folder(req: AddonRequest, form: cards.ViewForm) -> None:
    """Clear choices the folder no longer offers (after the folder or a field changed)."""
    folder = next(
        (
            f
            for f in _active_folders(req.session, req.member.workspace_id)
            if f.key == form.folder_key
        ),
        None,
    )
    fields = folder_fields(req.session, folder.id) if folder is not None else []
    keys = {f.key for f in fields} | set(cards.BUILTIN_FIELDS)
    for row in form.rows:
        if row.field and row.field not in keys:
            row.field, row.op = "", ""
        if row.field and row.op and row.op not in cards.operators_for_field(fields, row.field):
            row.op = ""
    if form.sort_field not in keys or any(
        f.key == form.sort_field and f.type == "link" for f in fields
    ):
        form.sort_field = "_title"


def _editing(req: AddonRequest) -> tuple[SavedView | None, Folder | None]:
    if not req.param("view_id"):
        return None, None
    view, folder = view_for(req)
    _require_manage(req.member, view)
    return view, folder


@action("new_view", "view")
def new_view(req: AddonRequest) -> Result:
    """Push an empty view editor (parameter folder preselects the folder)."""
    folders = _active_folders(req.session, req.member.workspace_id)
    wanted = req.param("folder")
    key = wanted if any(f.key == wanted for f in folders) else (folders[0].key if folders else "")
    form = cards.ViewForm(folder_key=key, rows=[cards.ConditionRow()])
    return push(_editor(req, form))


@action("edit_view", "view")
def edit_view(req: AddonRequest) -> Result:
    """Push the editor of a view the member may change (parameter view_id)."""
    view, folder = view_for(req)
    _require_manage(req.member, view)
    return push(_editor(req, _stored_form(view, folder), view=view))


@action("view_form", "view")
def view_form(req: AddonRequest) -> Result:
    """Re-render the editor keeping what was typed: add=1 adds a condition, remove=N drops one."""
    view, folder = _editing(req)
    form = _typed_form(req, view, folder)
    if req.param("add") and len(form.rows) < cards.EDITOR_MAX_CONDITIONS:
        form.rows.append(cards.ConditionRow())
    removed = req.param("remove")
    if removed.isdigit() and int(removed) < len(form.rows):
        del form.rows[int(removed)]
    _fit_to_folder(req, form)
    return update(_editor(req, form, view=view))


def _check_references(req: AddonRequest, fields: list[FieldDef], condition: Condition) -> None:
    """Refuse a link condition naming a record ("#12") the caller's workspace lacks."""
    fdef = next((f for f in fields if f.key == condition.field_key), None)
    if fdef is None or fdef.type != "link":
        return
    for part in condition.value.split(","):
        text = part.strip()
        if text.startswith("#"):
            try:
                get_record(req.session, req.member.workspace_id, text[1:])
            except RecordNotFound:
                raise ViewError(f"record {text} was not found") from None


def _check(req: AddonRequest, folder: Folder, form: cards.ViewForm) -> str | None:
    """Why the typed definition cannot be saved, or None; nothing is written here."""
    fields = folder_fields(req.session, folder.id)
    labels = cards.field_labels(fields)
    for number, row in enumerate(form.rows, start=1):
        if not row.field:
            return f"condition {number}: choose a field"
        if not row.op:
            return f"condition {number}: choose what “{labels.get(row.field, row.field)}” must be"
    try:
        definition = parse_definition(fields, form.raw_definition())
        # Values are checked when the filter is compiled (numbers, dates, members, link
        # targets): compile each condition alone to say which one is wrong.
        for number, condition in enumerate(definition.conditions, start=1):
            try:
                _check_references(req, fields, condition)
                view_filter(req.session, folder, ViewDefinition(conditions=[condition]))
            except ViewError as exc:
                return f"condition {number}: {exc}"
    except ViewError as exc:
        return str(exc)
    if form.shared and not can(req.member, "share_view"):
        return str(PermissionDenied("share_view", req.member.role))
    return None


@action("save_view", "view")
def save(req: AddonRequest) -> Result:
    """Validate and save the editor's view; invalid input shows the form again, nothing saved."""
    view, folder = _editing(req)
    form = _typed_form(req, view, folder)
    form.rows = [r for r in form.rows if not r.blank()]
    if folder is None:
        folder = next(
            (
                f
                for f in _active_folders(req.session, req.member.workspace_id)
                if f.key == form.folder_key
            ),
            None,
        )
    if folder is None:
        g.db_rollback = True
        return update(_editor(req, form, view=view, error="choose a folder"))
    error = _check(req, folder, form)
    if error is None:
        try:
            view = save_view(
                req.session,
                req.member,
                folder,
                form.name,
                form.raw_definition(),
                shared=form.shared,
                view=view,
            )
        except ViewError as exc:
            error = str(exc)
    if error is not None or view is None:
        g.db_rollback = True
        return update(_editor(req, form, view=view, error=error))
    # Back to a refreshed homepage with the view on top, so the list and counts are current.
    return navigate(
        {"popToRoot": True},
        {"updateCard": _homepage(req)},
        {"pushCard": _view_card(req, view, folder)},
        state_changed=True,
        notify="View saved",
    )


@action("confirm_delete_view", "view")
def confirm_delete(req: AddonRequest) -> Result:
    """Ask before deleting a view (parameter view_id)."""
    view, folder = view_for(req)
    _require_manage(req.member, view)
    return update(cards.delete_view_card(req.actions, view, folder))


@action("delete_view", "view")
def delete(req: AddonRequest) -> Result:
    """Delete a view the member may change; its records stay."""
    view, _folder = view_for(req)
    _require_manage(req.member, view)
    name = view.name
    delete_view(req.session, req.member, view)
    return navigate(
        {"popToRoot": True},
        {"updateCard": _homepage(req)},
        state_changed=True,
        notify=f"View “{name}” deleted",
    )
