"""Records that learn an address after its mail was recorded, and link/unlink stats under
concurrent ingest."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from addon.crm.imports import import_csv
from addon.crm.models import Member, Record, ThreadLink
from addon.crm.records import link_thread, save_record, unlink_thread
from addon.crm.workspaces import folders_by_key, resolve_member
from addon.gmail.fake_server import FakeGmail
from addon.ledger.ingest import record_messages
from addon.ledger.stats import Stats, recompute_stats, stored_stats
from tests.cardread import card_of, texts
from tests.crmdata import Crm
from tests.google_fakes import AddonClient
from tests.ledger_support import writer_engine
from tests.test_ledger import (
    ANN,
    REP,
    _purge,
    assert_recompute_agrees,
    clock,
    ingest,
    links_of,
    mail,
    stats_of,
)
from tests.test_ledger_opens import open_card, three_messages
from tests.test_ledger_stats import at


def reasons(db: Session, record: Record) -> list[str]:
    return sorted(links_of(db, record).values())


# ------------------------------------------------------------- a contact created later


def test_a_contact_created_later_picks_up_its_past_conversations(crm: Crm) -> None:
    globex = crm.save("companies", name="Globex", domain="globex.com")
    ingest(
        crm,
        [
            mail("p1@globex.com", ANN, REP, thread="A", day=2),
            mail("p2@acme.test", REP, ANN, thread="A", day=3, refs=["p1@globex.com"]),
            mail("p3@globex.com", "Cy <cy@globex.com>", REP, thread="B", day=4),
        ],
    )
    assert stats_of(crm, globex) == Stats(1, 2, 2, at(2), at(4), at(3), at(4))
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com", company=f"#{globex.id}")
    assert reasons(crm.db, ann) == ["matched_email"]
    assert stats_of(crm, ann) == Stats(1, 1, 1, at(2), at(3), at(3), at(2))
    # The company's links were there already: unchanged.
    assert reasons(crm.db, globex) == ["matched_domain", "matched_domain"]
    assert_recompute_agrees(crm)


def test_a_contact_added_later_links_its_single_open_deal_and_company(crm: Crm) -> None:
    ingest(crm, [mail("q1@gmail.com", "Bob <bob@gmail.com>", REP, thread="A", day=5)])
    acme = crm.save("companies", name="Initech", domain="initech.io")
    bob = crm.save("contacts", first_name="Bob", emails="bob@gmail.com", company=f"#{acme.id}")
    deal = crm.save("deals", name="Pilot", stage="proposal", contacts=f"#{bob.id}")
    # The deal came after the contact: a new address, not a new deal, relinks.
    assert reasons(crm.db, bob) == ["matched_email"]
    assert reasons(crm.db, acme) == ["matched_email"]  # the company rolls up its contact
    assert reasons(crm.db, deal) == []
    carl = crm.save("contacts", first_name="Carl", emails="carl@initech.io")
    assert reasons(crm.db, carl) == []  # no mail of his yet
    assert_recompute_agrees(crm)


def test_an_unlinked_conversation_is_not_relinked_by_a_new_address(crm: Crm) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    ingest(
        crm,
        [
            mail("u1@globex.com", ANN, REP, thread="A", day=2),
            mail("u2@globex.com", "Ann <ann.a@gmail.com>", REP, thread="B", day=6),
        ],
    )
    unlink_thread(crm.db, ann, "A", crm.member)
    save_record(
        crm.db,
        crm.member,
        crm.folders["contacts"],
        {"emails": ["ann@globex.com", "ann.a@gmail.com"]},
        ann,
    )
    assert list(links_of(crm.db, ann).values()) == ["matched_email"]
    assert stats_of(crm, ann) == Stats(0, 1, 1, at(6), at(6), None, at(6))
    assert_recompute_agrees(crm)


def test_changing_a_contacts_email_refreshes_its_stats(crm: Crm) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com, ann.a@gmail.com")
    # One conversation where Ann writes from both of her addresses.
    ingest(
        crm,
        [
            mail("e1@globex.com", ANN, REP, thread="A", day=2),
            mail(
                "e2@gmail.com",
                "Ann <ann.a@gmail.com>",
                REP,
                thread="A",
                day=4,
                refs=["e1@globex.com"],
            ),
        ],
    )
    assert stats_of(crm, ann) == Stats(0, 2, 1, at(2), at(4), None, at(4))
    contacts = crm.folders["contacts"]
    save_record(crm.db, crm.member, contacts, {"emails": ["ann@globex.com"]}, ann)
    # Still linked, but the private address's message is no longer hers.
    assert stats_of(crm, ann) == Stats(0, 1, 1, at(2), at(2), None, at(2))
    assert_recompute_agrees(crm)
    save_record(
        crm.db, crm.member, contacts, {"emails": ["ann@globex.com", "ann.a@gmail.com"]}, ann
    )
    assert stats_of(crm, ann) == Stats(0, 2, 1, at(2), at(4), None, at(4))
    assert_recompute_agrees(crm)
    # An edit that leaves the addresses alone does no ledger work and changes nothing.
    save_record(crm.db, crm.member, contacts, {"job_title": ["CTO"]}, ann)
    assert stats_of(crm, ann) == Stats(0, 2, 1, at(2), at(4), None, at(4))


def test_imported_contacts_pick_up_their_past_conversations(crm: Crm) -> None:
    ingest(crm, [mail("i1@globex.com", ANN, REP, thread="A", day=2)])
    report = import_csv(
        crm.db,
        crm.member,
        crm.folders["contacts"],
        b"First name,Email\nAnn,ann@globex.com\nZed,zed@nowhere.example\n",
    )
    assert report.created == 2
    ann = crm.db.execute(select(Record).where(Record.title == "Ann")).scalar_one()
    assert reasons(crm.db, ann) == ["matched_email"]
    assert stats_of(crm, ann) == Stats(0, 1, 1, at(2), at(2), None, at(2))
    assert_recompute_agrees(crm)


def test_adding_the_sender_from_the_sidebar_shows_their_thread_linked(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session
) -> None:
    three_messages(gmail, "rep-1", "r")
    card = open_card(addon, "r3", "rep-1")
    assert "This person is not in your CRM yet." in texts(card)
    data = addon.action(
        "create_record",
        parameters={"folder": "contacts", "thread_id": "rep-1", "subject": "Pilot"},
        form={"first_name": "Ann", "emails": "ann@globex.com"},
    )
    created = card_of(data)
    assert "Matched by email address" in texts(created)
    ann = db.execute(select(Record).where(Record.title == "Ann")).scalar_one()
    stats = stored_stats(db, crm.member.workspace_id)[ann.id]
    assert (stats.emails_received, stats.emails_sent, stats.threads) == (2, 1, 1)
    # The sidebar knows the contact and the link now.
    assert "Unlink thread" in texts(open_card(addon, "r3", "rep-1"))


# -------------------------------------------------- manual link/unlink vs concurrent ingest


Step = Callable[[Session, Member, dict[str, int]], object]


def _link(session: Session, member: Member, ids: dict[str, int]) -> object:
    record = session.get(Record, ids["deal"])
    assert record is not None
    return link_thread(session, member, record, "rep-1", "Pilot")


def _unlink(session: Session, member: Member, ids: dict[str, int]) -> object:
    record = session.get(Record, ids["ann"])
    assert record is not None
    return unlink_thread(session, record, "rep-1", member)


def _new_mail(domain: str) -> Step:
    def run(session: Session, member: Member, ids: dict[str, int]) -> object:
        reply = mail(
            "late@globex.com", ANN, f"rep@{domain}", thread="rep-1", day=9, refs=["c1@globex.com"]
        )
        return record_messages(session, member, [reply], clock=clock)

    return run


@pytest.mark.parametrize("change", ["link", "unlink"])
@pytest.mark.parametrize("first", ["change", "ingest"])
def test_manual_link_and_unlink_stats_are_exact_under_concurrent_ingest(
    engine: Engine, change: str, first: str
) -> None:
    domain = f"lock-{uuid.uuid4().hex[:8]}.test"
    with writer_engine(engine) as writer:
        with Session(writer) as setup:
            rep = resolve_member(setup, domain, f"rep@{domain}", is_consumer=False)
            crm = Crm(setup, rep, folders_by_key(setup, rep.workspace_id))
            ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
            # Two open deals: neither is linked automatically; the link is manual.
            deal = crm.save("deals", name="Pilot", contacts=f"#{ann.id}")
            crm.save("deals", name="Other", contacts=f"#{ann.id}")
            record_messages(
                setup,
                rep,
                [mail("c1@globex.com", ANN, f"rep@{domain}", thread="rep-1")],
                clock=clock,
            )
            ids = {"ann": ann.id, "deal": deal.id, "member": rep.id}
            workspace_id = rep.workspace_id
            setup.commit()
        steps: dict[str, Step] = {
            "change": _link if change == "link" else _unlink,
            "ingest": _new_mail(domain),
        }
        second = "ingest" if first == "change" else "change"
        started = threading.Event()
        errors: list[BaseException] = []

        def run(name: str) -> None:
            try:
                if name == second:
                    started.wait(10)
                with Session(writer) as session:
                    member = session.get(Member, ids["member"])
                    assert member is not None
                    steps[name](session, member, ids)
                    if name == first:
                        # Hold the transaction open while the other one runs into it.
                        started.set()
                        time.sleep(0.5)
                    session.commit()
            except BaseException as exc:  # reported by the main thread
                started.set()
                errors.append(exc)

        workers = [threading.Thread(target=run, args=(name,)) for name in (first, second)]
        try:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(30)
            assert not errors, errors
            with Session(writer) as check:
                stats = stored_stats(check, workspace_id)
                assert recompute_stats(check, workspace_id) == 0
                assert stored_stats(check, workspace_id) == stats
                if change == "link":
                    # Both messages count for the deal, whichever committed first.
                    assert stats[ids["deal"]].emails_received == 2
                else:
                    assert ids["ann"] not in stats
                    linked = check.execute(
                        select(ThreadLink.id).where(ThreadLink.record_id == ids["ann"])
                    ).all()
                    assert linked == []
        finally:
            _purge(writer, workspace_id)
