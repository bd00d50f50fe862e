"""Opening a message records it and its thread in the ledger, through the contextual route.

The real google-api-python-client talks to the fake Gmail server (messages.get and
threads.get); every card passes the strict card check.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, func, select
from sqlalchemy.orm import Session

from addon.crm.models import Member, ThreadLink
from addon.crm.workspaces import folders_by_key, resolve_member
from addon.deferred import drain
from addon.gmail.fake_server import FakeGmail, FakeGmailServer
from addon.ledger.models import Conversation, LedgerMessage, ThreadMap
from addon.ledger.stats import recompute_stats, stored_stats
from tests.crmdata import Crm
from tests.google_fakes import AddonClient, TokenFactory
from tests.ledger_support import (
    committing_app,
    open_event,
    thread_message,
    thread_reads,
    writer_engine,
)
from tests.test_contextual import action_of, all_text, button_named, button_texts, line, pushed
from tests.test_ledger import _purge, count

ANN = "Ann Archer <ann@globex.com>"
REP = "Rep <rep@acme.test>"


def open_card(addon: AddonClient, gmail_id: str, thread: str) -> dict[str, Any]:
    """POST the contextual trigger and return its card."""
    return pushed(addon.post("/gmail/message", gmail=open_event(gmail_id, thread)))


def three_messages(gmail: FakeGmail, thread: str, prefix: str, rep: str = REP) -> None:
    """Ann writes, the rep answers, Ann replies: one mailbox's copy of the conversation."""
    thread_message(gmail, f"{prefix}1", thread, "c1@globex.com", ANN, rep, day=2)
    thread_message(
        gmail, f"{prefix}2", thread, "c2@acme.test", rep, ANN, day=3, refs=("c1@globex.com",)
    )
    thread_message(
        gmail,
        f"{prefix}3",
        thread,
        "c3@globex.com",
        ANN,
        rep,
        day=4,
        refs=("c1@globex.com", "c2@acme.test"),
    )


# ------------------------------------------------------------------- recording opens


def test_an_open_records_the_thread_links_it_and_counts_stats(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session
) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    three_messages(gmail, "rep-1", "r")
    card = open_card(addon, "r3", "rep-1")
    assert thread_reads(gmail) == ["rep-1"]
    [read] = [r for r in gmail.requests if "/threads/" in r["path"]]
    assert read["query"]["format"] == ["metadata"]
    assert {"Message-ID", "References", "In-Reply-To", "Bcc", "Date"} <= set(
        read["query"]["metadataHeaders"]
    )
    assert count(db, LedgerMessage) == 3 and count(db, Conversation) == 1
    assert db.execute(select(ThreadLink.reason).where(ThreadLink.record_id == ann.id)).all() == [
        ("matched_email",)
    ]
    stats = stored_stats(db, crm.member.workspace_id)[ann.id]
    assert (stats.emails_received, stats.emails_sent, stats.threads) == (2, 1, 1)
    # The thread was recorded after the answer (addon.deferred): the first card offers to
    # link it, and from the next open on the card shows the automatic link.
    assert "Link thread" in button_texts(card)
    assert "Unlink thread" in button_texts(open_card(addon, "r3", "rep-1"))


def test_repeated_opens_count_once_and_skip_the_thread_read(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session, connection: Connection
) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    three_messages(gmail, "rep-1", "r")
    open_card(addon, "r3", "rep-1")
    once = stored_stats(db, crm.member.workspace_id)[ann.id]
    statements: list[str] = []

    def counted(*args: Any) -> None:
        # The test transaction's savepoints stand in for commits: not the route's work.
        if not args[2].startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            statements.append(args[2])

    event.listen(connection, "before_cursor_execute", counted)
    try:
        card = open_card(addon, "r3", "rep-1")
        open_card(addon, "r1", "rep-1")
    finally:
        event.remove(connection, "before_cursor_execute", counted)
    # Known message, mapped thread: no threads.get, and one statement on top of the
    # card's own (member, contacts, summary, deals) per open.
    assert thread_reads(gmail) == ["rep-1"]
    assert len(statements) <= 2 * 5, statements
    assert "Unlink thread" in button_texts(card)
    assert count(db, LedgerMessage) == 3
    assert stored_stats(db, crm.member.workspace_id)[ann.id] == once
    # A new message of the thread reads it again, and only the new one is recorded.
    thread_message(gmail, "r4", "rep-1", "c4@acme.test", REP, ANN, day=6, refs=("c1@globex.com",))
    open_card(addon, "r4", "rep-1")
    assert thread_reads(gmail) == ["rep-1", "rep-1"]
    assert count(db, LedgerMessage) == 4
    stats = stored_stats(db, crm.member.workspace_id)[ann.id]
    assert (stats.emails_received, stats.emails_sent, stats.threads) == (2, 2, 1)
    assert recompute_stats(db, crm.member.workspace_id) == 0


