"""Email stats: the values per record kind, stats fields in views, the CLI, and the property
that incremental stats always equal a rebuild from the ledger."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from addon.crm.exports import export_rows
from addon.crm.fields import field_type
from addon.crm.hygiene import merge_records
from addon.crm.models import FieldDef, FieldValue, Member, Record
from addon.crm.records import (
    every_value,
    link_thread,
    load_detail,
    load_values,
    save_record,
    unlink_thread,
)
from addon.crm.views import ViewError, count_view, list_view, parse_definition, view_page
from addon.crm.workspaces import folder_fields
from addon.gmail.client import GmailError, MessageMeta
from addon.ledger.models import RecordStats
from addon.ledger.opens import record_open
from addon.ledger.stats import (
    METRIC_LABELS,
    EmailStats,
    Stats,
    email_stats,
    ensure_stats_fields,
    recompute_stats,
    stats_field_values,
    stored_stats,
)
from addon.mailing.context import merge_values
from tests.crmdata import Crm
from tests.test_ledger import (
    ANN,
    REP,
    assert_recompute_agrees,
    clock,
    ingest,
    mail,
    stats_of,
    teammate,
)


def at(day: int, hour: int = 10) -> datetime:
    """A moment of June 2025, UTC."""
    return datetime(2025, 6, day, hour, tzinfo=UTC)


@pytest.fixture
def scenario(crm: Crm) -> dict[str, Record]:
    """Ann and Cy of Globex, Ann's one open deal, and a conversation recorded in two goes."""
    globex = crm.save("companies", name="Globex", domain="globex.com")
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com", company=f"#{globex.id}")
    cy = crm.save("contacts", first_name="Cy", emails="cy@globex.com")
    pilot = crm.save("deals", name="Pilot", stage="proposal", contacts=f"#{ann.id}")
    mate = teammate(crm)
    ingest(crm, [mail("c1@globex.com", ANN, REP, cc="cy@globex.com", day=2, thread="A")])
    ingest(
        crm,
        [
            mail("c2@acme.test", REP, ANN, day=3, thread="A", refs=["c1@globex.com"]),
            mail("c3@acme.test", REP, "cy@globex.com", day=5, thread="A", refs=["c1@globex.com"]),
        ],
    )
    ingest(
        crm,
        [
            mail("c4@acme.test", "mate@acme.test", REP, day=7, thread="mA", refs=["c1@globex.com"]),
            mail("c5@globex.com", "Cy <cy@globex.com>", "mate@acme.test", day=10, thread="mB"),
        ],
        mate,
    )
    return {"globex": globex, "ann": ann, "cy": cy, "pilot": pilot}


def test_stats_of_contacts_companies_and_deals(crm: Crm, scenario: dict[str, Record]) -> None:
    expected = {
        # Ann is on c1 (she wrote it) and c2 (to her); c3 and c4 are not hers.
        "ann": Stats(1, 1, 1, at(2), at(3), at(3), at(2)),
        # Cy: copied on c1 (counts as an email, neither sent nor received), c3 to him, c5 his.
        "cy": Stats(1, 1, 2, at(2), at(10), at(5), at(10)),
        # The company: every message of both conversations (the internal c4 is no "sent").
        "globex": Stats(2, 2, 2, at(2), at(10), at(5), at(10)),
        # Ann's one open deal: her conversation only, the internal c4 included as an email.
        "pilot": Stats(2, 1, 1, at(2), at(7), at(5), at(2)),
    }
    for name, stats in expected.items():
        assert stats_of(crm, scenario[name]) == stats, name
    shown = email_stats(
        crm.db, crm.member.workspace_id, [r.id for r in scenario.values()], clock=clock
    )
    assert shown[scenario["ann"].id] == EmailStats(
        emails_sent=1,
        emails_received=1,
        threads=1,
        first_email=at(2),
        last_email=at(3),
        last_sent=at(3),
        last_received=at(2),
        last_contacted=at(3),
        days_since_last_contact=27,
        days_since_last_reply=28,
    )
    assert (
        shown[scenario["pilot"].id].days_since_last_contact,
        shown[scenario["pilot"].id].days_since_last_reply,
    ) == (25, 28)
    assert_recompute_agrees(crm)


