"""The mail-merge worker against the fake Gmail server, on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import pairwise
from typing import Any

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from addon.crm.models import Folder
from addon.gmail.fake_server import FakeGmail, FakeGmailServer, FakeSending
from addon.ledger.ingest import record_messages
from addon.ledger.models import LedgerMessage, RecordStats
from addon.ledger.parse import LedgerInput
from addon.mailing.campaigns import resume_campaign
from addon.mailing.clock import FakeClock
from addon.mailing.models import (
    COMPLETED,
    PAUSED,
    QUEUED,
    RECIPIENT_FAILED,
    SENT,
    Campaign,
    CampaignRecipient,
    is_suppressed,
)
from addon.mailing.quota import MIN_SEND_INTERVAL, WINDOW
from tests.crmdata import Crm
from tests.mailing_support import (
    START,
    FakeGrants,
    make_template,
    make_worker,
    running_campaign,
    seed_contacts,
    sending,
)

__all__ = ["sending"]


def test_small_campaign_sends_each_recipient_once(
    app: Flask,
    crm: Crm,
    db: Session,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
    sending: FakeSending,
) -> None:
    folder: Folder = crm.folders["contacts"]
    seed_contacts(db, crm.member, folder, 5)
    campaign = running_campaign(db, crm.member, folder, make_template(db, crm.member))
    db.commit()
    clock = FakeClock(START)
    sending.clock = clock.now
    sending.rate = 2.5
    report = make_worker(session_factory, gmail_server, clock).run(until_done=True)
    assert report.sent == 5
    assert {s.to for s in sending.sent} == {f"person{i}@client.test" for i in range(5)}
    db.expire_all()
    states = db.execute(
        select(CampaignRecipient.state, func.count())
        .where(CampaignRecipient.campaign_id == campaign.id)
        .group_by(CampaignRecipient.state)
    ).all()
    assert states == [(SENT, 5)]


def _max_window_use(times: list[tuple[datetime, int]]) -> int:
    """The most recipients any rolling 24 h window held, checked at every send instant."""
    times = sorted(times)
    best = 0
    total = 0
    start = 0
    for end, (at, n) in enumerate(times):
        total += n
        while times[start][0] <= at - WINDOW:
            total -= times[start][1]
            start += 1
        best = max(best, total)
        assert end >= start
    return best


def test_five_thousand_recipients_exactly_once_within_the_cap_and_using_it_fully(
    app: Flask,
    crm: Crm,
    db: Session,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
    sending: FakeSending,
) -> None:
    folder = crm.folders["contacts"]
    seed_contacts(db, crm.member, folder, 5000)
    campaign = running_campaign(db, crm.member, folder, make_template(db, crm.member))
    db.commit()
    clock = FakeClock(START)
    sending.clock = clock.now
    # Google's real limits at the server; the worker keeps to the default cap of 1,500.
    sending.quota = 2000
    sending.rate = 2.5
    sending.odds = {"429": 0.002, "500": 0.002, "timeout": 0.002, "lost": 0.002, "lost500": 0.002}
    worker = make_worker(session_factory, gmail_server, clock)
    report = worker.run(until_done=True)

    by_message: dict[str, int] = {}
    for mail in sending.sent:
        by_message[mail.message_id] = by_message.get(mail.message_id, 0) + 1
    assert len(sending.sent) == 5000
    assert set(by_message.values()) == {1}
    expected = set(
        db.scalars(
            select(CampaignRecipient.message_id).where(CampaignRecipient.campaign_id == campaign.id)
        )
    )
    assert set(by_message) == expected
    assert {s.to for s in sending.sent} == {f"person{i}@client.test" for i in range(5000)}
    assert [r for r in sending.refused if r[2] in ("quota", "rate")] == []

    events = [(s.at, s.recipients) for s in sending.sent]
    peak = _max_window_use(events)
    assert peak <= 1500
    # Full use: each of the first three 24 h windows from the first send carries the cap.
    first = min(at for at, _ in events)
    per_window = [
        sum(n for at, n in events if first + k * WINDOW <= at < first + (k + 1) * WINDOW)
        for k in range(4)
    ]
    assert per_window == [1500, 1500, 1500, 500]
    finish = max(at for at, _ in events)
    ideal = first + 3 * WINDOW + 499 * MIN_SEND_INTERVAL
    utilisation = sum(per_window[:3]) / (3 * 1500)
    print(
        f"\n5,000 recipients: peak window {peak}/1500, utilisation of full windows "
        f"{utilisation:.1%}, finished {finish - first} after the first send "
        f"(ideal {ideal - first}), {report.retried} retried, {report.reconciled} reconciled"
    )
    assert report.reconciled >= 1
    db.expire_all()
    assert (
        db.scalar(
            select(func.count()).where(
                CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.state == SENT
            )
        )
        == 5000
    )


# -- one behaviour at a time, on a small campaign ------------------------------------------


def _setup(
    db: Session, crm: Crm, sending: FakeSending, count: int = 3, **options: Any
) -> tuple[Campaign, FakeClock]:
    seed_contacts(db, crm.member, crm.folders["contacts"], count)
    campaign = running_campaign(
        db, crm.member, crm.folders["contacts"], make_template(db, crm.member), **options
    )
    db.commit()
    clock = FakeClock(START)
    sending.clock = clock.now
    sending.rate = 2.5
    return campaign, clock


def _sent_once(sending: FakeSending, count: int) -> None:
    ids = [s.message_id for s in sending.sent]
    assert len(ids) == count and len(set(ids)) == count


def _recipients(db: Session, campaign: Campaign) -> list[CampaignRecipient]:
    db.expire_all()
    return list(
        db.scalars(
            select(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == campaign.id)
            .order_by(CampaignRecipient.id)
        )
    )


def test_a_lost_answer_is_found_in_the_mailbox_and_not_resent(
    crm: Crm,
    db: Session,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
    gmail: FakeGmail,
    sending: FakeSending,
) -> None:
    campaign, clock = _setup(db, crm, sending)
    sending.faults = ["lost", "lost500"]
    report = make_worker(session_factory, gmail_server, clock).run(until_done=True)
    _sent_once(sending, 3)
    assert report.reconciled == 2 and report.sent == 3
    searches = [r for r in gmail.requests if "q" in r["query"]]
    assert any(q.startswith("rfc822msgid:") for r in searches for q in r["query"]["q"])
    assert {r.state for r in _recipients(db, campaign)} == {SENT}


def test_timeouts_and_server_errors_are_searched_then_resent(
    crm: Crm,
    db: Session,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
    sending: FakeSending,
) -> None:
    campaign, clock = _setup(db, crm, sending)
    sending.faults = ["timeout", "500", "timeout"]
    report = make_worker(session_factory, gmail_server, clock).run(until_done=True)
    _sent_once(sending, 3)
    assert report.retried == 3 and report.reconciled == 0
    rows = _recipients(db, campaign)
    assert {r.state for r in rows} == {SENT}
    assert [r.attempts for r in rows] == [2, 2, 2]


def test_a_429_waits_at_least_its_retry_after(
    crm: Crm,
    db: Session,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
    sending: FakeSending,
) -> None:
    _campaign, clock = _setup(db, crm, sending, count=2)
    sending.faults = ["429"]
    sending.retry_after = 120
    make_worker(session_factory, gmail_server, clock).run(until_done=True)
    _sent_once(sending, 2)
    refused_at = sending.refused[0][0]
    assert min(s.at for s in sending.sent) >= refused_at + timedelta(seconds=120)


def test_a_rejected_address_fails_that_recipient_only(
    crm: Crm,
    db: Session,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
    sending: FakeSending,
) -> None:
    campaign, clock = _setup(db, crm, sending)
    sending.bad_recipients.add("person1@client.test")
    make_worker(session_factory, gmail_server, clock).run(until_done=True)
    _sent_once(sending, 2)
    rows = {r.email: r for r in _recipients(db, campaign)}
    assert rows["person1@client.test"].state == RECIPIENT_FAILED
    assert "400" in (rows["person1@client.test"].fail_reason or "")
    assert rows["person0@client.test"].state == rows["person2@client.test"].state == SENT
    assert db.get(Campaign, campaign.id).status == COMPLETED  # type: ignore[union-attr]


def test_a_revoked_grant_pauses_the_campaign_and_says_why(
    crm: Crm,
    db: Session,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
    sending: FakeSending,
) -> None:
    campaign, clock = _setup(db, crm, sending)
    sending.revoked_tokens.add(f"token-{crm.member.email}")
    report = make_worker(session_factory, gmail_server, clock).run(until_done=True)
    assert sending.sent == [] and report.paused_campaigns == 1
    db.expire_all()
    paused = db.get(Campaign, campaign.id)
    assert paused is not None and paused.status == PAUSED
    assert "sending permission" in paused.status_reason
    assert {r.state for r in _recipients(db, campaign)} == {QUEUED}
    # Without any grant at all, the same.
    grants = FakeGrants()
    grants.revoked.add(crm.member.id)
    resume_campaign(db, paused, clock.now())
    db.commit()
    make_worker(session_factory, gmail_server, clock, grants).run(until_done=True)
    db.expire_all()
    again = db.get(Campaign, campaign.id)
    assert again is not None and again.status == PAUSED
    assert "no sending permission was granted" in again.status_reason


def test_sent_mail_enters_the_ledger_and_bounces_suppress(
    crm: Crm,
    db: Session,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
    gmail: FakeGmail,
    sending: FakeSending,
) -> None:
    campaign, clock = _setup(db, crm, sending)
    worker = make_worker(session_factory, gmail_server, clock)
    worker.run(until_done=True)
    rows = _recipients(db, campaign)
    assert all(r.recorded_at is not None for r in rows)
    keys = set(db.scalars(select(LedgerMessage.message_key)))
    assert {r.message_id.strip("<>") for r in rows} <= keys
    stats = db.get(RecordStats, rows[0].record_id)
    assert stats is not None and stats.last_sent is not None
    assert stats.last_sent.replace(tzinfo=UTC) == rows[0].sent_at.replace(tzinfo=UTC)  # type: ignore[union-attr]

    sending.add_bounce(gmail, rows[1].message_id, rows[1].email)
    assert worker.scan_bounces(force=True) == 1
    db.expire_all()
    bounced = db.get(CampaignRecipient, rows[1].id)
    assert bounced is not None and bounced.bounced_at is not None
    assert is_suppressed(db, crm.member.workspace_id, [rows[1].email]) == {rows[1].email}
    # A second scan finds nothing new.
    assert worker.scan_bounces(force=True) == 0


def test_mail_sent_outside_campaigns_uses_the_quota(
    crm: Crm,
    db: Session,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
    sending: FakeSending,
) -> None:
    workspace = crm.member.workspace
    workspace.settings = {**(workspace.settings or {}), "daily_send_cap": 3}
    earlier = START - timedelta(hours=2)
    record_messages(
        db,
        crm.member,
        [
            LedgerInput(
                message_id="<by-hand@acme.test>",
                gmail_id="h1",
                gmail_thread_id="h1",
                sender=crm.member.email,
                to="x@else.test, y@else.test",
                date=format_datetime(earlier),
                label_ids=("SENT",),
            )
        ],
        clock=lambda: earlier,
    )
    _campaign, clock = _setup(db, crm, sending)
    worker = make_worker(session_factory, gmail_server, clock)
    wake = worker.tick()
    assert len(sending.sent) == 1
    assert wake == earlier + WINDOW


def test_human_gaps_space_the_sends_and_messages_carry_one_click_unsubscribe(
    crm: Crm,
    db: Session,
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
    gmail: FakeGmail,
    sending: FakeSending,
) -> None:
    _campaign, clock = _setup(db, crm, sending, count=4, human_gaps=True)
    make_worker(session_factory, gmail_server, clock).run(until_done=True)
    times = sorted(s.at for s in sending.sent)
    assert len(times) == 4
    assert all(b - a >= timedelta(seconds=20) for a, b in pairwise(times))
    message = gmail.messages[sending.sent[0].gmail_id]
    assert message.header("List-Unsubscribe").startswith("<https://crm.example.test/u/")
    assert message.header("List-Unsubscribe-Post") == "List-Unsubscribe=One-Click"
    assert message.header("Message-ID") == sending.sent[0].message_id
