"""Mail merge's sending identity: each member's offline Gmail grant (addon.auth.grants).

Installed on the app when the server can ask for grants and refresh them (an OAuth client
id and secret are configured); without them mail merge says sending is not set up.
"""

from __future__ import annotations

from flask import Flask
from google.oauth2.credentials import Credentials
from sqlalchemy.orm import Session

from addon.auth.grants import SEND, GrantError, allows, fresh_credentials, get_grant
from addon.crm.models import Member
from addon.mailing.sender import GrantRevoked, RateLimited
from addon.web.mailing_actions import GRANTS_EXTENSION, GrantHooks
from addon.web.oauth import FlowRefused, oauth_settings, start_url

# A token refresh that failed for a reason other than the grant (Google unreachable): the
# message was not sent, so the worker may simply try again a little later.
_REFRESH_RETRY_SECONDS = 60.0


def has_send_grant(session: Session, member: Member) -> bool:
    """Whether the member's Gmail grant covers sending."""
    return allows(get_grant(session, member), SEND)


def connect_url(member: Member) -> str | None:
    """Where the member grants sending, or None when this server cannot ask for it."""
    try:
        return start_url(member, SEND)
    except FlowRefused:
        return None


def sending_credentials(session: Session, member: Member, purpose: str = SEND) -> Credentials:
    """Live credentials for sending; GrantRevoked when Google refused the grant (marked)."""
    try:
        return fresh_credentials(session, member, purpose, oauth_settings())
    except GrantError as exc:
        if allows(get_grant(session, member), purpose):
            raise RateLimited(str(exc), retry_after=_REFRESH_RETRY_SECONDS) from None
        raise GrantRevoked(str(exc)) from None


def init_app(app: Flask) -> None:
    """Let mail merge send with members' grants when OAuth is configured here."""
    if app.config.get("OAUTH_CLIENT_ID") and app.config.get("OAUTH_CLIENT_SECRET"):
        app.extensions[GRANTS_EXTENSION] = GrantHooks(
            has_send_grant, connect_url, sending_credentials
        )