def test_days_since_follow_the_clock_and_records_without_mail_are_empty(
    crm: Crm, scenario: dict[str, Record]
) -> None:
    quiet = crm.save("contacts", first_name="Quiet", emails="q@initech.io")
    ids = [scenario["cy"].id, quiet.id]
    later = email_stats(
        crm.db,
        crm.member.workspace_id,
        ids,
        clock=lambda: datetime(2025, 7, 10, 23, 59, tzinfo=UTC),
    )
    assert later[scenario["cy"].id].days_since_last_reply == 30
    assert later[quiet.id] == EmailStats(0, 0, 0, None, None, None, None, None, None, None)
    assert stats_of(crm, quiet) is None


def test_adding_mail_to_an_unlinked_record_changes_nothing_until_linked(
    crm: Crm, scenario: dict[str, Record]
) -> None:
    ann = scenario["ann"]
    unlink_thread(crm.db, ann, "A", crm.member)
    assert stats_of(crm, ann) is None
    ingest(crm, [mail("c6@globex.com", ANN, REP, day=12, thread="A", refs=["c1@globex.com"])])
    assert stats_of(crm, ann) is None
    link_thread(crm.db, crm.member, ann, "A", "Pilot")
    assert stats_of(crm, ann) == Stats(1, 2, 1, at(2), at(12), at(3), at(12))
    assert_recompute_agrees(crm)


def test_stats_fields_follow_mail_recorded_out_of_order(
    crm: Crm, scenario: dict[str, Record]
) -> None:
    """An older message moves the first email and the counts, never the last ones; a
    newer one the last ones. Either way the fields equal what a rebuild gives."""
    contacts = crm.folders["contacts"]
    ensure_stats_fields(crm.db, contacts)
    ann = scenario["ann"]
    defs = folder_fields(crm.db, contacts.id)

    def fields() -> dict[str, Any]:
        values = load_values(crm.db, ann, defs)
        return {f.key: values.get(f.key) for f in defs if f.key.startswith("email_")}

    before = fields()
    assert before["email_first_email"] == "2025-06-02T10:00:00Z"
    ingest(crm, [mail("old@globex.com", ANN, REP, day=1, thread="A", refs=["c1@globex.com"])])
    older = fields()
    assert older["email_first_email"] == "2025-06-01T10:00:00Z"
    assert older["email_emails_received"] == before["email_emails_received"] + 1
    for key in ("email_last_email", "email_last_received", "email_last_contacted"):
        assert older[key] == before[key]
    ingest(crm, [mail("new@acme.test", REP, ANN, day=25, thread="A", refs=["c1@globex.com"])])
    newer = fields()
    assert newer["email_last_sent"] == newer["email_last_contacted"] == "2025-06-25T10:00:00Z"
    assert newer["email_days_since_last_contact"] == "2025-06-25T10:00:00Z"
    assert newer["email_first_email"] == "2025-06-01T10:00:00Z"
    assert newer["email_last_received"] == older["email_last_received"]
    assert_recompute_agrees(crm)
    assert fields() == newer


