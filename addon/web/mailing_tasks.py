"""POST (or cron's GET) /tasks/mailing: one bounded pass of the mail-merge worker.

Only App Engine cron may call it (the X-Appengine-Cron header, which App Engine strips
from outside requests, so it is trusted only when ON_APP_ENGINE is set) or a caller
presenting the configured TASKS_TOKEN as a bearer token.
"""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, current_app, request

from addon.mailing.cli import NotConfigured, describe, worker_for

bp = Blueprint("mailing_tasks", __name__)


def _allowed() -> tuple[bool, str]:
    config = current_app.config
    if config.get("ON_APP_ENGINE") and request.headers.get("X-Appengine-Cron") == "true":
        return True, ""
    token = str(config.get("TASKS_TOKEN") or "")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if token and given and hmac.compare_digest(token.encode(), given.encode()):
        return True, ""
    if not token and not config.get("ON_APP_ENGINE"):
        return False, "task endpoints are disabled: set ADDON_TASKS_TOKEN"
    return False, "only App Engine cron or the task token may call this endpoint"


@bp.route("/tasks/mailing", methods=["GET", "POST"])
def run_mailing() -> tuple[dict[str, Any], int]:
    """Send what is due now, for at most MAILING_TASK_SECONDS; report what was done."""
    allowed, why = _allowed()
    if not allowed:
        return {"error": why}, 403
    try:
        worker = worker_for(current_app)
    except NotConfigured as exc:
        return {"error": str(exc)}, 503
    report = worker.run(once=True, max_seconds=float(current_app.config["MAILING_TASK_SECONDS"]))
    return {"status": "ok", "summary": describe(report), "sent": report.sent}, 200
