"""A fake Google OAuth server: consent, token (code and refresh grants) and revocation.

Served by the fake Gmail server (FakeGmail.oauth), so tests and the local simulator run
the real google-auth-oauthlib Flow and google-auth refresh against it. The consent page
approves at once as `account` and redirects back with a code; the token endpoint answers
as Google does, including `invalid_grant` for a refresh token that was revoked or expired.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from addon.auth.devkeys import TokenMinter

AUTH_PATH = "/o/oauth2/auth"
TOKEN_PATH = "/token"
REVOKE_PATH = "/revoke"


@dataclass
class IssuedToken:
    """A refresh token the fake issued: whose mailbox, which scopes, still valid or not."""

    email: str
    scopes: list[str]
    revoked: bool = False


@dataclass(frozen=True)
class IssuedCode:
    """An authorization code: who consented to what, and the PKCE challenge to meet."""

    email: str
    scopes: list[str]
    redirect_uri: str
    challenge: str


@dataclass
class FakeOAuth:
    """State of the fake OAuth server; knobs are plain attributes tests set."""

    client_id: str
    client_secret: str
    minter: TokenMinter | None = None
    # Who consents on the consent page: this account when set, else the login_hint
    # account (Google's page preselects it).
    account: str | None = None
    # Knobs: answer the code exchange without a refresh token; fail revocations.
    omit_refresh_token: bool = False
    revoke_fails_with: int | None = None
    codes: dict[str, IssuedCode] = field(default_factory=dict)
    refresh_tokens: dict[str, IssuedToken] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)  # access -> refresh token
    requests: list[dict[str, Any]] = field(default_factory=list)

    def reset(self) -> None:
        """Forget every code and token and reset the knobs."""
        self.codes.clear()
        self.refresh_tokens.clear()
        self.access_tokens.clear()
        self.requests.clear()
        self.omit_refresh_token = False
        self.revoke_fails_with = None
        self.account = None

    def revoke(self, refresh_token: str) -> None:
        """Revoke a refresh token and its access tokens, as the user can at Google."""
        issued = self.refresh_tokens.get(refresh_token)
        if issued is not None:
            issued.revoked = True
        for access, parent in list(self.access_tokens.items()):
            if parent == refresh_token:
                del self.access_tokens[access]

    def revoke_all(self) -> None:
        """Revoke every refresh token issued so far."""
        for token in list(self.refresh_tokens):
            self.revoke(token)

    def valid_access(self, access_token: str) -> bool:
        """Whether an access token was issued and its grant still holds."""
        parent = self.access_tokens.get(access_token)
        issued = self.refresh_tokens.get(parent or "")
        return issued is not None and not issued.revoked

    # ------------------------------------------------------------------ HTTP

    def handle(self, request: Request) -> Response | None:
        """Answer a request for one of the OAuth paths; None for any other path."""
        if request.path not in (AUTH_PATH, TOKEN_PATH, REVOKE_PATH):
            return None
        self.requests.append(
            {"method": request.method, "path": request.path, "form": request.form.to_dict()}
        )
        if request.path == AUTH_PATH:
            return self._consent(request)
        if request.path == TOKEN_PATH and request.method == "POST":
            return self._token(request)
        if request.path == REVOKE_PATH and request.method == "POST":
            return self._revoke(request)
        return _json({"error": "invalid_request"}, 405)

    def _consent(self, request: Request) -> Response:
        args = request.args
        if args.get("client_id") != self.client_id:
            return _json({"error": "invalid_client"}, 401)
        redirect_uri = args.get("redirect_uri", "")
        if not redirect_uri or args.get("response_type") != "code":
            return _json({"error": "invalid_request"}, 400)
        code = "code-" + secrets.token_urlsafe(12)
        account = self.account or args.get("login_hint", "")
        if not account:
            return _json({"error": "invalid_request", "error_description": "no account"}, 400)
        self.codes[code] = IssuedCode(
            account,
            args.get("scope", "").split(),
            redirect_uri,
            args.get("code_challenge", "") if args.get("code_challenge_method") == "S256" else "",
        )
        query = urlencode({"code": code, "state": args.get("state", ""), "scope": args["scope"]})
        return Response("", status=302, headers={"Location": f"{redirect_uri}?{query}"})

    def _client_ok(self, request: Request) -> bool:
        client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
            client_id, _, secret = decoded.partition(":")
        return client_id == self.client_id and secret == self.client_secret

    def _token(self, request: Request) -> Response:
        if not self._client_ok(request):
            return _json({"error": "invalid_client", "error_description": "Unauthorized"}, 401)
        grant_type = request.form.get("grant_type")
        if grant_type == "authorization_code":
            entry = self.codes.pop(request.form.get("code", ""), None)
            if entry is None or entry.redirect_uri != request.form.get("redirect_uri"):
                return _invalid_grant("Malformed auth code.")
            if entry.challenge and _challenge(request.form.get("code_verifier", "")) != (
                entry.challenge
            ):
                return _invalid_grant("Invalid code verifier.")
            email, scopes = entry.email, entry.scopes
            refresh = "refresh-" + secrets.token_urlsafe(24)
            self.refresh_tokens[refresh] = IssuedToken(email, scopes)
            body = self._access(refresh, scopes)
            if not self.omit_refresh_token:
                body["refresh_token"] = refresh
            if "openid" in scopes and self.minter is not None:
                body["id_token"] = self.minter.user_token(email, email.partition("@")[2])
            return _json(body, 200)
        if grant_type == "refresh_token":
            refresh = request.form.get("refresh_token", "")
            issued = self.refresh_tokens.get(refresh)
            if issued is None or issued.revoked:
                return _invalid_grant("Token has been expired or revoked.")
            return _json(self._access(refresh, issued.scopes), 200)
        return _json({"error": "unsupported_grant_type"}, 400)

    def _access(self, refresh: str, scopes: list[str]) -> dict[str, Any]:
        access = "access-" + secrets.token_urlsafe(16)
        self.access_tokens[access] = refresh
        return {
            "access_token": access,
            "expires_in": 3599,
            "scope": " ".join(scopes),
            "token_type": "Bearer",
            "issued_at": int(time.time()),
        }

    def _revoke(self, request: Request) -> Response:
        if self.revoke_fails_with is not None:
            return _json({"error": "backend_error"}, self.revoke_fails_with)
        token = request.form.get("token", "")
        if token in self.refresh_tokens and not self.refresh_tokens[token].revoked:
            self.revoke(token)
            return _json({}, 200)
        if token in self.access_tokens:
            self.revoke(self.access_tokens[token])
            return _json({}, 200)
        return _json(
            {"error": "invalid_token", "error_description": "Token expired or revoked"}, 400
        )


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _invalid_grant(description: str) -> Response:
    return _json({"error": "invalid_grant", "error_description": description}, 400)
