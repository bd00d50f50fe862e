"""What several modules of actions need from a request: members, folders, record cards."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from addon.auth.roles import can, record_scope, require
from addon.cards import records as record_cards
from addon.crm.models import Folder, Member, Record, SavedView
from addon.crm.records import RecordNotFound, get_record, load_detail
from addon.crm.timeline import record_timeline
from addon.crm.views import ViewError, get_view
from addon.crm.workspaces import folders_by_key
from addon.web.events import AddonRequest

# Parameters that carry the sidebar's context (open thread, company to create, record to
# link) from a form to the action that saves it.
CONTEXT_PARAMETERS = ("thread_id", "subject", "company_domain", "link_to")


def members_of(req: AddonRequest) -> list[Member]:
    """The caller's workspace members, by email (at most 99: a dropdown's worth)."""
    return list(
        req.session.execute(
            select(Member)
            .where(Member.workspace_id == req.member.workspace_id)
            .order_by(Member.email)
            .limit(99)
        ).scalars()
    )


def record_card_for(req: AddonRequest, record: Record, *, timeline_page: int = 0) -> dict[str, Any]:
    """A record's full card for the caller, in their locale and zone, with a timeline page."""
    member = req.member
    # The record itself was checked when it was loaded (record_for): its folder decides.
    allowed = {what for what in ("edit", "link", "note") if can(member, what, record.folder)}
    deals = folders_by_key(req.session, member.workspace_id).get("deals")
    if deals is not None and can(member, "create", deals):
        allowed.add("create_deal")
    return record_cards.record_card(
        req.actions,
        load_detail(req.session, record),
        thread_id=req.thread_id() or None,
        subject=req.param("subject"),
        can_merge=can(member, "merge", record.folder),
        can_delete=can(member, "delete", record.folder),
        locale=req.locale,
        tz=req.timezone,
        timeline=record_timeline(req.session, record.workspace_id, record.id, timeline_page),
        allowed=allowed,
    )


def folder_for(req: AddonRequest, key: str, permission: str | None = None) -> Folder:
    """The caller's folder with this key, if they may do the action (default: the
    endpoint's permission) there; an unknown key is answered like a foreign id."""
    folder = folders_by_key(req.session, req.member.workspace_id).get(key)
    if folder is None:
        raise RecordNotFound(key)
    require(req.member, permission or req.permission, folder)
    return folder


def record_for(req: AddonRequest, record_id: str, permission: str | None = None) -> Record:
    """The caller's record with this id, if they may do the action (default: the
    endpoint's permission) on it; another workspace's id is answered like an unknown one."""
    record = get_record(req.session, req.member.workspace_id, record_id)
    require(req.member, permission or req.permission, session=req.session, record=record)
    return record


def scope(req: AddonRequest) -> ColumnElement[bool] | None:
    """What narrows the caller's lists to the records they may see (see record_scope)."""
    return record_scope(req.session, req.member)


def view_for(req: AddonRequest) -> tuple[SavedView, Folder]:
    """The view named by the view_id parameter, with its folder.

    Unknown ids, another workspace's views and other members' personal views all raise
    RecordNotFound, so the answer never tells them apart.
    """
    try:
        view = get_view(req.session, req.member, req.param("view_id"))
    except ViewError:
        raise RecordNotFound(req.param("view_id")) from None
    folder = req.session.get(Folder, view.folder_id)
    if folder is None or folder.workspace_id != req.member.workspace_id:
        raise RecordNotFound(req.param("view_id"))
    require(req.member, req.permission, folder)
    return view, folder


def context_params(req: AddonRequest) -> dict[str, str]:
    """The sidebar context parameters of this action, to pass on to the next."""
    return {k: req.param(k) for k in CONTEXT_PARAMETERS if req.param(k)}
