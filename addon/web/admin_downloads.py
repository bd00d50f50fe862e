"""Signed, encrypted, short-lived download links for admin exports (audit log, privacy).

The link's token is encrypted (Fernet, with a key derived from SECRET_KEY) because a
privacy export names a person's address, and URLs end up in browser histories and proxy
logs. `GET /admin/downloads/<token>` checks again that the member is still an admin of the
workspace before writing the export's audit entry and sending the file.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask import Response, current_app, jsonify
from sqlalchemy.orm import Session

from addon.admin.auditlog import AuditFilter, FilterError, export_lines
from addon.admin.privacy import PrivacyError, export_person
from addon.auth.roles import can
from addon.crm.models import Member
from addon.web.registry import bp

DOWNLOAD_LINK_SECONDS = 600
KINDS = ("audit", "person")


class DownloadRefused(Exception):
    """A download link that cannot be honoured; the message says why."""


def _fernet() -> Fernet:
    secret = current_app.config.get("SECRET_KEY")
    if not secret:
        raise DownloadRefused("downloads need the SECRET_KEY setting (ADDON_SECRET_KEY)")
    digest = hashlib.sha256(b"inbox-crm/admin-download\0" + str(secret).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def download_url(member: Member, kind: str, **details: Any) -> str:
    """A link to download an export of `kind` as this member; valid DOWNLOAD_LINK_SECONDS."""
    payload = {"w": member.workspace_id, "m": member.id, "k": kind, **details}
    token = _fernet().encrypt(json.dumps(payload).encode()).decode()
    return f"{current_app.config['BASE_URL']}/admin/downloads/{token}"


def _payload(token: str) -> dict[str, Any]:
    try:
        data = json.loads(_fernet().decrypt(token.encode(), ttl=DOWNLOAD_LINK_SECONDS))
    except InvalidToken:
        raise DownloadRefused("this download link has expired or is not valid") from None
    if not isinstance(data, dict) or data.get("k") not in KINDS:
        raise DownloadRefused("this download link is not valid")
    if not isinstance(data.get("w"), int) or not isinstance(data.get("m"), int):
        raise DownloadRefused("this download link is not valid")
    return data


def _admin(session: Session, data: dict[str, Any]) -> Member:
    member = session.get(Member, data["m"])
    if member is None or member.workspace_id != data["w"]:
        raise DownloadRefused("you are no longer a member of this workspace")
    if not can(member, "admin"):
        raise DownloadRefused(
            f"your role ({member.role}) does not allow you to manage the workspace"
        )
    return member


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def _refused(reason: str) -> Response:
    response = jsonify({"error": reason})
    response.status_code = 403
    return response


@bp.get("/admin/downloads/<token>")
def admin_download(token: str) -> Response:
    """Send the export a download link names, as an attachment."""
    # Its own session: the audit log streams after the request's session has ended. The
    # export's audit entry is committed before the first byte.
    session: Session = current_app.extensions["addon.sessionmaker"]()
    try:
        data = _payload(token)
        member = _admin(session, data)
        if data["k"] == "person":
            body = json.dumps(
                export_person(session, member, str(data.get("email", ""))),
                ensure_ascii=False,
                indent=2,
            )
            session.commit()
            session.close()
            return _attachment(iter([body]), "application/json", "person-export.json")
        flt = AuditFilter(
            _int_or_none(data.get("actor_id")),
            _int_or_none(data.get("record_id")),
            data["action"] if isinstance(data.get("action"), str) else None,
        )
        fmt = str(data.get("fmt", ""))
        lines = export_lines(session, member, flt, fmt)
        session.commit()
    except (DownloadRefused, FilterError, PrivacyError) as exc:
        session.rollback()
        session.close()
        return _refused(str(exc))
    except BaseException:
        session.rollback()
        session.close()
        raise

    def stream() -> Iterator[str]:
        try:
            yield from lines
        finally:
            session.rollback()
            session.close()

    mimetype = "text/csv" if fmt == "csv" else "application/x-ndjson"
    return _attachment(stream(), mimetype, f"audit-log.{fmt}")


def _attachment(body: Iterator[str], mimetype: str, filename: str) -> Response:
    return Response(
        body,
        mimetype=mimetype,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
