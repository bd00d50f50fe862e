"""Helpers for tests of Gmail grants and mailbox sync: the fake OAuth server and the flow."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from addon import create_app
from addon.auth.devkeys import SigningKey, TokenMinter
from addon.auth.fake_oauth import AUTH_PATH, REVOKE_PATH, TOKEN_PATH, FakeOAuth
from addon.gmail.fake_server import FakeGmailServer
from tests.cardcheck import BASE_URL
from tests.google_fakes import CLIENT_ID, SERVICE_ACCOUNT, AddonClient

CLIENT_SECRET = "test-client-secret"


def install_fake_oauth(server: FakeGmailServer, key: SigningKey) -> FakeOAuth:
    """Serve a fresh fake OAuth server from the fake Gmail server."""
    oauth = FakeOAuth(CLIENT_ID, CLIENT_SECRET, TokenMinter(key, SERVICE_ACCOUNT, CLIENT_ID))
    server.state.oauth = oauth
    return oauth


def oauth_urls(server: FakeGmailServer) -> dict[str, str]:
    """The OAuth settings pointing at the fake server."""
    root = server.url.rstrip("/")
    return {
        "OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "OAUTH_AUTH_URL": root + AUTH_PATH,
        "OAUTH_TOKEN_URL": root + TOKEN_PATH,
        "OAUTH_REVOKE_URL": root + REVOKE_PATH,
    }


def grants_app(
    session_factory: sessionmaker[Session], server: FakeGmailServer, **overrides: Any
) -> Flask:
    """The test application (as tests/conftest.py builds it) with OAuth on the fake server."""
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": "sqlite://",
            "SESSIONMAKER": session_factory,
            "BASE_URL": BASE_URL,
            "SERVICE_ACCOUNT_EMAIL": SERVICE_ACCOUNT,
            "OAUTH_CLIENT_ID": CLIENT_ID,
            "GOOGLE_CERTS_URL": server.certs_url,
            "GMAIL_API_URL": server.url,
            "SECRET_KEY": "test-secret",
            "CERTS_MIN_REFRESH_SECONDS": 0,
            "DEFERRED_WORK": "inline",
            **oauth_urls(server),
            **overrides,
        }
    )


def connect_link(addon: AddonClient, purpose: str = "both") -> str:
    """Click Connect on the Gmail access card; the URL of the overlay it opens."""
    data = addon.action("gmail_connect", parameters={"purpose": purpose})
    link = data["renderActions"]["action"]["link"]
    assert link["openAs"] == "OVERLAY" and link["onClose"] == "RELOAD"
    return str(link["url"])


def consent(addon: AddonClient, start_url: str) -> str:
    """Open the start link and consent at the fake Google; the callback URL Google returns."""
    start = addon.client.get(start_url)
    assert start.status_code == 302, start.get_data(as_text=True)
    answer = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    return str(answer.headers["Location"])


def connect(addon: AddonClient, purpose: str = "both") -> TestResponse:
    """The whole flow: Connect, consent, callback; the callback's page."""
    return addon.client.get(consent(addon, connect_link(addon, purpose)))


def query_of(url: str) -> dict[str, str]:
    """A URL's query as single values."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# Shared by the grant, mailbox sync and mail merge identity tests: import them by these
# names (the autouse fixture in conftest.py removes the fake OAuth server after each test).
@pytest.fixture(name="fake_oauth")
def fake_oauth_server(
    gmail_server: FakeGmailServer, signing_keys: tuple[SigningKey, SigningKey]
) -> FakeOAuth:
    """The fake Google OAuth server, fresh for each test."""
    return install_fake_oauth(gmail_server, signing_keys[0])


@pytest.fixture(name="app")
def app_with_oauth(
    session_factory: sessionmaker[Session], gmail_server: FakeGmailServer, fake_oauth: FakeOAuth
) -> Flask:
    """The test application with Google's OAuth endpoints on the fake server."""
    return grants_app(session_factory, gmail_server)
