"""Members' offline Google grants: storing, using, failing and revoking them.

A grant is asked for through the OAuth web flow (addon/web/oauth.py) for a purpose:
"send" (gmail.send, for mail merge), "sync" (gmail.readonly, for mailbox sync) or both.
Callers get google-auth Credentials from `credentials_for`; when Google answers a refresh
with invalid_grant they call `mark_failed` (or use `fresh_credentials`, which does), and the
grant is not used again until the member connects anew. Services flush, never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from google.auth.exceptions import RefreshError, TransportError
from google.auth.transport.requests import Request as AuthRequest
from google.oauth2.credentials import Credentials
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.auth.grant_models import ACTIVE, ERROR_CHARS, EXPIRED, REVOKED, GoogleGrant
from addon.auth.roles import can
from addon.auth.token_keys import TokenCipher, UnreadableToken
from addon.crm.models import Member, utcnow

SEND_SCOPE = "https://www.googleapis.com/auth/gmail.send"
READ_SCOPE = "https://www.googleapis.com/auth/gmail.readonly"
IDENTITY_SCOPES = ("openid", "https://www.googleapis.com/auth/userinfo.email")

SEND, SYNC, BOTH = "send", "sync", "both"
# The Gmail scope each purpose needs; "both" asks for every one.
PURPOSE_SCOPES: dict[str, tuple[str, ...]] = {
    SEND: (SEND_SCOPE,),
    SYNC: (READ_SCOPE,),
    BOTH: (SEND_SCOPE, READ_SCOPE),
}
# The role permission each purpose needs (sync links threads to records automatically).
PURPOSE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    SEND: ("send_mail",),
    SYNC: ("link",),
    BOTH: ("send_mail", "link"),
}


class GrantError(Exception):
    """A grant cannot be used or changed; the message is safe to show."""


@dataclass(frozen=True)
class OAuthSettings:
    """The web OAuth client and Google's endpoints, from the app configuration."""

    client_id: str
    client_secret: str
    auth_url: str
    token_url: str
    revoke_url: str
    cipher: TokenCipher
    timeout: int = 10

    @classmethod
    def from_config(cls, config: Any) -> OAuthSettings:
        """Settings read from a Flask config (or any mapping of the ADDON_* keys)."""
        return cls(
            client_id=str(config["OAUTH_CLIENT_ID"]),
            client_secret=str(config["OAUTH_CLIENT_SECRET"]),
            auth_url=str(config["OAUTH_AUTH_URL"]),
            token_url=str(config["OAUTH_TOKEN_URL"]),
            revoke_url=str(config["OAUTH_REVOKE_URL"]),
            cipher=TokenCipher.from_config(dict(config)),
            timeout=int(config.get("GMAIL_TIMEOUT_SECONDS", 10)),
        )


def scopes_for(purpose: str) -> list[str]:
    """Every scope the consent asks for a purpose; ValueError for an unknown purpose."""
    if purpose not in PURPOSE_SCOPES:
        raise ValueError(f"unknown purpose {purpose!r}")
    return [*PURPOSE_SCOPES[purpose], *IDENTITY_SCOPES]


def missing_permission(member: Member, purpose: str) -> str | None:
    """The first permission the member's role lacks for a purpose, or None."""
    for permission in PURPOSE_PERMISSIONS.get(purpose, ()):
        if not can(member, permission):
            return permission
    return None


def get_grant(session: Session, member: Member) -> GoogleGrant | None:
    """The member's grant (in their own workspace only), active or not."""
    return session.execute(
        select(GoogleGrant).where(
            GoogleGrant.member_id == member.id,
            GoogleGrant.workspace_id == member.workspace_id,
        )
    ).scalar_one_or_none()


def allows(grant: GoogleGrant | None, purpose: str) -> bool:
    """Whether a grant is usable now for a purpose (active, a token, the scopes)."""
    if grant is None or grant.status != ACTIVE or not grant.refresh_token:
        return False
    return set(PURPOSE_SCOPES[purpose]) <= grant.scope_set()


def store_grant(
    session: Session,
    member: Member,
    *,
    google_email: str,
    scopes: list[str],
    refresh_token: str,
    cipher: TokenCipher,
    now: datetime | None = None,
) -> GoogleGrant:
    """Save (or replace) the member's grant with a new refresh token, encrypted."""
    if not refresh_token:
        raise GrantError("Google did not return a refresh token")
    moment = now or utcnow()
    grant = get_grant(session, member)
    if grant is None:
        grant = GoogleGrant(workspace_id=member.workspace_id, member_id=member.id)
        grant.created_at = moment
        session.add(grant)
    if grant.google_email and grant.google_email != google_email:
        # Another mailbox: its history ids and counts mean nothing for this one.
        grant.history_id = None
        grant.messages_imported = 0
        grant.last_sync_at = None
    grant.google_email = google_email
    grant.scopes = " ".join(sorted(set(scopes)))
    grant.refresh_token = cipher.encrypt(refresh_token)
    grant.status = ACTIVE
    grant.last_error = ""
    grant.last_sync_error = ""
    grant.updated_at = moment
    session.flush()
    return grant


