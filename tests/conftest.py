"""Fixtures: a migrated database, a rolled-back transaction per test, fake Google, clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from addon import create_app
from addon.crm.workspaces import folders_by_key, resolve_member
from addon.db import Base, make_engine
from addon.gmail.fake_server import FakeGmail, FakeGmailServer
from addon.migrations import upgrade
from tests.cardcheck import BASE_URL
from tests.crmdata import Crm
from tests.google_fakes import CLIENT_ID, SERVICE_ACCOUNT, AddonClient, SigningKey, TokenFactory


def _database_url(tmp_dir: Path) -> str:
    return os.environ.get("ADDON_TEST_DATABASE_URL") or f"sqlite:///{tmp_dir / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """An engine on a schema built by the Alembic migrations, as in production."""
    url = _database_url(tmp_path_factory.mktemp("db"))
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        # pysqlite manages transactions itself; take control so savepoints work.
        @event.listens_for(engine, "connect")
        def _autocommit(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN")

    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        upgrade(url, connection)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    """Sessions whose commits become savepoints of the test's transaction."""
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for arranging and inspecting data directly."""
    session = session_factory()
    yield session
    session.close()


@pytest.fixture(scope="session")
def signing_keys() -> tuple[SigningKey, SigningKey]:
    """Google's (test) signing key, and a rogue key Google never published."""
    return SigningKey.generate("test-key-1"), SigningKey.generate("rogue-key")


@pytest.fixture(scope="session")
def gmail_server(signing_keys: tuple[SigningKey, SigningKey]) -> Iterator[FakeGmailServer]:
    """The fake Gmail API (and certs endpoint) on a loopback port for the whole run."""
    server = FakeGmailServer(FakeGmail()).start()
    server.state.certs = {signing_keys[0].kid: signing_keys[0].cert_pem}
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fake_oauth_removed_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A fake OAuth server a test installed on the shared fake Gmail leaves with the test."""
    yield
    if "gmail_server" in request.fixturenames:
        server: FakeGmailServer = request.getfixturevalue("gmail_server")
        server.state.oauth = None
        server.state.history_floor = 0


@pytest.fixture
def gmail(gmail_server: FakeGmailServer) -> Iterator[FakeGmail]:
    """The fake mailbox, emptied for each test."""
    state = gmail_server.state
    state.messages.clear()
    state.requests.clear()
    state.fail_with = None
    state.fail_threads_with = None
    yield state


@pytest.fixture
def tokens(signing_keys: tuple[SigningKey, SigningKey]) -> TokenFactory:
    """Makes Google-style ID tokens."""
    return TokenFactory(*signing_keys)


@pytest.fixture
def app(session_factory: sessionmaker[Session], gmail_server: FakeGmailServer) -> Flask:
    """The application wired to the test transaction and the fake Google endpoints."""
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": "sqlite://",
            "SESSIONMAKER": session_factory,
            "BASE_URL": BASE_URL,
            "SERVICE_ACCOUNT_EMAIL": SERVICE_ACCOUNT,
            "OAUTH_CLIENT_ID": CLIENT_ID,
            "GOOGLE_CERTS_URL": gmail_server.certs_url,
            "GMAIL_API_URL": gmail_server.url,
            "SECRET_KEY": "test-secret",
            # Deferred work (addon.deferred) runs before the answer, so tests see it.
            "DEFERRED_WORK": "inline",
            # Key-rotation tests force refetches back to back; the gap has its own test.
            "CERTS_MIN_REFRESH_SECONDS": 0,
        }
    )


@pytest.fixture
def addon(app: Flask, tokens: TokenFactory, gmail: FakeGmail) -> AddonClient:
    """A rep of acme.test posting add-on events."""
    return AddonClient(app.test_client(), tokens)


@pytest.fixture
def other_tenant(app: Flask, tokens: TokenFactory, gmail: FakeGmail) -> AddonClient:
    """A member of another workspace."""
    return AddonClient(app.test_client(), tokens, user="spy@rival.test", hd="rival.test")


__all__ = ["Base"]


@pytest.fixture
def crm(db: Session) -> Crm:
    """The acme.test workspace (rep@acme.test is its first member, so its admin)."""
    member = resolve_member(db, "acme.test", "rep@acme.test", is_consumer=False)
    db.flush()
    return Crm(db, member, folders_by_key(db, member.workspace_id))