def test_stats_fields_show_in_views_sorts_and_cards(crm: Crm, scenario: dict[str, Record]) -> None:
    contacts = crm.folders["contacts"]
    added = ensure_stats_fields(crm.db, contacts)
    assert [f.options["metric"] for f in added] == list(METRIC_LABELS)
    assert ensure_stats_fields(crm.db, contacts) == []
    ann, cy = scenario["ann"], scenario["cy"]
    fields = folder_fields(crm.db, contacts.id)
    by_key = {f.key: f for f in fields}
    values = load_values(crm.db, ann, fields)
    assert values["email_emails_sent"] == 1
    assert values["email_last_contacted"] == "2025-06-03T10:00:00Z"
    assert values["email_days_since_last_reply"] == "2025-06-02T10:00:00Z"
    # The record card shows them, read from the record's stats.
    shown = load_detail(crm.db, ann).values
    assert {k: v for k, v in shown.items() if k.startswith("email_")} == {
        k: v for k, v in values.items() if k.startswith("email_")
    }
    # Stats fields store nothing of their own: record_stats is the one copy.
    stored = crm.db.execute(
        select(FieldValue.id).where(FieldValue.field_id.in_([f.id for f in added]))
    ).all()
    assert stored == []
    # New mail moves them with the stats.
    ingest(crm, [mail("c7@globex.com", ANN, REP, day=20, thread="A", refs=["c1@globex.com"])])
    assert load_values(crm.db, ann, fields)["email_emails_received"] == 2
    today = date(2025, 6, 30)

    def matching(field: str, op: str, value: str) -> set[int]:
        definition = parse_definition(
            fields, {"conditions": [{"field": field, "op": op, "value": value}]}
        )
        found = list_view(crm.db, contacts, definition, today=today)
        assert count_view(crm.db, contacts, definition, today=today) == len(found)
        return {r.id for r in found}

    assert matching("email_emails_received", "gt", "1") == {ann.id}
    assert matching("email_threads", "equals", "2") == {cy.id}
    # "No reply for 15 days": Ann last wrote on the 20th (10 days), Cy on the 10th (20 days).
    assert matching("email_days_since_last_reply", "gt", "15") == {cy.id}
    assert matching("email_days_since_last_reply", "lt", "15") == {ann.id}
    assert matching("email_days_since_last_reply", "equals", "10") == {ann.id}
    assert matching("email_last_received", "after", "2025-06-15") == {ann.id}
    with pytest.raises(ViewError, match="is not a whole number of days"):
        matching("email_days_since_last_contact", "gt", "soon")
    by_days = parse_definition(
        fields, {"sort": {"field": "email_days_since_last_reply", "desc": True}}
    )
    quiet = crm.save("contacts", first_name="Quiet", emails="q@initech.io")
    order = [r.id for r in list_view(crm.db, contacts, by_days, today=today)]
    assert order == [cy.id, ann.id, quiet.id]  # most days first, no mail last
    shown_days = field_type("stats").display_for(
        values["email_days_since_last_contact"],
        options={**by_key["email_days_since_last_contact"].options, "_today": "2025-06-30"},
    )
    assert shown_days == "27 days"
    # The fields are computed: a form cannot set them.
    from addon.crm.records import ValidationError

    with pytest.raises(ValidationError) as refused:
        save_record(crm.db, crm.member, contacts, {"email_emails_sent": ["5"]}, ann)
    assert refused.value.errors == {"email_emails_sent": "is computed from email activity"}


def test_stats_conditions_see_only_the_folders_records(
    crm: Crm, scenario: dict[str, Record]
) -> None:
    """Stats conditions read record_stats, which holds every folder's rows (Globex and the
    deal have stats too): a view still counts, lists and unites only its own records, and
    records without email activity are the empty ones."""
    contacts = crm.folders["contacts"]
    ensure_stats_fields(crm.db, contacts)
    ann, cy = scenario["ann"], scenario["cy"]
    quiet = crm.save("contacts", first_name="Quiet", emails="q@initech.io")
    assert stored_stats(crm.db, crm.member.workspace_id).keys() >= {
        scenario["globex"].id,
        scenario["pilot"].id,
    }
    fields = folder_fields(crm.db, contacts.id)
    today = date(2025, 6, 30)

    def matching(conditions: list[dict[str, str]], match: str = "all") -> list[int]:
        definition = parse_definition(fields, {"conditions": conditions, "match": match})
        found = [r.id for r in list_view(crm.db, contacts, definition, today=today)]
        assert count_view(crm.db, contacts, definition, today=today) == len(found)
        page = view_page(crm.db, contacts, definition, today=today)
        assert sorted(r.id for r in page.records) == sorted(found)
        return sorted(found)

    threads = {"field": "email_threads", "op": "gt", "value": "0"}
    assert matching([threads]) == sorted([ann.id, cy.id])
    named = {"field": "first_name", "op": "equals", "value": "Quiet"}
    assert matching([threads, named], "any") == sorted([ann.id, cy.id, quiet.id])
    assert matching([{"field": "email_last_sent", "op": "is_empty"}]) == [quiet.id]
    assert matching([{"field": "email_threads", "op": "not_equals", "value": "2"}]) == sorted(
        [ann.id, quiet.id]
    )
    assert matching([{"field": "email_emails_sent", "op": "in_list", "value": "1, 2"}]) == sorted(
        [ann.id, cy.id]
    )
    with pytest.raises(ViewError, match="is not a number"):
        matching([{"field": "email_threads", "op": "gt", "value": "many"}])
    # Sorted by a stats field both ways: records without a value last either way.
    for desc in (False, True):
        sort = {"field": "email_last_contacted", "desc": desc}
        by_last = parse_definition(fields, {"sort": sort})
        order = [r.id for r in list_view(crm.db, contacts, by_last, today=today)]
        assert order[-1] == quiet.id and set(order) == {ann.id, cy.id, quiet.id}
        pages = [
            r.id
            for number in range(3)
            for r in list_view(crm.db, contacts, by_last, page=number, page_size=1, today=today)
        ]
        assert pages == order


