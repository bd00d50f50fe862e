"""A local signing key that mints Google-style ID tokens, for development mode and tests.

Development mode trusts this key instead of Google's; create_app refuses to run in
development mode unless the service is bound to loopback, so it never reaches production.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

GOOGLE_ISSUER = "https://accounts.google.com"


@dataclass
class SigningKey:
    """An RSA key with a self-signed certificate, published the way Google publishes its own."""

    kid: str
    private_pem: str
    cert_pem: str

    @classmethod
    def generate(cls, kid: str) -> SigningKey:
        """Make a fresh key pair and certificate."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"inbox-crm {kid}")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return cls(kid, private_pem, cert.public_bytes(serialization.Encoding.PEM).decode())

    @functools.cached_property
    def signer(self) -> crypt.RSASigner:
        """The loaded private key; loading a PEM costs tens of milliseconds."""
        return crypt.RSASigner.from_string(self.private_pem, key_id=self.kid)

    def sign(self, claims: dict[str, Any]) -> str:
        """A signed JWT with this key's id in the header."""
        return jwt.encode(self.signer, claims).decode()

    def certs(self) -> dict[str, str]:
        """The certificate list, keyed by key id, as served at a certs URL."""
        return {self.kid: self.cert_pem}


@dataclass
class TokenMinter:
    """Mints the system and user ID tokens Google's add-on runtime sends."""

    key: SigningKey
    service_account: str
    client_id: str

    def system_token(self, audience: str, **overrides: Any) -> str:
        """The add-on service account's token for one endpoint URL."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": GOOGLE_ISSUER,
            "aud": audience,
            "email": self.service_account,
            "email_verified": True,
            "sub": "100000000000000000001",
            "iat": now,
            "exp": now + 3600,
        }
        claims.update(overrides)
        return self.key.sign(claims)

    def user_token(self, email: str, hd: str | None = None, **overrides: Any) -> str:
        """The user's ID token, with the add-on's OAuth client as audience."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": GOOGLE_ISSUER,
            "aud": self.client_id,
            "email": email,
            "email_verified": True,
            "sub": str(abs(hash(email)) % 10**20),
            "iat": now,
            "exp": now + 3600,
        }
        if hd:
            claims["hd"] = hd
        claims.update(overrides)
        return self.key.sign(claims)
