"""The OAuth web flow that gives Inbox CRM offline access to a member's Gmail.

The Gmail access card's Connect button answers with a link (opened as an overlay) to
`GET /oauth/start?state=...`. The state is signed with the app's SECRET_KEY and names the
workspace, the member and the purpose; it expires after STATE_SECONDS. /oauth/start
redirects to Google's consent page, built by google-auth-oauthlib's Flow (offline access,
consent prompt, incremental scopes). Google sends the browser back to `/oauth/callback`,
which checks the state again, exchanges the code, verifies the ID token (the account
granted must be the member's own), and stores the refresh token encrypted. Every refusal
is a small HTML page with the reason and a 4xx status, and writes nothing.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, redirect, request
from google_auth_oauthlib.flow import Flow
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from oauthlib.oauth2.rfc6749.errors import OAuth2Error
from requests import RequestException
from werkzeug.wrappers import Response

from addon.auth.grants import (
    PURPOSE_SCOPES,
    GrantError,
    OAuthSettings,
    missing_permission,
    scopes_for,
    store_grant,
)
from addon.auth.roles import PermissionDenied
from addon.auth.token_keys import keys_from_config
from addon.auth.tokens import TokenError, verify_id_token
from addon.crm.models import Member
from addon.db import get_session
from addon.gmail.addresses import canonical_email
from addon.web.events import _certs

bp = Blueprint("oauth", __name__, url_prefix="/oauth")

STATE_SECONDS = 900
_SALT = "inbox-crm/oauth-state"
_VERIFIER_SALT = "inbox-crm/oauth-verifier"
# The PKCE verifier travels from /oauth/start to the callback in this cookie, which also
# ties the callback to the browser that started the flow.
VERIFIER_COOKIE = "inbox_crm_oauth"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class FlowRefused(Exception):
    """The flow cannot go on; the message is shown to the user on the page."""


def init_app(app: Flask) -> None:
    """Check the token keys at start-up and register the flow's routes."""
    # Refuses to start (TokenKeyError) without ADDON_TOKEN_KEYS outside local runs.
    keys_from_config(dict(app.config))
    # requests-oauthlib logs whole token answers (refresh tokens included) at DEBUG;
    # tokens must never reach the logs, whatever level the deployment chooses.
    logging.getLogger("requests_oauthlib").setLevel(logging.WARNING)
    urls = [app.config[k] for k in ("OAUTH_AUTH_URL", "OAUTH_TOKEN_URL", "OAUTH_REVOKE_URL")]
    for url in urls:
        parts = urlsplit(str(url))
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
            raise ValueError(f"OAuth endpoint {url!r} must use https")
    if any(urlsplit(str(url)).scheme == "http" for url in urls):
        # oauthlib refuses plain http unless told otherwise; only loopback endpoints (the
        # fake OAuth server of tests and the simulator) get here, as checked above.
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    app.register_blueprint(bp)


def oauth_settings() -> OAuthSettings:
    """The app's OAuth settings (built once per app)."""
    settings: OAuthSettings | None = current_app.extensions.get("addon.oauth")
    if settings is None:
        settings = OAuthSettings.from_config(current_app.config)
        current_app.extensions["addon.oauth"] = settings
    return settings


def _serializer(salt: str = _SALT) -> URLSafeTimedSerializer:
    secret = current_app.config.get("SECRET_KEY")
    if not secret:
        raise FlowRefused("Gmail access needs the SECRET_KEY setting (ADDON_SECRET_KEY)")
    return URLSafeTimedSerializer(secret, salt=salt)


def _state_digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _verifier_from_cookie(state: str) -> str:
    raw = request.cookies.get(VERIFIER_COOKIE, "")
    refused = FlowRefused(
        "This window did not start the connection (or blocks cookies). "
        "Open Gmail access again and retry."
    )
    try:
        data = _serializer(_VERIFIER_SALT).loads(raw, max_age=STATE_SECONDS)
    except BadSignature:
        raise refused from None
    if not isinstance(data, dict) or data.get("s") != _state_digest(state):
        raise refused
    verifier = data.get("v")
    if not isinstance(verifier, str) or not verifier:
        raise refused
    return verifier


def state_for(member: Member, purpose: str) -> str:
    """A signed, short-lived state naming the member and the purpose."""
    if purpose not in PURPOSE_SCOPES:
        raise FlowRefused(f"unknown purpose {purpose!r}")
    return str(_serializer().dumps({"w": member.workspace_id, "m": member.id, "p": purpose}))


def _check_configured(settings: OAuthSettings) -> None:
    if not settings.client_id or not settings.client_secret:
        raise FlowRefused(
            "Gmail access is not set up on this server "
            "(ADDON_OAUTH_CLIENT_ID and ADDON_OAUTH_CLIENT_SECRET)"
        )


def start_url(member: Member, purpose: str) -> str:
    """Where the Connect button sends the browser; FlowRefused when it cannot work here."""
    _check_configured(oauth_settings())
    return f"{current_app.config['BASE_URL']}/oauth/start?state={state_for(member, purpose)}"


@dataclass(frozen=True)
class State:
    """What a verified state names: the member (re-checked now) and the purpose."""

    member: Member
    purpose: str


