"""The action registry: POST /actions/<name> and the one authorization check.

Every module of actions registers its handlers here with the permission they need, so
one place decides who may do what and how a denial or a foreign id is answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, g, jsonify

from addon.auth.roles import PermissionDenied, require
from addon.cards.records import error_card
from addon.cards.responses import push
from addon.crm.records import RecordNotFound
from addon.web.events import AddonRequest, addon_endpoint

bp = Blueprint("actions", __name__)

Result = dict[str, Any] | Response
Handler = Callable[[AddonRequest], Result]
ACTIONS: dict[str, tuple[str, Handler]] = {}


def action(name: str, permission: str) -> Callable[[Handler], Handler]:
    """Register an action handler with the permission it needs."""

    def register(handler: Handler) -> Handler:
        if name in ACTIONS and ACTIONS[name][1] is not handler:
            raise RuntimeError(f"two handlers for the action {name!r}")
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
    req.permission = permission
    try:
        require(req.member, permission)
        return handler(req)
    except PermissionDenied as exc:
        g.db_rollback = True
        message = str(exc)
        # Not str.capitalize(): it would lowercase the folder's name.
        return push(error_card("Not allowed", message[:1].upper() + message[1:] + "."))
    except RecordNotFound:
        g.db_rollback = True
        response = jsonify({"error": "record not found in your workspace"})
        response.status_code = 403
        return response