def credentials_for(
    session: Session, member: Member, purpose: str, settings: OAuthSettings
) -> Credentials | None:
    """Credentials for the member's mailbox for a purpose, or None without a usable grant.

    The access token is fetched by google-auth on first use (or by fresh_credentials).
    """
    grant = get_grant(session, member)
    if not allows(grant, purpose):
        return None
    assert grant is not None and grant.refresh_token is not None
    try:
        refresh_token = settings.cipher.decrypt(grant.refresh_token)
    except UnreadableToken as exc:
        mark_failed(session, grant, f"{exc}; connect again", status=EXPIRED)
        return None
    return Credentials(
        token=None,
        refresh_token=refresh_token,
        token_uri=settings.token_url,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        scopes=sorted(grant.scope_set()),
    )


def _reason(exc: BaseException) -> str:
    # RefreshError carries (message, response body); the message alone names the cause
    # ("invalid_grant: Token has been expired or revoked.") and holds no token.
    text = str(exc.args[0]) if exc.args else exc.__class__.__name__
    return text[:ERROR_CHARS]


def is_invalid_grant(exc: BaseException) -> bool:
    """Whether a refresh failure means the grant itself is dead (expired or revoked)."""
    return isinstance(exc, RefreshError) and "invalid_grant" in _reason(exc)


def mark_failed(
    session: Session, grant: GoogleGrant, reason: str, *, status: str = EXPIRED
) -> None:
    """Stop using a grant Google refused: it keeps the reason until the member reconnects."""
    grant.status = status
    grant.last_error = reason[:ERROR_CHARS]
    grant.updated_at = utcnow()
    session.flush()


def fresh_credentials(
    session: Session,
    member: Member,
    purpose: str,
    settings: OAuthSettings,
    http: requests.Session | None = None,
) -> Credentials:
    """Credentials with a live access token; GrantError (and the grant marked) otherwise.

    invalid_grant marks the grant expired; a network failure is reported without
    touching the grant, so the next attempt tries again.
    """
    credentials = credentials_for(session, member, purpose, settings)
    if credentials is None:
        grant = get_grant(session, member)
        raise GrantError(unusable_reason(grant, purpose))
    try:
        credentials.refresh(AuthRequest(http or requests.Session()))
    except RefreshError as exc:
        grant = get_grant(session, member)
        assert grant is not None
        if is_invalid_grant(exc):
            mark_failed(session, grant, f"Google refused the grant ({_reason(exc)})")
            raise GrantError(f"Google refused the grant of {grant.google_email}") from None
        raise GrantError(f"Google refused to refresh the access ({_reason(exc)})") from None
    except (TransportError, requests.RequestException, OSError):
        raise GrantError("Google's token service could not be reached") from None
    return credentials


def unusable_reason(grant: GoogleGrant | None, purpose: str) -> str:
    """Why a grant cannot serve a purpose, in words."""
    what = {SEND: "sending", SYNC: "mailbox sync", BOTH: "sending and mailbox sync"}[purpose]
    if grant is None:
        return f"Gmail access for {what} was never granted"
    if grant.status != ACTIVE or not grant.refresh_token:
        detail = f": {grant.last_error}" if grant.last_error else ""
        return f"Gmail access is {grant.status}{detail}; connect again"
    return f"Gmail access was granted without {what}; connect again for it"


def revoke_grant(session: Session, member: Member, settings: OAuthSettings) -> str | None:
    """Revoke the member's grant at Google, then forget the token whatever Google said.

    Returns None when Google confirmed, else why the revocation at Google failed (the
    token is deleted here either way).
    """
    grant = get_grant(session, member)
    if grant is None or not grant.refresh_token:
        raise GrantError("there is no Gmail access to revoke")
    problem: str | None = None
    try:
        token = settings.cipher.decrypt(grant.refresh_token)
    except UnreadableToken as exc:
        token, problem = "", str(exc)
    if token:
        try:
            answer = requests.post(
                settings.revoke_url,
                data={"token": token},
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=settings.timeout,
            )
        except requests.RequestException:
            problem = "Google's revocation service could not be reached"
        else:
            # 400 invalid_token: Google already forgot it, which is what was asked.
            if answer.status_code >= 400 and "invalid_token" not in answer.text:
                problem = f"Google answered {answer.status_code} to the revocation"
    grant.refresh_token = None
    grant.scopes = ""
    grant.status = REVOKED
    grant.last_error = "" if problem is None else f"revocation at Google failed: {problem}"
    grant.updated_at = utcnow()
    session.flush()
    return problem


def reencrypt_all(session: Session, cipher: TokenCipher) -> int:
    """Re-encrypt every stored token with the first key (after adding a new one)."""
    count = 0
    for grant in session.execute(
        select(GoogleGrant).where(GoogleGrant.refresh_token.is_not(None))
    ).scalars():
        assert grant.refresh_token is not None
        grant.refresh_token = cipher.rotate(grant.refresh_token)
        count += 1
    session.flush()
    return count
