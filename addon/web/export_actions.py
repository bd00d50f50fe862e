"""CSV export from the sidebar: a button opens a signed, short-lived download link.

`export_view` (permission "export", parameter `view_id` or `folder`) answers with an
openLink action to `GET /exports/<token>`. The token is signed with the app's SECRET_KEY
(itsdangerous) and names the workspace, the member and the folder or view; it expires after
EXPORT_LINK_SECONDS. The download checks everything again (the member still belongs to the
workspace, their role still allows exporting, the view is still theirs to see), writes the
export's audit entry, then streams the CSV as an attachment. A refused link answers 403 with
the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, g, jsonify
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from addon.auth.roles import PermissionDenied, record_scope, require
from addon.cards.records import error_card
from addon.cards.responses import push
from addon.crm.csvio import write_csv
from addon.crm.exports import export_rows
from addon.crm.models import Folder, Member, SavedView
from addon.crm.records import RecordNotFound
from addon.crm.views import ViewError, count_view, get_view, load_definition
from addon.web.events import AddonRequest
from addon.web.helpers import folder_for, scope
from addon.web.registry import Result, action, bp

EXPORT_LINK_SECONDS = 600
_SALT = "inbox-crm/csv-export"


class ExportRefused(Exception):
    """A download link that cannot be honoured; the message says why."""


def _serializer() -> URLSafeTimedSerializer:
    secret = current_app.config.get("SECRET_KEY")
    if not secret:
        raise ExportRefused("exports need the SECRET_KEY setting (ADDON_SECRET_KEY)")
    return URLSafeTimedSerializer(secret, salt=_SALT)


def export_token(member: Member, folder: Folder, view: SavedView | None) -> str:
    """A signed token naming who exports what; valid for EXPORT_LINK_SECONDS."""
    return str(
        _serializer().dumps(
            {
                "w": member.workspace_id,
                "m": member.id,
                "f": folder.id,
                "v": view.id if view is not None else None,
            }
        )
    )


def _target(req: AddonRequest) -> tuple[Folder, SavedView | None]:
    """The folder (and view) named by the parameters, in the caller's workspace only."""
    session, member = req.session, req.member
    view_id = req.param("view_id")
    if view_id:
        try:
            view = get_view(session, member, view_id)
        except ViewError:
            # Another workspace's view, or someone else's personal one, looks unknown.
            raise RecordNotFound(view_id) from None
        folder = session.get(Folder, view.folder_id)
        if folder is None:
            raise RecordNotFound(view_id)
        require(member, "export", folder)
        return folder, view
    return folder_for(req, req.param("folder")), None


@action("export_view", "export")
def export_view(req: AddonRequest) -> Result:
    """Open a download link for the CSV of a saved view (view_id) or a folder (folder)."""
    folder, view = _target(req)
    try:
        token = export_token(req.member, folder, view)
    except ExportRefused as exc:
        g.db_rollback = True
        return push(error_card("Export unavailable", _sentence(str(exc))))
    if view is not None:
        try:
            count = count_view(
                req.session, folder, load_definition(req.session, view), visible=scope(req)
            )
        except ViewError as exc:
            g.db_rollback = True
            return push(error_card("Cannot export this view", _sentence(str(exc))))
        what = f"{view.name} ({count:,} {folder.name.lower()})"
    else:
        what = folder.name
    url = f"{current_app.config['BASE_URL']}/exports/{token}"
    return {
        "renderActions": {
            "action": {
                "link": {"url": url, "openAs": "FULL_SIZE", "onClose": "NOTHING"},
                "notification": {"text": f"Downloading {what} as CSV"},
            }
        },
        "stateChanged": False,
    }


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _refused(reason: str) -> Response:
    response = jsonify({"error": reason})
    response.status_code = 403
    return response


def _payload(token: str) -> dict[str, Any]:
    try:
        data = _serializer().loads(token, max_age=EXPORT_LINK_SECONDS)
    except SignatureExpired:
        raise ExportRefused("this download link has expired; export again") from None
    except BadSignature:
        raise ExportRefused("this download link is not valid") from None
    ints = ("w", "m", "f")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), int) for k in ints):
        raise ExportRefused("this download link is not valid")
    if data.get("v") is not None and not isinstance(data["v"], int):
        raise ExportRefused("this download link is not valid")
    return data


def _checked(session: Session, data: dict[str, Any]) -> tuple[Member, Folder, SavedView | None]:
    """Who and what the link names, re-checked now: membership, role, folder, view."""
    member = session.get(Member, data["m"])
    if member is None or member.workspace_id != data["w"]:
        raise ExportRefused("you are no longer a member of this workspace")
    try:
        require(member, "export")
    except PermissionDenied as exc:
        raise ExportRefused(str(exc)) from None
    folder = session.get(Folder, data["f"])
    if folder is None or folder.workspace_id != member.workspace_id:
        raise ExportRefused("this folder no longer exists")
    try:
        require(member, "export", folder)
    except PermissionDenied as exc:
        raise ExportRefused(str(exc)) from None
    view = None
    if data.get("v") is not None:
        try:
            view = get_view(session, member, data["v"])
        except ViewError as exc:
            raise ExportRefused(str(exc)) from None
        if view.folder_id != folder.id:
            raise ExportRefused("this download link is not valid")
    return member, folder, view


@bp.get("/exports/<token>")
def download_export(token: str) -> Response:
    """Stream the CSV a signed export link names, as an attachment."""
    # Its own session: the rows are read while the response streams, after the request
    # (and its session) has ended. The audit entry is committed before the first byte.
    session: Session = current_app.extensions["addon.sessionmaker"]()
    try:
        data = _payload(token)
        member, folder, view = _checked(session, data)
        try:
            table = export_rows(
                session, member, folder, view, visible=record_scope(session, member)
            )
        except ViewError as exc:
            # A field the view filters on was removed since the link was made.
            raise ExportRefused(f"this view cannot be exported: {exc}") from None
        session.commit()
    except ExportRefused as exc:
        session.rollback()
        session.close()
        return _refused(str(exc))
    except BaseException:
        session.rollback()
        session.close()
        raise

    def stream() -> Iterator[str]:
        try:
            yield from write_csv(table.header, table.rows)
        finally:
            session.rollback()
            session.close()

    return Response(
        stream(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{table.filename}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
