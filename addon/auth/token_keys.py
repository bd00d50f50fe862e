"""Encryption at rest of OAuth refresh tokens: Fernet keys from ADDON_TOKEN_KEYS.

The first key encrypts, every key decrypts (MultiFernet), so a key is rotated by putting
a new one first and dropping the old one once `rotate` has re-encrypted every token.
Local runs and tests (loopback base URL, development or testing mode) derive a key from
the secret key; anywhere else the app refuses to start without ADDON_TOKEN_KEYS.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class TokenKeyError(RuntimeError):
    """The token keys are missing or malformed; the message names the setting."""


class UnreadableToken(Exception):
    """A stored token no configured key can decrypt (the key that wrote it was dropped)."""


def _derived_key(secret: str) -> bytes:
    # A local-only key: stable across restarts of the same checkout, never used where
    # the service is reachable from elsewhere (see keys_from_config).
    material = (secret or "inbox-crm local token key").encode()
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"inbox-crm", info=b"token-keys"
    ).derive(material)
    return base64.urlsafe_b64encode(derived)


def _is_local(config: dict[str, Any]) -> bool:
    host = urlsplit(str(config.get("BASE_URL", ""))).hostname or ""
    return bool(config.get("DEV") or config.get("TESTING")) or host in _LOOPBACK


def keys_from_config(config: dict[str, Any]) -> list[bytes]:
    """The Fernet keys of a configuration, first one encrypting; raises TokenKeyError."""
    raw = str(config.get("TOKEN_KEYS") or "")
    keys = [part.strip().encode() for part in raw.split(",") if part.strip()]
    if not keys:
        if not _is_local(config):
            raise TokenKeyError(
                "ADDON_TOKEN_KEYS is required outside local runs: generate one with "
                "python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            )
        return [_derived_key(str(config.get("SECRET_KEY") or ""))]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise TokenKeyError(
                f"ADDON_TOKEN_KEYS: key {position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes)"
            ) from None
    return keys


class TokenCipher:
    """Encrypts and decrypts refresh tokens; never shows them in its repr."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise TokenKeyError("no token key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def __repr__(self) -> str:
        return "TokenCipher(<keys hidden>)"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> TokenCipher:
        """The cipher of a configuration (see keys_from_config)."""
        return cls(keys_from_config(config))

    def encrypt(self, token: str) -> str:
        """The token encrypted with the first key, as ASCII text."""
        return self._fernet.encrypt(token.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        """The token back; UnreadableToken when no key decrypts it."""
        try:
            return self._fernet.decrypt(stored.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise UnreadableToken("no configured token key decrypts this token") from None

    def rotate(self, stored: str) -> str:
        """The token re-encrypted with the first key."""
        try:
            return self._fernet.rotate(stored.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise UnreadableToken("no configured token key decrypts this token") from None