def test_stats_fields_reach_exports_merge_fields_and_record_snapshots(
    crm: Crm, scenario: dict[str, Record]
) -> None:
    """Every reader of field values gets the stats fields from record_stats."""
    contacts, companies = crm.folders["contacts"], crm.folders["companies"]
    ensure_stats_fields(crm.db, contacts, ["emails_sent", "last_contacted"])
    ensure_stats_fields(crm.db, companies, ["threads"])
    ann, cy, globex = scenario["ann"], scenario["cy"], scenario["globex"]
    table = export_rows(crm.db, None, contacts)
    rows = {row[table.header.index("First name")]: row for row in table.rows}
    assert rows["Ann"][table.header.index("Emails sent")] == "1"
    assert rows["Ann"][table.header.index("Last contacted")] == "2025-06-03T10:00:00Z"
    merged = merge_values(crm.db, crm.member.workspace_id, [ann.id, cy.id], crm.member, clock=clock)
    assert merged[ann.id]["email_emails_sent"] == "1"
    assert merged[ann.id]["company.email_threads"] == str(stats_of(crm, globex).threads)
    assert every_value(crm.db, ann)["email_emails_sent"] == 1


def test_recompute_command_repairs_and_reports(
    app: Flask, crm: Crm, scenario: dict[str, Record]
) -> None:
    crm.db.execute(
        update(RecordStats)
        .where(RecordStats.record_id == scenario["ann"].id)
        .values(emails_sent=99)
    )
    crm.db.flush()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["crm", "recompute-stats", "--domain", "acme.test", "--add-fields"])
    assert result.exit_code == 0, result.output
    assert "acme.test: 30 stats field(s) added" in result.output
    assert "acme.test: 4 record(s) recomputed, 1 changed" in result.output
    assert "Recomputing acme.test" in result.output
    assert stats_of(crm, scenario["ann"]) == Stats(1, 1, 1, at(2), at(3), at(3), at(2))
    again = runner.invoke(args=["crm", "recompute-stats", "--domain", "acme.test"])
    assert "4 record(s) recomputed, 0 changed" in again.output
    unknown = runner.invoke(args=["crm", "recompute-stats", "--domain", "nowhere.test"])
    assert unknown.exit_code != 0 and "no workspace 'nowhere.test'" in unknown.output


# ----------------------------------------------------------------------- the property


@dataclass(frozen=True)
class Spec:
    """One message of a generated world; every mailbox's copy of it is identical."""

    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    day: int
    parent: int | None


PEOPLE = (
    "ann@globex.com",
    "bob.g@gmail.com",
    "cy@initech.io",
    "dee@globex.com",
    "noreply@globex.com",
    "rep@acme.test",
    "mate@acme.test",
)
MEMBERS = ("rep@acme.test", "mate@acme.test")