def read_state(value: str) -> State:
    """The member and purpose of a state; FlowRefused if tampered, expired or stale."""
    try:
        data = _serializer().loads(value, max_age=STATE_SECONDS)
    except SignatureExpired:
        raise FlowRefused("This link has expired. Open Gmail access again and retry.") from None
    except BadSignature:
        raise FlowRefused("This link is not valid.") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("w"), int)
        or not isinstance(data.get("m"), int)
        or data.get("p") not in PURPOSE_SCOPES
    ):
        raise FlowRefused("This link is not valid.")
    member = get_session().get(Member, data["m"])
    if member is None or member.workspace_id != data["w"]:
        raise FlowRefused("You are no longer a member of this workspace.")
    lacking = missing_permission(member, data["p"])
    if lacking is not None:
        reason = str(PermissionDenied(lacking, member.role))
        raise FlowRefused(reason[:1].upper() + reason[1:] + ".")
    return State(member, data["p"])


def _flow(settings: OAuthSettings, scopes: list[str], state: str, verifier: str) -> Flow:
    config = {
        "web": {
            "client_id": settings.client_id,
            "client_secret": settings.client_secret,
            "auth_uri": settings.auth_url,
            "token_uri": settings.token_url,
        }
    }
    return Flow.from_client_config(
        config,
        scopes=scopes,
        redirect_uri=f"{current_app.config['BASE_URL']}/oauth/callback",
        state=state,
        code_verifier=verifier,
    )


def _page(title: str, text: str, status: int = 200) -> Response:
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'></head>"
        "<body style='font-family: sans-serif; max-width: 32em; margin: 3em auto'>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )
    return Response(
        body,
        status=status,
        mimetype="text/html",
        headers={
            "Cache-Control": "no-store",
            # The callback URL carries the authorization code; never pass it on.
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )


@bp.get("/start")
def start() -> Response:
    """Check the state and redirect to Google's consent page."""
    try:
        state = read_state(request.args.get("state", ""))
        settings = oauth_settings()
        _check_configured(settings)
        verifier = secrets.token_urlsafe(64)
        flow = _flow(settings, scopes_for(state.purpose), request.args["state"], verifier)
        url, _ = flow.authorization_url(
            access_type="offline",
            prompt="consent",
            include_granted_scopes="true",
            login_hint=state.member.email,
        )
    except FlowRefused as exc:
        return _page("Gmail access", str(exc), 400)
    response = redirect(url, code=302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    cookie = _serializer(_VERIFIER_SALT).dumps(
        {"v": verifier, "s": _state_digest(request.args["state"])}
    )
    response.set_cookie(
        VERIFIER_COOKIE,
        str(cookie),
        max_age=STATE_SECONDS,
        path="/oauth/callback",
        secure=current_app.config["BASE_URL"].startswith("https://"),
        httponly=True,
        samesite="Lax",
    )
    return response


def _exchange(flow: Flow, code: str) -> dict[str, Any]:
    try:
        return dict(flow.fetch_token(code=code))
    except Warning as exc:
        # include_granted_scopes: Google answers with every scope granted so far, which
        # oauthlib reports as "scope has changed" (a Warning carrying the token).
        token = getattr(exc, "token", None)
        if token is None:
            raise FlowRefused("Google's answer could not be read.") from None
        return dict(token)
    except OAuth2Error as exc:
        raise FlowRefused(f"Google refused the authorization ({exc.error}).") from None
    except (RequestException, OSError, ValueError):
        raise FlowRefused("Google's token service could not be reached; try again.") from None


def _granted_email(token: dict[str, Any], settings: OAuthSettings) -> str:
    id_token = token.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise FlowRefused("Google did not say which account was granted; try again.")
    try:
        claims = verify_id_token(id_token, settings.client_id, _certs())
    except TokenError as exc:
        raise FlowRefused(f"Google's answer could not be verified ({exc}).") from None
    email = canonical_email(str(claims.get("email", "")))
    if email is None:
        raise FlowRefused("Google's answer names no usable account.")
    return email


@bp.get("/callback")
def callback() -> Response:
    """Exchange the code for a refresh token and store it encrypted."""
    try:
        state = read_state(request.args.get("state", ""))
        error = request.args.get("error")
        if error:
            reason = "you declined" if error == "access_denied" else error
            raise FlowRefused(f"Gmail access was not granted ({reason}).")
        code = request.args.get("code", "")
        if not code:
            raise FlowRefused("Google's answer has no authorization code.")
        verifier = _verifier_from_cookie(request.args["state"])
        settings = oauth_settings()
        flow = _flow(settings, scopes_for(state.purpose), request.args["state"], verifier)
        token = _exchange(flow, code)
        email = _granted_email(token, settings)
        if email != canonical_email(state.member.email):
            raise FlowRefused(
                f"You granted access to {email}, but you use Inbox CRM as "
                f"{state.member.email}. Connect again and choose {state.member.email}."
            )
        raw_scope = token.get("scope") or ""
        # oauthlib hands the scope back as a list; the raw answer has it space-separated.
        granted = raw_scope.split() if isinstance(raw_scope, str) else [str(s) for s in raw_scope]
        missing = [s for s in PURPOSE_SCOPES[state.purpose] if s not in granted]
        if missing:
            raise FlowRefused(
                "Not every permission was granted (" + ", ".join(missing) + "). Connect again "
                "and tick every box on Google's page."
            )
        refresh_token = token.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            raise FlowRefused(
                "Google did not return offline access (no refresh token). Remove Inbox CRM "
                "from your Google account's third-party access, then connect again."
            )
        store_grant(
            get_session(),
            state.member,
            google_email=email,
            scopes=granted,
            refresh_token=refresh_token,
            cipher=settings.cipher,
        )
    except (FlowRefused, GrantError) as exc:
        return _page("Gmail access", str(exc), 400)
    response = _page(
        "Gmail access granted",
        f"Inbox CRM can now use {email} as you asked. You can close this window.",
    )
    response.delete_cookie(VERIFIER_COOKIE, path="/oauth/callback")
    return response
