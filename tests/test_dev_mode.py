"""Development mode is explicit, loopback-only, and its key is trusted nowhere else."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from addon import create_app
from addon.auth.devkeys import SigningKey, TokenMinter
from addon.web.dev import UnsafeDevMode, build_dev_app


def test_dev_mode_refuses_a_public_base_url(tmp_path: Path) -> None:
    with pytest.raises(UnsafeDevMode, match="loopback"):
        create_app(
            {"DEV": True, "BASE_URL": "https://crm.example.org", "DATABASE_URL": "sqlite://"}
        )


def test_a_dev_key_outside_dev_mode_is_refused() -> None:
    minter = TokenMinter(SigningKey.generate("k"), "sa@example.com", "client")
    with pytest.raises(UnsafeDevMode):
        create_app({"DEV": False, "DEV_MINTER": minter, "DATABASE_URL": "sqlite://"})


def test_production_wsgi_entry_point_refuses_dev_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADDON_DEV", "1")
    monkeypatch.setenv("ADDON_DATABASE_URL", "sqlite://")
    sys.modules.pop("addon.wsgi", None)
    with pytest.raises(RuntimeError, match="ADDON_DEV"):
        importlib.import_module("addon.wsgi")
    sys.modules.pop("addon.wsgi", None)


def test_dev_run_binds_loopback_only(tmp_path: Path) -> None:
    app = create_app({"DEV": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'd.sqlite3'}"})
    result = app.test_cli_runner().invoke(args=["dev", "run", "--host", "0.0.0.0"])
    assert result.exit_code != 0
    assert "loopback only" in result.output


@pytest.fixture
def dev_app(tmp_path: Path) -> Iterator[Flask]:
    app, env = build_dev_app("http://127.0.0.1:8080", f"sqlite:///{tmp_path / 'dev.sqlite3'}")
    yield app
    env.gmail.stop()


def test_dev_api_serves_config_inbox_and_tokens(dev_app: Flask) -> None:
    client = dev_app.test_client()
    assert client.get("/dev/").status_code == 200
    assert client.get("/dev/api/config").get_json()["baseUrl"] == "http://127.0.0.1:8080"
    messages = client.get("/dev/api/inbox").get_json()["messages"]
    assert len(messages) >= 24
    senders = " ".join(m["from"] for m in messages)
    assert "Jürgen Weiß" in senders and "Ольга Иванова" in senders, "encoded names are decoded"
    tokens = client.post(
        "/dev/api/token",
        json={"audience": "http://127.0.0.1:8080/homepage", "user": "rep@example.com"},
    ).get_json()
    assert set(tokens) == {"systemIdToken", "userIdToken"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"audience": "https://evil.example/homepage"}, "audience"),
        (
            {"audience": "http://127.0.0.1:8080/homepage", "user": "ceo@other.org"},
            "unknown demo user",
        ),
    ],
)
def test_dev_tokens_only_for_this_service_and_demo_users(
    dev_app: Flask, body: dict[str, str], reason: str
) -> None:
    response = dev_app.test_client().post("/dev/api/token", json=body)
    assert response.status_code == 400
    assert reason in response.get_json()["error"]


def test_dev_tokens_open_the_demo_mailbox_through_the_real_endpoints(dev_app: Flask) -> None:
    client = dev_app.test_client()
    url = "http://127.0.0.1:8080/gmail/message"
    tokens = client.post("/dev/api/token", json={"audience": url}).get_json()
    event = {
        "commonEventObject": {"hostApp": "GMAIL"},
        "authorizationEventObject": {
            "userOAuthToken": "dev-oauth-token",
            "userIdToken": tokens["userIdToken"],
        },
        "gmail": {"messageId": "demo-000", "threadId": "thread-acme-renewal", "accessToken": "x"},
    }
    response = client.post(
        "/gmail/message", json=event, headers={"Authorization": f"Bearer {tokens['systemIdToken']}"}
    )
    assert response.status_code == 200
    card = response.get_json()["action"]["navigations"][0]["pushCard"]
    assert card["header"]["title"] == "Alice Martin"