@st.composite
def worlds(draw: st.DrawFn) -> list[Spec]:
    """A handful of messages, replies pointing at earlier ones."""
    specs: list[Spec] = []
    for index in range(draw(st.integers(1, 7))):
        sender = draw(st.sampled_from(PEOPLE))
        others = [p for p in PEOPLE if p != sender]
        to = tuple(draw(st.lists(st.sampled_from(others), min_size=1, max_size=2, unique=True)))
        cc = tuple(draw(st.lists(st.sampled_from(others), max_size=1)))
        parent = draw(st.none() | st.integers(0, index - 1)) if index else None
        specs.append(Spec(sender, to, cc, draw(st.integers(1, 28)), parent))
    return specs


RECORDS = ("ann", "bob", "cy", "globex", "initech", "deal1", "deal2", "deal3")
MERGEABLE = (("ann", "bob"), ("bob", "cy"), ("globex", "initech"), ("deal2", "deal3"))
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("ingest"),
            st.sampled_from(MEMBERS),
            st.lists(st.integers(0, 6), min_size=1, max_size=4),
        ),
        st.tuples(
            st.just("link"), st.sampled_from(MEMBERS), st.sampled_from(RECORDS), st.integers(0, 6)
        ),
        st.tuples(
            st.just("unlink"), st.sampled_from(MEMBERS), st.sampled_from(RECORDS), st.integers(0, 6)
        ),
        st.tuples(st.just("merge"), st.sampled_from(MERGEABLE), st.booleans()),
        # Opening message i in a mailbox, as the contextual trigger does (record_open);
        # the flag makes Gmail's thread read fail.
        st.tuples(st.just("open"), st.sampled_from(MEMBERS), st.integers(0, 6), st.booleans()),
        # A contact given one more address (its past mail is linked, stats refreshed).
        st.tuples(
            st.just("address"), st.sampled_from(("ann", "bob", "cy")), st.sampled_from(PEOPLE[:5])
        ),
        # Mail merge recording a message it sent to one person.
        st.tuples(
            st.just("send"),
            st.sampled_from(MEMBERS),
            st.sampled_from(PEOPLE[:4]),
            st.integers(1, 28),
        ),
    ),
    min_size=1,
    max_size=8,
)


@pytest.fixture
def world_records(crm: Crm) -> dict[str, Record]:
    """Contacts, companies and deals the generated mail can match."""
    teammate(crm)
    globex = crm.save("companies", name="Globex", domain="globex.com")
    initech = crm.save("companies", name="Initech", domain="initech.io")
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com", company=f"#{globex.id}")
    bob = crm.save("contacts", first_name="Bob", emails="bob.g@gmail.com", company=f"#{globex.id}")
    cy = crm.save("contacts", first_name="Cy", emails="cy@initech.io")
    deals = {
        "deal1": crm.save("deals", name="One", contacts=f"#{ann.id}"),
        "deal2": crm.save("deals", name="Two", company=f"#{initech.id}"),
        "deal3": crm.save("deals", name="Three", company=f"#{initech.id}", stage="negotiation"),
    }
    ensure_stats_fields(crm.db, crm.folders["contacts"], ["emails_sent", "last_contacted"])
    return {"ann": ann, "bob": bob, "cy": cy, "globex": globex, "initech": initech, **deals}


def stats_fields_of(db: Session, workspace_id: int) -> dict[int, dict[int, Any]]:
    """The stats fields' values of every record of the workspace, as cards show them."""
    fields = db.execute(select(FieldDef).where(FieldDef.workspace_id == workspace_id)).scalars()
    records = db.execute(select(Record.id).where(Record.workspace_id == workspace_id)).scalars()
    return stats_field_values(db, list(fields), list(records))


def _root(specs: list[Spec], index: int) -> int:
    while specs[index].parent is not None:
        index = specs[index].parent  # type: ignore[assignment]
    return index


def _input(specs: list[Spec], index: int, member: str):  # type: ignore[no-untyped-def]
    spec, chain = specs[index], []
    parent = spec.parent
    while parent is not None:
        chain.insert(0, f"w{parent}@x.test")
        parent = specs[parent].parent
    return mail(
        f"w{index}@x.test",
        spec.sender,
        ", ".join(spec.to),
        cc=", ".join(spec.cc),
        day=spec.day,
        thread=f"{member}-{_root(specs, index)}",
        refs=chain,
    )


