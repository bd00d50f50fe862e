"""Mailbox sync: initial import, incremental history, re-import, failures, manual unlinks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import Result
from flask import Flask
from google.oauth2.credentials import Credentials
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.auth.fake_oauth import FakeOAuth
from addon.auth.grant_models import ACTIVE, EXPIRED, GoogleGrant
from addon.auth.grants import OAuthSettings, get_grant
from addon.crm.models import Member, ThreadLink
from addon.crm.workspaces import resolve_member
from addon.gmail.client import GmailError
from addon.gmail.fake_server import FakeGmail, FakeMessage, rfc2822_date
from addon.gmail.sync_client import GoogleSyncMailbox, HistoryPage, SyncMailbox
from addon.ledger.linking import unlink_manually
from addon.ledger.mailbox_sync import INCREMENTAL, INITIAL, REIMPORT, plan_sync, run_sync
from addon.ledger.models import LedgerMessage
from addon.ledger.parse import LedgerInput
from addon.web.dev import start_dev_environment
from tests.cardread import card_of, texts
from tests.crmdata import Crm
from tests.google_fakes import AddonClient
from tests.grants_support import (  # noqa: F401 (app_with_oauth, fake_oauth_server: fixtures)
    app_with_oauth,
    connect,
    fake_oauth_server,
)

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def mailbox(gmail: FakeGmail) -> Iterator[FakeGmail]:
    """The fake mailbox with its history knobs reset after the test."""
    yield gmail
    gmail.history_floor = 0


@pytest.fixture
def synced(addon: AddonClient, crm: Crm, mailbox: FakeGmail) -> Crm:
    """The rep of acme.test (the crm fixture's member) with sync granted."""
    assert connect(addon, "sync").status_code == 200
    return crm


def put(
    gmail: FakeGmail,
    mid: str,
    *,
    days_ago: float = 1,
    thread: str = "t1",
    sender: str = "Ann <ann@globex.com>",
    to: str = "rep@acme.test",
    refs: str = "",
    subject: str = "Pilot",
) -> FakeMessage:
    """Add a message to the fake mailbox."""
    headers = [
        ("From", sender),
        ("To", to),
        ("Subject", subject),
        ("Date", rfc2822_date(NOW - timedelta(days=days_ago))),
        ("Message-ID", f"<{mid}@mail.test>"),
    ]
    if refs:
        headers += [("References", refs), ("In-Reply-To", refs.split()[-1])]
    return gmail.add(FakeMessage(id=f"g-{mid}", thread_id=thread, headers=headers))


def sync(app: Flask, *args: str) -> Result:
    """Run `flask gmail sync` with these arguments."""
    return app.test_cli_runner().invoke(args=["gmail", "sync", *args])


def ledger_count(db: Session) -> int:
    return int(db.execute(select(func.count()).select_from(LedgerMessage)).scalar_one())


def grant_of(db: Session, member: Member) -> GoogleGrant:
    grant = get_grant(db, member)
    assert grant is not None
    db.refresh(grant)
    return grant


def settings_of(app: Flask) -> OAuthSettings:
    return OAuthSettings.from_config(app.config)


def test_initial_import_then_incremental_sync(
    app: Flask, synced: Crm, mailbox: FakeGmail, db: Session
) -> None:
    for n in range(3):
        put(mailbox, f"m{n}", days_ago=n + 1, thread=f"t{n}")
    put(mailbox, "old", days_ago=40, thread="t-old")
    first = sync(app, "--days", "30")
    assert first.exit_code == 0, first.output
    assert "rep@acme.test: 3 message(s) read, 3 new" in first.output
    assert "initial import" in first.output
    assert ledger_count(db) == 3
    grant = grant_of(db, synced.member)
    assert grant.history_id == str(mailbox.history_id)
    assert grant.messages_imported == 3 and grant.last_sync_at is not None
    listing = [r for r in mailbox.requests if r["path"].endswith("/users/me/messages")]
    assert listing and listing[0]["query"]["q"][0].startswith("after:")
    assert any(r["path"] == "/batch/gmail/v1" for r in mailbox.requests)

    put(mailbox, "m3", days_ago=0, thread="t0", refs="<m0@mail.test>")
    put(mailbox, "m4", days_ago=0, thread="t4")
    mailbox.requests.clear()
    second = sync(app, "--member", "rep@acme.test")
    assert second.exit_code == 0, second.output
    assert "2 message(s) read, 2 new" in second.output and INCREMENTAL in second.output
    history = [r for r in mailbox.requests if r["path"].endswith("/users/me/history")]
    assert history[0]["query"]["startHistoryId"] == [grant.history_id]
    assert history[0]["query"]["historyTypes"] == ["messageAdded"]
    assert not [r for r in mailbox.requests if r["path"].endswith("/users/me/messages")]
    assert ledger_count(db) == 5
    assert "0 message(s) read" in sync(app).output
    assert grant_of(db, synced.member).messages_imported == 5


def test_repeated_imports_count_nothing_twice(
    app: Flask, synced: Crm, mailbox: FakeGmail, db: Session
) -> None:
    contact = synced.save("contacts", first_name="Ann", emails="ann@globex.com")
    for n in range(4):
        put(mailbox, f"m{n}", days_ago=n + 1, thread=f"t{n}")
    assert sync(app).exit_code == 0
    stats_before = db.execute(
        select(func.count()).select_from(ThreadLink).where(ThreadLink.record_id == contact.id)
    ).scalar_one()
    assert stats_before == 4
    # As after a crash before the history id was saved: the whole import runs again.
    grant = grant_of(db, synced.member)
    grant.history_id = None
    db.flush()
    again = sync(app)
    assert "4 message(s) read, 0 new, 4 already known" in again.output
    assert ledger_count(db) == 4
    assert grant_of(db, synced.member).messages_imported == 4


def test_pages_and_batches_commit_as_they_go(
    app: Flask, synced: Crm, mailbox: FakeGmail, db: Session
) -> None:
    for n in range(23):
        put(mailbox, f"p{n}", days_ago=1 + n / 24, thread=f"t{n}")

    def small_pages(credentials: Credentials) -> SyncMailbox:
        return GoogleSyncMailbox(mailbox_url(app), credentials, page_size=5, batch_limit=4)

    plan = plan_sync(db, synced.member, settings_of(app), small_pages, days=30)
    assert plan.mode == INITIAL and len(plan.message_ids) == 23
    lists = [r for r in mailbox.requests if r["path"].endswith("/users/me/messages")]
    assert len(lists) == 5 and lists[1]["query"]["pageToken"] == ["5"]
    commits: list[int] = []
    progress: list[int] = []
    report = run_sync(
        db,
        plan,
        checkpoint=lambda: commits.append(ledger_count(db)),
        progress=progress.append,
        batch_size=10,
    )
    assert (report.recorded, report.error) == (23, "")
    assert commits == [10, 20, 23, 23] and progress == [10, 10, 3]
    assert len([r for r in mailbox.requests if r["path"] == "/batch/gmail/v1"]) == 3 + 3 + 1


def mailbox_url(app: Flask) -> str:
    return str(app.config["GMAIL_API_URL"])


def test_history_too_old_falls_back_to_a_bounded_reimport(
    app: Flask, synced: Crm, mailbox: FakeGmail, db: Session
) -> None:
    put(mailbox, "a", days_ago=2)
    assert sync(app, "--days", "7").exit_code == 0
    put(mailbox, "b", days_ago=5, thread="t2")  # arrived late, dated inside the window
    put(mailbox, "c", days_ago=20, thread="t3")  # outside the window: not re-imported
    mailbox.history_floor = mailbox.history_id + 1
    result = sync(app, "--days", "7")
    assert result.exit_code == 0, result.output
    assert REIMPORT in result.output
    assert "2 message(s) read, 1 new, 1 already known" in result.output
    keys = set(db.execute(select(LedgerMessage.message_key)).scalars())
    assert keys == {"a@mail.test", "b@mail.test"}
    assert grant_of(db, synced.member).history_id == str(mailbox.history_id)


def test_a_revoked_grant_is_recorded_reported_and_not_retried(
    app: Flask,
    addon: AddonClient,
    synced: Crm,
    mailbox: FakeGmail,
    fake_oauth: FakeOAuth,
    db: Session,
) -> None:
    put(mailbox, "a")
    fake_oauth.revoke_all()
    result = sync(app)
    assert result.exit_code == 1
    assert "rep@acme.test: not synced: Google refused the grant" in result.output
    grant = grant_of(db, synced.member)
    assert grant.status == EXPIRED and "invalid_grant" in grant.last_error
    assert "refused the grant" in grant.last_sync_error
    shown = texts(card_of(addon.action("gmail_access")))
    assert "Last sync failed" in shown and "Not usable (expired)" in shown
    calls = len(fake_oauth.requests)
    again = sync(app)
    assert again.exit_code == 0
    assert "skipped: Gmail access is expired" in again.output
    assert len(fake_oauth.requests) == calls
    assert ledger_count(db) == 0
    assert connect(addon, "sync").status_code == 200
    assert grant_of(db, synced.member).status == ACTIVE
    assert "1 new" in sync(app).output


def test_a_grant_revoked_in_the_middle_of_a_sync(
    app: Flask, synced: Crm, mailbox: FakeGmail, fake_oauth: FakeOAuth, db: Session
) -> None:
    put(mailbox, "a")
    plan = plan_sync(
        db,
        synced.member,
        settings_of(app),
        lambda c: GoogleSyncMailbox(mailbox_url(app), c),
        days=30,
    )
    fake_oauth.revoke_all()  # the access token dies; refreshing it answers invalid_grant
    report = run_sync(db, plan)
    assert "refused the grant" in report.error and report.recorded == 0
    grant = grant_of(db, synced.member)
    assert grant.status == EXPIRED and grant.history_id is None


class _FailingSecondBatch:
    """The real mailbox, except that the second metadata batch fails as Gmail can."""

    def __init__(self, inner: SyncMailbox) -> None:
        self.inner = inner
        self.calls = 0

    def history_id(self) -> str:
        return self.inner.history_id()

    def list_ids(self, query: str) -> Iterator[list[str]]:
        return self.inner.list_ids(query)

    def added_since(self, history_id: str) -> HistoryPage:
        return self.inner.added_since(history_id)

    def metadata(self, message_ids: list[str]) -> list[LedgerInput]:
        self.calls += 1
        if self.calls == 2:
            raise GmailError("Gmail answered 503")
        return self.inner.metadata(message_ids)


def test_a_gmail_failure_keeps_the_batches_already_recorded(
    app: Flask, synced: Crm, mailbox: FakeGmail, db: Session
) -> None:
    for n in range(5):
        put(mailbox, f"m{n}", days_ago=n + 1, thread=f"t{n}")
    plan = plan_sync(
        db,
        synced.member,
        settings_of(app),
        lambda c: _FailingSecondBatch(GoogleSyncMailbox(mailbox_url(app), c)),
        days=30,
    )
    report = run_sync(db, plan, batch_size=2)
    assert report.error == "Gmail answered 503" and report.recorded == 2
    grant = grant_of(db, synced.member)
    assert grant.status == ACTIVE and grant.history_id is None
    assert grant.last_sync_error == "Gmail answered 503"
    assert ledger_count(db) == 2
    result = sync(app)
    assert "5 message(s) read, 3 new, 2 already known" in result.output
    assert grant_of(db, synced.member).last_sync_error == ""


def test_manual_unlink_survives_sync(
    app: Flask, synced: Crm, mailbox: FakeGmail, db: Session
) -> None:
    contact = synced.save("contacts", first_name="Ann", emails="ann@globex.com")
    put(mailbox, "first", days_ago=3, thread="thr")
    assert sync(app).exit_code == 0
    linked = select(ThreadLink).where(ThreadLink.record_id == contact.id)
    assert len(db.execute(linked).all()) == 1
    assert unlink_manually(db, contact, "thr", synced.member)
    db.flush()
    put(mailbox, "reply", days_ago=1, thread="thr", refs="<first@mail.test>")
    assert "1 new" in sync(app).output
    assert db.execute(linked).all() == []
    grant = grant_of(db, synced.member)
    grant.history_id = None  # a full re-import of the same thread
    db.flush()
    assert "2 already known" in sync(app).output
    assert db.execute(linked).all() == []
    other = synced.save("contacts", first_name="Cy", emails="cy@initech.test")
    put(mailbox, "new", days_ago=0, thread="thr2", sender="Cy <cy@initech.test>")
    sync(app)
    assert len(db.execute(select(ThreadLink).where(ThreadLink.record_id == other.id)).all()) == 1


def labelled(card: dict[str, Any], label: str) -> str:
    """The text of the card's line with this top label."""
    for section in card["sections"]:
        for widget in section["widgets"]:
            line = widget.get("decoratedText", {})
            if line.get("topLabel") == label:
                return str(line["text"])
    raise AssertionError(f"no line {label!r} on {card}")


def test_the_card_shows_sync_status(
    app: Flask, addon: AddonClient, synced: Crm, mailbox: FakeGmail
) -> None:
    before = card_of(addon.action("gmail_access"))
    assert labelled(before, "Last sync") == "never"
    assert labelled(before, "Messages imported") == "0"
    put(mailbox, "a")
    put(mailbox, "b", thread="t2")
    assert sync(app).exit_code == 0
    after = card_of(addon.action("gmail_access"))
    assert labelled(after, "Messages imported") == "2"
    # Shown in the user's zone (the test events say Europe/Paris).
    grant = get_grant(synced.db, synced.member)
    assert grant is not None and grant.last_sync_at is not None
    paris = grant.last_sync_at.astimezone(ZoneInfo("Europe/Paris"))
    assert labelled(after, "Last sync") == paris.strftime("%Y-%m-%d %H:%M")
    assert labelled(after, "Mailbox sync") == "Granted"


def test_sync_only_reaches_members_who_granted_it(
    app: Flask, addon: AddonClient, crm: Crm, mailbox: FakeGmail, db: Session
) -> None:
    resolve_member(db, "rival.test", "spy@rival.test", is_consumer=False)
    db.flush()
    refused = sync(app, "--member", "spy@rival.test")
    assert refused.exit_code != 0 and "has not granted" in refused.output
    assert connect(addon, "send").status_code == 200  # sending only: nothing to sync
    nothing = sync(app)
    assert nothing.exit_code == 0 and "rep@acme.test" not in nothing.output
    assert ledger_count(db) == 0


def test_the_fake_gmail_searches_by_date_and_refuses_stale_tokens(
    app: Flask, synced: Crm, mailbox: FakeGmail, fake_oauth: FakeOAuth, db: Session
) -> None:
    put(mailbox, "recent", days_ago=1)
    put(mailbox, "middle", days_ago=10, thread="t2")
    put(mailbox, "old", days_ago=30, thread="t3")
    plan = plan_sync(
        db,
        synced.member,
        settings_of(app),
        lambda c: GoogleSyncMailbox(mailbox_url(app), c),
        days=60,
    )
    assert plan.message_ids == ["g-old", "g-middle", "g-recent"]  # oldest first
    after = int((NOW - timedelta(days=20)).timestamp())
    before = int((NOW - timedelta(days=5)).timestamp())
    pages = list(plan.mailbox.list_ids(f"after:{after} before:{before}"))
    assert pages == [["g-middle"]]
    day = (NOW - timedelta(days=20)).strftime("%Y/%m/%d")
    assert "g-old" not in next(iter(plan.mailbox.list_ids(f"after:{day}")))
    fake_oauth.revoke_all()
    with pytest.raises(GmailError):
        plan.mailbox.history_id()


def test_the_simulator_connects_gmail_at_its_fake_oauth_server() -> None:
    env = start_dev_environment()
    try:
        config = env.config("http://127.0.0.1:8080", "sqlite://")
        assert isinstance(env.gmail.state.oauth, FakeOAuth)
        assert config["OAUTH_TOKEN_URL"].startswith(env.gmail.url.rstrip("/"))
        assert env.gmail.state.oauth.client_id == config["OAUTH_CLIENT_ID"]
        assert env.gmail.state.oauth.client_secret == config["OAUTH_CLIENT_SECRET"]
    finally:
        env.gmail.stop()
