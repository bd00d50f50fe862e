"""Test signing keys, Google-style ID tokens, and an add-on client that checks every card."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient

from addon.auth.devkeys import SigningKey, TokenMinter
from tests.cardcheck import BASE_URL, check_response

SERVICE_ACCOUNT = "service-1234@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"
CLIENT_ID = "1234-test.apps.googleusercontent.com"


@dataclass
class TokenFactory:
    """Google's test signing key and a rogue key Google never published."""

    key: SigningKey
    rogue_key: SigningKey

    @property
    def minter(self) -> TokenMinter:
        """Mints tokens with the trusted key."""
        return TokenMinter(self.key, SERVICE_ACCOUNT, CLIENT_ID)

    def system_token(self, audience: str, **overrides: Any) -> str:
        """The add-on service account's token for one endpoint URL."""
        return self.minter.system_token(audience, **overrides)

    def user_token(self, email: str, hd: str | None = None, **overrides: Any) -> str:
        """The user's ID token with the add-on's OAuth client as audience."""
        return self.minter.user_token(email, hd, **overrides)


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
