"""GET /healthz: liveness plus a database round trip."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from sqlalchemy import text

from addon.db import get_session

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int]:
    """Report whether the service and its database answer."""
    try:
        get_session().execute(text("SELECT 1"))
    except Exception as exc:  # any database failure means unhealthy, whatever its type
        return {"status": "error", "database": type(exc).__name__}, 503
    return {"status": "ok"}, 200