def test_teammates_opening_their_copies_record_the_thread_once(
    addon: AddonClient,
    app: Any,
    tokens: TokenFactory,
    gmail: FakeGmail,
    crm: Crm,
    db: Session,
) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    three_messages(gmail, "rep-1", "r")
    three_messages(gmail, "mate-9", "m")
    mate = AddonClient(app.test_client(), tokens, user="mate@acme.test", hd="acme.test")
    open_card(addon, "r3", "rep-1")
    card = open_card(mate, "m3", "mate-9")
    assert count(db, LedgerMessage) == 3 and count(db, Conversation) == 1
    maps = db.execute(select(ThreadMap.gmail_thread_id, ThreadMap.conversation_id)).all()
    assert {t for t, _c in maps} == {"rep-1", "mate-9"} and len({c for _t, c in maps}) == 1
    stats = stored_stats(db, crm.member.workspace_id)[ann.id]
    assert (stats.emails_received, stats.emails_sent, stats.threads) == (2, 1, 1)
    # The link was made from the rep's thread; the teammate's card knows it by conversation.
    assert "Unlink thread" in button_texts(card)
    name, params = action_of(button_named(card, "Unlink thread"))
    mate.action(name, parameters=params)
    assert count(db, ThreadLink, ThreadLink.record_id == ann.id) == 0
    assert ann.id not in stored_stats(db, crm.member.workspace_id)