def _meta(specs: list[Spec], index: int, member: str) -> MessageMeta:
    """Message i as the sidebar's messages.get / threads.get metadata shows it."""
    item = _input(specs, index, member)
    headers = {
        "from": item.sender,
        "to": item.to,
        "cc": item.cc,
        "date": item.date,
        "subject": item.subject,
        "message-id": item.message_id,
        "references": item.references,
        "in-reply-to": item.in_reply_to,
    }
    return MessageMeta(
        id=item.gmail_id,
        thread_id=item.gmail_thread_id,
        headers={k: v for k, v in headers.items() if v},
        label_ids=("INBOX",),
    )


def _thread_reader(specs: list[Spec], member: str, fail: bool):  # type: ignore[no-untyped-def]
    """The member's mailbox answering threads.get: every message of the thread, in order."""

    def read(thread_id: str) -> list[MessageMeta]:
        if fail:
            raise GmailError("Gmail answered 500")
        return [
            _meta(specs, i, member)
            for i in range(len(specs))
            if f"{member}-{_root(specs, i)}" == thread_id
        ]

    return read


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=worlds(), ops=operations)
def test_incremental_stats_always_equal_a_rebuild(
    crm: Crm, world_records: dict[str, Record], specs: list[Spec], ops: list[tuple]
) -> None:
    db, workspace_id = crm.db, crm.member.workspace_id
    members = {
        m.email: m
        for m in db.execute(select(Member).where(Member.workspace_id == workspace_id)).scalars()
    }
    savepoint = db.begin_nested()
    try:
        alive = dict(world_records)
        sends = 0
        for op in ops:
            if op[0] == "ingest":
                _kind, who, indices = op
                wanted = [_input(specs, i, who) for i in indices if i < len(specs)]
                ingest(crm, wanted, members[who])
            elif op[0] in ("link", "unlink"):
                _kind, who, name, index = op
                record = alive.get(name)
                if record is None or index >= len(specs):
                    continue
                thread = f"{who}-{_root(specs, index)}"
                if op[0] == "link":
                    link_thread(db, members[who], record, thread, "")
                else:
                    unlink_thread(db, record, thread, members[who])
            elif op[0] == "open":
                _kind, who, index, fail = op
                if index < len(specs):
                    meta = _meta(specs, index, who)
                    reader = _thread_reader(specs, who, fail)
                    record_open(db, members[who], meta, reader, clock=clock)
            elif op[0] == "address":
                _kind, name, email = op
                record = alive.get(name)
                if record is not None:
                    current = load_values(db, record, folder_fields(db, record.folder_id))
                    emails = [*current.get("emails", []), email]
                    save_record(db, crm.member, crm.folders["contacts"], {"emails": emails}, record)
            elif op[0] == "send":
                _kind, who, person, day = op
                sends += 1
                sent = mail(f"send{sends}@x.test", who, person, thread=f"{who}-s{sends}", day=day)
                ingest(crm, [replace(sent, label_ids=("SENT",))], members[who])
            else:
                _kind, (first, second), flip = op
                survivor, other = (second, first) if flip else (first, second)
                if survivor in alive and other in alive:
                    merge_records(db, crm.member, alive[survivor], [alive.pop(other)])
            db.flush()
        incremental = stored_stats(db, workspace_id)
        fields_before = stats_fields_of(db, workspace_id)
        assert recompute_stats(db, workspace_id) == 0
        assert stored_stats(db, workspace_id) == incremental
        assert stats_fields_of(db, workspace_id) == fields_before
        # Every message from both mailboxes: still equal, and recording it all again is a no-op.
        for who in MEMBERS:
            ingest(crm, [_input(specs, i, who) for i in range(len(specs))], members[who])
        everything = stored_stats(db, workspace_id)
        assert recompute_stats(db, workspace_id) == 0
        for who in MEMBERS:
            again = ingest(crm, [_input(specs, i, who) for i in range(len(specs))], members[who])
            assert again.recorded == 0 and again.links == []
        assert stored_stats(db, workspace_id) == everything
    finally:
        savepoint.rollback()
        db.expire_all()
