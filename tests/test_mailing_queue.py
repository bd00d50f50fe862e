"""Quota arithmetic, sender usage, the queue's claims and leases, and the fake server's limits."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.crm.models import Member
from addon.gmail.fake_server import FakeGmail, FakeGmailServer, FakeSending
from addon.ledger.ingest import record_messages
from addon.ledger.parse import LedgerInput
from addon.mailing.models import (
    PAUSED,
    QUEUED,
    SOURCE_CAMPAIGN,
    CampaignRecipient,
    SendLog,
    is_suppressed,
    suppress,
)
from addon.mailing.queue import claim, next_due_at
from addon.mailing.quota import (
    MIN_SEND_INTERVAL,
    WINDOW,
    QuotaError,
    human_gap,
    next_send_time,
    policy_for,
    schedule,
    used_at,
)
from addon.mailing.sender import GmailSender, RateLimited, RecipientRejected
from addon.mailing.usage import sender_usage
from tests.crmdata import Crm
from tests.mailing_support import (
    START,
    FakeGrants,
    make_template,
    running_campaign,
    seed_contacts,
    sending,
)

__all__ = ["sending"]

T0 = START


# -- quota arithmetic ---------------------------------------------------------------


def test_account_types_and_admin_caps() -> None:
    assert policy_for(False, {}).cap == 1500
    assert policy_for(False, {}).google_limit == 2000
    assert policy_for(True, {}).cap == 400
    assert policy_for(True, {}).google_limit == 500
    trial = policy_for(False, {"gmail_plan": "trial"})
    assert (trial.google_limit, trial.cap) == (500, 400)
    assert policy_for(False, {"daily_send_cap": 300}).cap == 300
    # Never above Google's limit, whatever the admin typed.
    assert policy_for(False, {"daily_send_cap": 5000}).cap == 2000
    assert policy_for(True, {"daily_send_cap": "450"}).cap == 450
    assert policy_for(True, {"daily_send_cap": "lots"}).cap == 400


def test_an_event_stops_counting_exactly_24_hours_later() -> None:
    events = [(T0, 10), (T0 + timedelta(hours=1), 5)]
    assert used_at(events, T0 + timedelta(hours=23)) == 15
    assert used_at(events, T0 + WINDOW - timedelta(microseconds=1)) == 15
    assert used_at(events, T0 + WINDOW) == 5


def test_next_send_time_waits_for_the_window_and_the_rate() -> None:
    events = [(T0 + timedelta(minutes=i), 100) for i in range(15)]
    now = T0 + timedelta(hours=2)
    # 1,500 used: the first event must leave before another 100 fit.
    assert next_send_time(now=now, recipients=100, cap=1500, window_events=events) == T0 + WINDOW
    # 1 recipient also waits for the oldest event (100) to leave.
    assert next_send_time(now=now, recipients=1, cap=1500, window_events=events) == T0 + WINDOW
    # Under the cap: only the per-user rate applies.
    last = now - timedelta(milliseconds=100)
    fits = next_send_time(now=now, recipients=1, cap=1600, window_events=events, last_send_at=last)
    assert fits == last + MIN_SEND_INTERVAL
    # A prefix of the events with the total: a lower bound, never later than the truth.
    prefix = next_send_time(now=now, recipients=100, cap=1450, window_events=events[:2], used=1500)
    assert prefix == events[1][0] + WINDOW


def test_messages_over_100_recipients_or_over_the_cap_are_refused() -> None:
    with pytest.raises(QuotaError, match="at most 100"):
        next_send_time(now=T0, recipients=101, cap=1500, window_events=[])
    with pytest.raises(QuotaError, match="daily cap of 50"):
        next_send_time(now=T0, recipients=60, cap=50, window_events=[])


def test_schedule_fills_each_window_to_the_cap() -> None:
    times = schedule(now=T0, counts=[1] * 3200, cap=1500, window_events=[])
    assert times[0] == T0
    assert times[1] - times[0] == MIN_SEND_INTERVAL
    assert times[1500] == T0 + WINDOW
    assert times[3000] == times[1500] + WINDOW
    assert all(used_at(list(zip(times, [1] * 3200, strict=True)), t) <= 1500 for t in times)


def test_human_gaps_are_stable_and_within_bounds() -> None:
    gap = human_gap("<a@b>")
    assert gap == human_gap("<a@b>")
    assert timedelta(seconds=20) <= gap <= timedelta(seconds=75)


# -- usage from the database ------------------------------------------------------------


def test_mail_sent_outside_campaigns_counts_once(db: Session, crm: Crm) -> None:
    member = crm.member
    record_messages(
        db,
        member,
        [
            LedgerInput(
                message_id="<own-1@acme.test>",
                gmail_id="g1",
                gmail_thread_id="t1",
                sender=member.email,
                to="a@x.test, b@x.test",
                cc="c@x.test",
                date="Mon, 02 Mar 2026 07:00:00 +0000",
                label_ids=("SENT",),
            ),
            LedgerInput(
                message_id="<ours-1@acme.test>",
                gmail_id="g2",
                gmail_thread_id="t2",
                sender=member.email,
                to="d@x.test",
                date="Mon, 02 Mar 2026 07:30:00 +0000",
                label_ids=("SENT",),
            ),
        ],
        clock=lambda: T0,
    )
    # The second one the add-on sent: it is in the send log, and must not count twice.
    db.add(
        SendLog(
            workspace_id=member.workspace_id,
            sender_member_id=member.id,
            sent_at=T0 - timedelta(minutes=30),
            recipients=1,
            source=SOURCE_CAMPAIGN,
            message_key="ours-1@acme.test",
        )
    )
    db.flush()
    usage = sender_usage(db, member, T0)
    assert usage.used == 3 + 1
    assert sender_usage(db, member, T0 + WINDOW).used == 0


def test_suppression_is_idempotent_and_by_canonical_address(db: Session, crm: Crm) -> None:
    ws = crm.member.workspace_id
    first = suppress(db, ws, "Ann@Client.TEST", "unsubscribed")
    again = suppress(db, ws, "ann@client.test", "bounced")
    assert first.id == again.id and again.reason == "unsubscribed"
    assert is_suppressed(db, ws, ["ANN@client.test", "bob@client.test"]) == {"ANN@client.test"}
    erased = suppress(db, ws, "gone@client.test", "erased")
    assert erased.email is None
    with pytest.raises(ValueError, match="unknown suppression reason"):
        suppress(db, ws, "x@client.test", "annoyed")


# -- claims -------------------------------------------------------------------------------


def test_claims_take_due_rows_of_running_campaigns_under_a_lease(db: Session, crm: Crm) -> None:
    folder = crm.folders["contacts"]
    seed_contacts(db, crm.member, folder, 5)
    campaign = running_campaign(db, crm.member, folder, make_template(db, crm.member))
    mine = claim(db, worker_id="w1", now=T0, sender_member_id=crm.member.id, limit=3)
    assert len(mine) == 3 and {r.claimed_by for r in mine} == {"w1"}
    others = claim(db, worker_id="w2", now=T0, sender_member_id=crm.member.id, limit=10)
    assert len(others) == 2
    assert claim(db, worker_id="w3", now=T0, sender_member_id=crm.member.id) == []
    # Leases end: the rows are free again.
    later = T0 + timedelta(minutes=5)
    assert next_due_at(db, crm.member.id, T0) == later
    assert len(claim(db, worker_id="w3", now=later, sender_member_id=crm.member.id)) == 5
    # A paused campaign's rows are not claimed.
    campaign.status = PAUSED
    db.flush()
    assert claim(db, worker_id="w4", now=later + WINDOW, sender_member_id=crm.member.id) == []
    assert next_due_at(db, crm.member.id, later) is None


def test_a_retry_in_the_future_is_not_due(db: Session, crm: Crm) -> None:
    folder = crm.folders["contacts"]
    seed_contacts(db, crm.member, folder, 1)
    running_campaign(db, crm.member, folder, make_template(db, crm.member))
    row = db.scalar(select(CampaignRecipient))
    assert row is not None and row.state == QUEUED
    row.next_attempt_at = T0 + timedelta(minutes=2)
    db.flush()
    assert claim(db, worker_id="w", now=T0, sender_member_id=crm.member.id) == []
    assert next_due_at(db, crm.member.id, T0) == T0 + timedelta(minutes=2)


# -- the fake server's limits, through the real client ------------------------------------


def _raw(to: str, message_id: str, sender: str = "rep@acme.test") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: hi\r\nMessage-ID: {message_id}\r\n"
        "Date: Mon, 02 Mar 2026 08:00:00 +0000\r\n\r\nhello\r\n"
    ).encode()


def _sender(gmail_server: FakeGmailServer, db: Session) -> GmailSender:
    member = db.scalar(select(Member).where(Member.email == "rep@acme.test"))
    assert member is not None
    return GmailSender(gmail_server.url, FakeGrants()(db, member), timeout=5)


def test_fake_server_enforces_quota_and_rate_with_retry_after(
    crm: Crm, db: Session, gmail_server: FakeGmailServer, sending: FakeSending
) -> None:
    now = [T0]
    sending.clock = lambda: now[0]
    sending.quota, sending.rate = 3, 2.5
    sender = _sender(gmail_server, db)
    assert sender.send(_raw("a@x.test", "<m1@acme.test>"))
    with pytest.raises(RateLimited) as rate:
        sender.send(_raw("b@x.test", "<m2@acme.test>"))
    assert rate.value.retry_after == 1
    now[0] += timedelta(seconds=1)
    sender.send(_raw("b@x.test, c@x.test", "<m2@acme.test>"))
    now[0] += timedelta(seconds=1)
    with pytest.raises(RateLimited) as quota:
        sender.send(_raw("d@x.test", "<m3@acme.test>"))
    assert quota.value.retry_after == pytest.approx((WINDOW - timedelta(seconds=2)).total_seconds())
    assert [r[2] for r in sending.refused] == ["rate", "quota"]
    assert sender.find_by_message_id("<m2@acme.test>") is not None
    assert sender.find_by_message_id("<m3@acme.test>") is None


def test_fake_server_rejects_a_bad_address_and_unknown_queries(
    crm: Crm, db: Session, gmail_server: FakeGmailServer, gmail: FakeGmail, sending: FakeSending
) -> None:
    sending.bad_recipients.add("nobody@x.test")
    with pytest.raises(RecipientRejected, match="400"):
        _sender(gmail_server, db).send(_raw("nobody@x.test", "<m9@acme.test>"))
    request = urllib.request.Request(
        f"{gmail_server.url}gmail/v1/users/me/messages?q=label%3Afoo",
        headers={"Authorization": "Bearer t"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400
    body = json.loads(refused.value.read())
    assert "does not understand" in body["error"]["message"]
