"""The public unsubscribe pages: GET /u/<token> asks, POST /u/<token> unsubscribes.

No Google sign-in here: the reader of a campaign message follows the signed link from
the message (or their mail client posts `List-Unsubscribe=One-Click` to it, RFC 8058).
GET only shows a confirmation page, because link scanners fetch every URL of a message;
POST records the suppression, committed before the answer leaves. A cut or changed link
answers 400, a link whose recipient is gone (or belongs to another workspace) 404, each
with a page saying why.
"""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response, current_app, g

from addon.db import get_session
from addon.mailing.unsubscribe import (
    UnsubscribeRefused,
    find_recipient,
    masked,
    read_token,
    unsubscribe,
)

bp = Blueprint("unsubscribe", __name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;
color:#202124}}button{{font-size:1rem;padding:.5rem 1.25rem}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""


def _page(title: str, body: str, status: int = 200) -> Response:
    response = Response(
        _PAGE.format(title=escape(title), body=body), status=status, mimetype="text/html"
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # The token is in the URL: keep it out of Referer headers of anything the page loads.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    )
    return response


def _refused(exc: UnsubscribeRefused, status: int) -> Response:
    g.db_rollback = True
    reason = str(exc)
    return _page("Link not valid", f"<p>{escape(reason[:1].upper() + reason[1:])}.</p>", status)


def _secret() -> str:
    return str(current_app.config.get("SECRET_KEY") or "")


@bp.get("/u/<token>")
def confirm_page(token: str) -> Response:
    """Ask the reader to confirm; nothing changes on GET."""
    try:
        workspace_id, recipient_id = read_token(_secret(), token)
    except UnsubscribeRefused as exc:
        return _refused(exc, 400)
    try:
        recipient = find_recipient(get_session(), workspace_id, recipient_id)
    except UnsubscribeRefused as exc:
        return _refused(exc, 404)
    body = (
        f"<p>Stop mail merge messages to <strong>{escape(masked(recipient.email))}</strong> "
        "from this sender's organisation?</p>"
        '<form method="post">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        "<button type=submit>Unsubscribe</button></form>"
    )
    return _page("Unsubscribe", body)


@bp.post("/u/<token>")
def one_click(token: str) -> Response:
    """Unsubscribe at once (the one-click POST of mail clients, or the confirm button)."""
    try:
        workspace_id, recipient_id = read_token(_secret(), token)
    except UnsubscribeRefused as exc:
        return _refused(exc, 400)
    try:
        done = unsubscribe(get_session(), workspace_id, recipient_id)
    except UnsubscribeRefused as exc:
        return _refused(exc, 404)
    body = (
        f"<p><strong>{escape(masked(done.email))}</strong> will get no more mail merge "
        "messages from this sender's organisation.</p>"
    )
    return _page("You are unsubscribed", body)
