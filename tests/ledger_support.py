"""Helpers for tests of the ledger through the routes: fake threads, committing apps."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from flask import Flask
from sqlalchemy import Engine, event
from sqlalchemy.orm import sessionmaker

from addon import create_app
from addon.db import make_engine
from addon.gmail.fake_server import FakeGmail, FakeGmailServer, FakeMessage
from tests.cardcheck import BASE_URL
from tests.google_fakes import CLIENT_ID, SERVICE_ACCOUNT

ACCESS_TOKEN = "gmail-access-token-1"


def thread_message(
    gmail: FakeGmail,
    gmail_id: str,
    thread: str,
    message_id: str,
    sender: str,
    to: str,
    *,
    day: int = 2,
    subject: str = "Pilot",
    refs: tuple[str, ...] = (),
    labels: tuple[str, ...] = ("INBOX",),
) -> FakeMessage:
    """Put one message of a thread in the fake mailbox; `refs` are Message-IDs it answers."""
    headers = [
        ("From", sender),
        ("To", to),
        ("Subject", subject),
        ("Date", format_datetime(datetime(2025, 6, day, 10, tzinfo=UTC))),
        ("Message-ID", f"<{message_id}>"),
    ]
    if refs:
        headers.append(("References", " ".join(f"<{r}>" for r in refs)))
        headers.append(("In-Reply-To", f"<{refs[-1]}>"))
    return gmail.add(FakeMessage(gmail_id, thread, headers=headers, label_ids=list(labels)))


def open_event(gmail_id: str, thread: str) -> dict[str, Any]:
    """The gmail object of a contextual event."""
    return {"messageId": gmail_id, "threadId": thread, "accessToken": ACCESS_TOKEN}


def thread_reads(gmail: FakeGmail) -> list[str]:
    """The threads read with users.threads.get, in order."""
    return [r["path"].rsplit("/", 1)[1] for r in gmail.requests if "/threads/" in r["path"]]


@contextmanager
def writer_engine(engine: Engine) -> Iterator[Engine]:
    """An engine whose sessions really commit, for requests running side by side.

    SQLite has one writer: each transaction takes the write lock when it begins and the
    others wait for it (a reader turning writer would fail instead of waiting).
    """
    if engine.dialect.name != "sqlite":
        yield engine
        return
    dedicated = make_engine(engine.url.render_as_string(hide_password=False))

    @event.listens_for(dedicated, "connect")
    def _manual(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(dedicated, "begin")
    def _immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        yield dedicated
    finally:
        dedicated.dispose()


def committing_app(engine: Engine, server: FakeGmailServer) -> Flask:
    """The application on a real engine: each request commits, as in production."""
    return create_app(
        {
            "TESTING": True,
            "DATABASE_URL": "sqlite://",
            "SESSIONMAKER": sessionmaker(bind=engine, expire_on_commit=False),
            "BASE_URL": BASE_URL,
            "SERVICE_ACCOUNT_EMAIL": SERVICE_ACCOUNT,
            "OAUTH_CLIENT_ID": CLIENT_ID,
            "GOOGLE_CERTS_URL": server.certs_url,
            "GMAIL_API_URL": server.url,
            "SECRET_KEY": "test-secret",
            "CERTS_MIN_REFRESH_SECONDS": 0,
        }
    )