def test_a_failed_thread_read_still_shows_the_card_and_records_the_open_message(
    addon: AddonClient,
    gmail: FakeGmail,
    crm: Crm,
    db: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    three_messages(gmail, "rep-1", "r")
    gmail.fail_threads_with = 500
    card = open_card(addon, "r3", "rep-1")
    assert card["name"] == "message"
    assert "Ann" in all_text(card)
    assert "reading Gmail thread rep-1 failed: Gmail answered 500" in caplog.text
    keys = db.execute(select(LedgerMessage.message_key)).scalars().all()
    assert keys == ["c3@globex.com"]
    assert stored_stats(db, crm.member.workspace_id)[ann.id].emails_received == 1
    # The next new message of the thread reads it again and records what was missed.
    gmail.fail_threads_with = None
    thread_message(gmail, "r4", "rep-1", "c4@acme.test", REP, ANN, day=6, refs=("c1@globex.com",))
    open_card(addon, "r4", "rep-1")
    assert count(db, LedgerMessage) == 4
    assert recompute_stats(db, crm.member.workspace_id) == 0


def test_drafts_and_spam_are_not_recorded(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session
) -> None:
    crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    thread_message(gmail, "s1", "spam-1", "s1@globex.com", ANN, REP, labels=("SPAM",))
    card = open_card(addon, "s1", "spam-1")
    assert card["name"] == "message"
    assert thread_reads(gmail) == []
    assert count(db, LedgerMessage) == 0


# ------------------------------------------------------------------ deal suggestions


def test_several_open_deals_are_suggested_with_link_buttons(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session
) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    pilot = crm.save("deals", name="Pilot", stage="proposal", contacts=f"#{ann.id}")
    rollout = crm.save("deals", name="Rollout", stage="new", contacts=f"#{ann.id}")
    three_messages(gmail, "rep-1", "r")
    card = open_card(addon, "r3", "rep-1")
    # Two open deals: neither is linked automatically; the card asks.
    deal_links = db.execute(
        select(ThreadLink.record_id).where(ThreadLink.record_id.in_([pilot.id, rollout.id]))
    ).all()
    assert deal_links == []
    assert "Several open deals: link this thread to the one it is about." in all_text(card)
    for deal in (pilot, rollout):
        assert action_of(line(card, deal.title)["button"]) == (
            "link_thread",
            {"record_id": str(deal.id), "thread_id": "rep-1", "subject": "Pilot"},
        )
    name, params = action_of(line(card, "Rollout")["button"])
    addon.action(name, parameters=params)
    card = open_card(addon, "r3", "rep-1")
    assert "Several open deals" not in all_text(card)
    assert line(card, "Rollout")["bottomLabel"] == "Linked to this thread"
    assert "button" not in line(card, "Rollout")
    assert "button" in line(card, "Pilot")
    rollout_stats = stored_stats(db, crm.member.workspace_id)[rollout.id]
    assert (rollout_stats.emails_received, rollout_stats.emails_sent) == (2, 1)


def test_a_single_open_deal_is_linked_on_open(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session
) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    pilot = crm.save("deals", name="Pilot", stage="proposal", contacts=f"#{ann.id}")
    three_messages(gmail, "rep-1", "r")
    card = open_card(addon, "r3", "rep-1")
    reason = db.execute(
        select(ThreadLink.reason).where(ThreadLink.record_id == pilot.id)
    ).scalar_one()
    assert reason == "single_open_deal"
    assert "Several open deals" not in all_text(card)
    # Recorded after the first answer: the next open shows the deal linked.
    assert line(open_card(addon, "r3", "rep-1"), "Pilot")["bottomLabel"] == "Linked to this thread"


# ----------------------------------------------------------------------- concurrency


@pytest.mark.parametrize("same_member", [True, False], ids=["same-member", "teammates"])
def test_concurrent_opens_count_once(
    engine: Engine,
    gmail_server: FakeGmailServer,
    gmail: FakeGmail,
    tokens: TokenFactory,
    same_member: bool,
) -> None:
    domain = f"open-{uuid.uuid4().hex[:8]}.test"
    rep_email, mate_email = f"rep@{domain}", f"mate@{domain}"
    with writer_engine(engine) as writer:
        with Session(writer) as setup:
            rep = resolve_member(setup, domain, rep_email, is_consumer=False)
            resolve_member(setup, domain, mate_email, is_consumer=False)
            crm = Crm(setup, rep, folders_by_key(setup, rep.workspace_id))
            ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
            workspace_id, ann_id = rep.workspace_id, ann.id
            setup.commit()
        three_messages(gmail, "rep-1", "r", rep=rep_email)
        three_messages(gmail, "mate-1", "m", rep=rep_email)
        app = committing_app(writer, gmail_server)
        openers = [
            (rep_email, "r3", "rep-1"),
            (rep_email, "r3", "rep-1") if same_member else (mate_email, "m3", "mate-1"),
            (rep_email, "r2", "rep-1"),
        ]
        start = threading.Barrier(len(openers))
        errors: list[BaseException] = []

        def run(user: str, gmail_id: str, thread: str) -> None:
            try:
                client = AddonClient(app.test_client(), tokens, user=user, hd=domain)
                start.wait(10)
                card = open_card(client, gmail_id, thread)
                assert card["name"] == "message", card
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        workers = [threading.Thread(target=run, args=opener) for opener in openers]
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(60)
            assert not errors, errors
            # This app runs deferred work as production does: on the background pool,
            # after each answer. The recordings are done once it drains.
            drain(timeout=60)
            with Session(writer) as check:
                messages = check.execute(
                    select(func.count())
                    .select_from(LedgerMessage)
                    .where(LedgerMessage.workspace_id == workspace_id)
                ).scalar_one()
                assert messages == 3
                links = check.execute(
                    select(func.count())
                    .select_from(ThreadLink)
                    .where(ThreadLink.record_id == ann_id)
                ).scalar_one()
                assert links == 1
                stats = stored_stats(check, workspace_id)[ann_id]
                assert (stats.emails_received, stats.emails_sent, stats.threads) == (2, 1, 1)
                assert recompute_stats(check, workspace_id) == 0
        finally:
            _purge(writer, workspace_id)


def test_another_workspace_opening_the_same_message_keeps_its_own_ledger(
    addon: AddonClient, other_tenant: AddonClient, gmail: FakeGmail, crm: Crm, db: Session
) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    three_messages(gmail, "rep-1", "r")
    open_card(addon, "r3", "rep-1")
    mine = stored_stats(db, crm.member.workspace_id)
    open_card(other_tenant, "r3", "rep-1")
    spy = db.execute(select(Member).where(Member.email == "spy@rival.test")).scalar_one()
    assert count(db, LedgerMessage, LedgerMessage.workspace_id == spy.workspace_id) == 3
    assert count(db, ThreadLink, ThreadLink.workspace_id == spy.workspace_id) == 0
    assert stored_stats(db, crm.member.workspace_id) == mine
    assert set(mine) == {ann.id}
