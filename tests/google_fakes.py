"""Test signing keys, Google-style ID tokens, and an add-on client that checks every card."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient
from google.auth import crypt, jwt

from tests.cardcheck import BASE_URL, check_response

SERVICE_ACCOUNT = "service-1234@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"
CLIENT_ID = "1234-test.apps.googleusercontent.com"


@dataclass
class SigningKey:
    """An RSA key with a self-signed certificate, as Google publishes them."""

    kid: str
    private_pem: str
    cert_pem: str

    @classmethod
    def generate(cls, kid: str) -> SigningKey:
        """Make a fresh key pair and certificate."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-signer")])
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

    def sign(self, claims: dict[str, Any]) -> str:
        """A signed JWT with this key's id in the header."""
        signer = crypt.RSASigner.from_string(self.private_pem, key_id=self.kid)
        return jwt.encode(signer, claims).decode()


@dataclass
class TokenFactory:
    """Makes system and user ID tokens the way Google's add-on runtime does."""

    key: SigningKey
    rogue_key: SigningKey

    def system_token(self, audience: str, **overrides: Any) -> str:
        """The add-on service account's token for one endpoint URL."""
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": audience,
            "email": SERVICE_ACCOUNT,
            "email_verified": True,
            "sub": "1111",
            "iat": now,
            "exp": now + 3600,
        }
        claims.update(overrides)
        return self.key.sign(claims)

    def user_token(self, email: str, hd: str | None = None, **overrides: Any) -> str:
        """The user's ID token with the add-on's OAuth client as audience."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": "https://accounts.google.com",
            "aud": CLIENT_ID,
            "email": email,
            "email_verified": True,
            "sub": str(abs(hash(email))),
            "iat": now,
            "exp": now + 3600,
        }
        if hd:
            claims["hd"] = hd
        claims.update(overrides)
        return self.key.sign(claims)


@dataclass
class AddonClient:
    """Posts add-on events as Google would, and checks every answer's cards."""

    client: FlaskClient
    tokens: TokenFactory
    user: str = "rep@acme.test"
    hd: str | None = "acme.test"
    cards: list[dict[str, Any]] = field(default_factory=list)

    def event(
        self,
        *,
        parameters: dict[str, str] | None = None,
        form: dict[str, Any] | None = None,
        gmail: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An event object shaped as Google sends it."""
        inputs: dict[str, Any] = {}
        for name, value in (form or {}).items():
            if isinstance(value, dict):
                inputs[name] = value
            else:
                values = value if isinstance(value, list) else [value]
                inputs[name] = {"stringInputs": {"value": values}}
        common: dict[str, Any] = {
            "hostApp": "GMAIL",
            "platform": "WEB",
            "userLocale": "en",
            "timeZone": {"id": "Europe/Paris", "offset": 3600000},
        }
        if inputs:
            common["formInputs"] = inputs
        if parameters:
            common["parameters"] = parameters
        event: dict[str, Any] = {
            "commonEventObject": common,
            "authorizationEventObject": {
                "userOAuthToken": "user-oauth-token",
                "userIdToken": self.tokens.user_token(self.user, self.hd),
                "systemIdToken": "unused",
            },
        }
        if gmail is not None:
            event["gmail"] = gmail
        return event

    def post(
        self,
        path: str,
        event: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        expect: int = 200,
        **kwargs: Any,
    ) -> Any:
        """POST an event with a valid system token; check the status and the cards."""
        body = event if event is not None else self.event(**kwargs)
        bearer = token if token is not None else self.tokens.system_token(BASE_URL + path)
        response = self.client.post(path, json=body, headers={"Authorization": f"Bearer {bearer}"})
        assert response.status_code == expect, (
            response.status_code,
            response.get_data(as_text=True),
        )
        data = response.get_json()
        if response.status_code == 200:
            self.cards.extend(check_response(path, data))
        return data

    def action(self, name: str, expect: int = 200, **kwargs: Any) -> Any:
        """POST a callback to /actions/<name>."""
        return self.post(f"/actions/{name}", expect=expect, **kwargs)
