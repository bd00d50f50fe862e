"""What several modules of actions need from a request: members, folders, record cards."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from addon.auth.roles import can
from addon.cards import records as record_cards
from addon.crm.models import Folder, Member, Record, SavedView
from addon.crm.records import RecordNotFound, load_detail
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
    return record_cards.record_card(
        req.actions,
        load_detail(req.session, record),
        thread_id=req.thread_id() or None,
        subject=req.param("subject"),
        can_merge=can(req.member, "merge"),
        can_delete=can(req.member, "delete"),
        locale=req.locale,
        tz=req.timezone,
        timeline=record_timeline(req.session, record.workspace_id, record.id, timeline_page),
    )


def folder_for(req: AddonRequest, key: str) -> Folder:
    """The caller's folder with this key; an unknown key is answered like a foreign id."""
    folder = folders_by_key(req.session, req.member.workspace_id).get(key)
    if folder is None:
        raise RecordNotFound(key)
    return folder


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
    return view, folder


def context_params(req: AddonRequest) -> dict[str, str]:
    """The sidebar context parameters of this action, to pass on to the next."""
    return {k: req.param(k) for k in CONTEXT_PARAMETERS if req.param(k)}
