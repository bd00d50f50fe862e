"""Verification of Google-signed ID tokens against a configurable certificate URL."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import requests
from google.auth import exceptions as google_exceptions
from google.auth import jwt

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
# Enough for every user active within an hour on one instance; memory stays bounded.
VERIFIED_TOKENS_KEPT = 4096


class TokenError(Exception):
    """A token that is missing, malformed or not acceptable; the message says why."""


class CertificateCache:
    """Google's signing certificates, fetched once and reused until they expire.

    Fetching on every request would add a network round trip to every sidebar
    interaction, so certificates are kept for a configured number of seconds.
    """

    def __init__(
        self, url: str, max_age: int, min_refresh_gap: float = 30.0, timeout: float = 5.0
    ) -> None:
        self.url = url
        self.max_age = max_age
        # A token with an unknown key id forces a refetch; without a minimum gap anyone
        # could make the service call the certs URL on every request.
        self.min_refresh_gap = min_refresh_gap
        self.timeout = timeout
        self._certs: dict[str, str] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()
        # Google sends the same user ID token with every event for its hour of life, so
        # a token already verified against the current certificates is remembered.
        self._verified: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    def get(self, *, refresh: bool = False) -> dict[str, str]:
        """The current certificates by key id, refetched when stale or asked to."""
        with self._lock:
            age = time.monotonic() - self._fetched_at
            forced = refresh and age >= self.min_refresh_gap
            if forced or age > self.max_age or not self._certs:
                try:
                    response = requests.get(self.url, timeout=self.timeout)
                    response.raise_for_status()
                    certs = response.json()
                except (requests.RequestException, ValueError) as exc:
                    raise TokenError("signing certificates are unavailable") from exc
                if not isinstance(certs, dict):
                    raise TokenError("signing certificates are malformed")
                fresh = {str(k): str(v) for k, v in certs.items()}
                if fresh != self._certs:
                    # Keys were rotated or withdrawn: verify everything again.
                    self._verified.clear()
                self._certs = fresh
                self._fetched_at = time.monotonic()
            return self._certs

    def verified(self, token: str, audience: str) -> dict[str, Any] | None:
        """Claims of a token verified earlier for this audience, while certs and token are fresh."""
        with self._lock:
            claims = self._verified.get((token, audience))
            if claims is None:
                return None
            fresh_certs = time.monotonic() - self._fetched_at <= self.max_age
            # Strictly before expiry: no clock-skew allowance for a remembered token.
            if not fresh_certs or not time.time() < float(claims.get("exp", 0)):
                del self._verified[(token, audience)]
                return None
            self._verified.move_to_end((token, audience))
            return dict(claims)

    def remember(self, token: str, audience: str, claims: dict[str, Any]) -> None:
        """Remember a token that passed every check."""
        with self._lock:
            self._verified[(token, audience)] = dict(claims)
            while len(self._verified) > VERIFIED_TOKENS_KEPT:
                self._verified.popitem(last=False)


def _key_id(token: str) -> str | None:
    try:
        header = jwt.decode_header(token)
    except (ValueError, TypeError, google_exceptions.GoogleAuthError):
        raise TokenError("token is malformed") from None
    if not isinstance(header, dict):
        raise TokenError("token is malformed")
    kid = header.get("kid")
    return str(kid) if kid else None


def verify_id_token(token: str, audience: str, certs: CertificateCache) -> dict[str, Any]:
    """Check signature, expiry, audience, issuer and verified email; return the claims."""
    if not token or token.count(".") != 2:
        raise TokenError("token is malformed")
    remembered = certs.verified(token, audience)
    if remembered is not None:
        return remembered
    kid = _key_id(token)
    keys = certs.get()
    if kid is not None and kid not in keys:
        # Google rotates keys; a new key id means our copy may simply be old.
        keys = certs.get(refresh=True)
    try:
        claims: dict[str, Any] = jwt.decode(
            token, certs=keys, audience=audience, clock_skew_in_seconds=10
        )
    except (ValueError, google_exceptions.GoogleAuthError) as exc:
        message = str(exc)
        if "audience" in message.lower():
            raise TokenError("token audience does not match") from None
        if "expired" in message.lower() or "too early" in message.lower():
            raise TokenError("token is expired or not yet valid") from None
        raise TokenError("token signature could not be verified") from None
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise TokenError("token issuer is not Google")
    if claims.get("email_verified") is not True:
        raise TokenError("token email is not verified")
    if not claims.get("email"):
        raise TokenError("token carries no email")
    certs.remember(token, audience, claims)
    return claims
