"""Actions of the Gmail access card: show it, connect (the OAuth link), revoke.

Every action works on the caller's own grant only; no parameter names a grant or a member,
so nobody can see or change anyone else's. Connecting needs the role permissions of the
purpose (viewers cannot grant sending); showing and revoking one's own access need none
beyond membership.
"""

from __future__ import annotations

from typing import Any

from flask import g

from addon.auth.grants import (
    PURPOSE_SCOPES,
    SEND,
    SYNC,
    GrantError,
    get_grant,
    missing_permission,
    revoke_grant,
)
from addon.auth.roles import PermissionDenied
from addon.cards.gmail_access import gmail_access_card
from addon.cards.records import error_card
from addon.cards.responses import push, update
from addon.web.events import AddonRequest
from addon.web.oauth import FlowRefused, oauth_settings, start_url
from addon.web.registry import Result, action


def _card(req: AddonRequest) -> dict[str, Any]:
    member = req.member
    return gmail_access_card(
        req.actions,
        get_grant(req.session, member),
        can_send=missing_permission(member, SEND) is None,
        can_sync=missing_permission(member, SYNC) is None,
        role=member.role,
        tz=req.timezone,
    )


@action("gmail_access", "view")
def gmail_access(req: AddonRequest) -> Result:
    """The Gmail access card (pushed, or redrawn in place with nav=update)."""
    if req.param("nav") == "update":
        return update(_card(req))
    return push(_card(req))


@action("gmail_connect", "view")
def gmail_connect(req: AddonRequest) -> Result:
    """Open Google's consent for a purpose (send, sync or both) in an overlay."""
    purpose = req.param("purpose")
    if purpose not in PURPOSE_SCOPES:
        g.db_rollback = True
        return push(error_card("Gmail access", f"Unknown purpose “{purpose}”."))
    lacking = missing_permission(req.member, purpose)
    if lacking is not None:
        raise PermissionDenied(lacking, req.member.role)
    try:
        url = start_url(req.member, purpose)
    except FlowRefused as exc:
        g.db_rollback = True
        return push(error_card("Gmail access unavailable", str(exc) + "."))
    return {
        "renderActions": {
            "action": {
                # The card reloads when the overlay closes, showing the new access.
                "link": {"url": url, "openAs": "OVERLAY", "onClose": "RELOAD"},
            }
        },
        "stateChanged": False,
    }


@action("gmail_revoke", "view")
def gmail_revoke(req: AddonRequest) -> Result:
    """Revoke the caller's grant at Google and delete the token here in any case."""
    try:
        problem = revoke_grant(req.session, req.member, oauth_settings())
    except GrantError as exc:
        g.db_rollback = True
        reason = str(exc)
        return update(_card(req), notify=reason[:1].upper() + reason[1:])
    if problem is None:
        text = "Gmail access revoked"
    else:
        text = f"Gmail access deleted here; revoking it at Google failed ({problem})"
    return update(_card(req), state_changed=True, notify=text)
