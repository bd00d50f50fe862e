"""Actions of the email ledger: the record timeline's pages and the admin's stats fields."""

from __future__ import annotations

from addon.cards.responses import update
from addon.crm.audit import record_audit
from addon.crm.structure import get_folder
from addon.crm.timeline import MAX_PAGE
from addon.digits import bounded_int
from addon.ledger.stats import ensure_stats_fields
from addon.web.events import AddonRequest
from addon.web.helpers import record_card_for, record_for
from addon.web.registry import Result, action
from addon.web.settings_actions import _folder_card


def _page(req: AddonRequest) -> int:
    text = req.param("page", "0")
    return min(bounded_int(text, 5) or 0, MAX_PAGE)


@action("record_timeline", "view")
def record_timeline_page(req: AddonRequest) -> Result:
    """Show another page of a record's timeline on its card ("More" / "Newer")."""
    record = record_for(req, req.param("record_id"))
    return update(record_card_for(req, record, timeline_page=_page(req)))


@action("admin_add_stats_fields", "admin")
def admin_add_stats_fields(req: AddonRequest) -> Result:
    """Give a folder the standard email stats fields it lacks, filled in from the ledger."""
    folder = get_folder(req.session, req.member.workspace_id, req.param("folder_id"))
    added = ensure_stats_fields(req.session, folder)
    if not added:
        return update(
            _folder_card(req, folder), notify="This folder already has every email stats field"
        )
    record_audit(
        req.session,
        req.member,
        "field_change",
        workspace_id=req.member.workspace_id,
        folder_id=folder.id,
        summary=f"Added {len(added)} email stats fields to {folder.name}",
        after={"fields": [f.key for f in added]},
    )
    return update(
        _folder_card(req, folder),
        state_changed=True,
        notify=f"{len(added)} email stats field{'s' if len(added) != 1 else ''} added",
    )
