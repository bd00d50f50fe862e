"""The ledger on record cards: link reasons, the timeline, stats fields, and the admin button."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.cards.records import record_card
from addon.cards.widgets import Actions
from addon.crm.models import AuditEntry, Note, Record
from addon.crm.records import add_note, load_detail
from addon.crm.timeline import CHANGE, NOTE, THREAD, record_timeline
from addon.crm.views import count_view, list_view, parse_definition
from addon.crm.workspaces import folder_fields
from addon.gmail.fake_server import FakeGmail
from addon.ledger.stats import METRIC_LABELS, ensure_stats_fields
from tests.cardcheck import BASE_URL, check_card
from tests.cardread import actions_in, card_of, texts
from tests.crmdata import Crm
from tests.dbstate import row_counts
from tests.google_fakes import AddonClient
from tests.test_ledger import ANN, REP, ingest, mail
from tests.test_ledger_opens import open_card, three_messages
from tests.test_structure import member_with_role


def record_card_of(addon: AddonClient, record: Record, **extra: str) -> dict[str, object]:
    """Open a record's card through the route."""
    return card_of(addon.action("open_record", parameters={"record_id": str(record.id), **extra}))


def section_named(card: dict[str, object], header: str) -> dict[str, object]:
    sections = [s for s in card["sections"] if s.get("header", "").startswith(header)]  # type: ignore[attr-defined]
    assert len(sections) == 1, [s.get("header") for s in card["sections"]]  # type: ignore[attr-defined]
    return sections[0]  # type: ignore[no-any-return]


def line_texts(section: dict[str, object]) -> list[tuple[str, str, str]]:
    """(top, text, bottom) of each decorated line of a section."""
    return [
        (
            w["decoratedText"].get("topLabel", ""),
            w["decoratedText"]["text"],
            w["decoratedText"].get("bottomLabel", ""),
        )
        for w in section["widgets"]  # type: ignore[attr-defined]
        if "decoratedText" in w
    ]


# ------------------------------------------------------------------------ link reasons


def test_the_record_card_says_why_each_thread_is_linked(
    addon: AddonClient, gmail: FakeGmail, crm: Crm
) -> None:
    globex = crm.save("companies", name="Globex", domain="globex.com")
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    pilot = crm.save("deals", name="Pilot", stage="proposal", contacts=f"#{ann.id}")
    three_messages(gmail, "rep-1", "r")
    open_card(addon, "r3", "rep-1")
    crm.link(ann, "thr-by-hand", "Lunch")
    expected = {
        ann: {"Pilot": "Matched by email address", "Lunch": "Linked by hand"},
        globex: {"Pilot": "Matched by company domain"},
        pilot: {"Pilot": "The only open deal"},
    }
    for record, reasons in expected.items():
        linked = line_texts(section_named(record_card_of(addon, record), "Linked threads"))
        shown = {text: bottom.split(" · ", 1)[1] for _top, text, bottom in linked}
        assert shown == reasons, record.title


# ---------------------------------------------------------------------------- timeline


def test_the_timeline_lists_threads_notes_and_changes_newest_first(
    addon: AddonClient, gmail: FakeGmail, crm: Crm
) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    three_messages(gmail, "rep-1", "r")
    open_card(addon, "r3", "rep-1")
    add_note(crm.db, crm.member, ann, "Called about the pilot")
    crm.db.flush()
    card = record_card_of(addon, ann)
    entries = line_texts(section_named(card, "Timeline"))
    # Now-dated note and creation; the June 2025 thread last.
    assert [text for _top, text, _bottom in entries] == [
        "Called about the pilot",
        "Created Ann (sidebar)",
        "Pilot",
    ]
    top, _text, bottom = entries[2]
    assert top.startswith("Email · ") and "2025" in top
    assert bottom == "3 emails · last received · Matched by email address"
    assert entries[0][0].startswith("Note · ") and entries[0][0].endswith("rep@acme.test")
    assert entries[1][0].startswith("Change · ")
    # The timeline replaces the notes list; the thread keeps its unlink line.
    assert not [s for s in card["sections"] if s.get("header") == "Notes"]


def test_the_timeline_pages_with_more_and_newer(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session
) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    for day in range(1, 13):
        ingest(crm, [mail(f"t{day}@globex.com", ANN, REP, thread=f"t{day}", day=day)])
    # Emails of June 1..12, plus the contact's creation (now): 13 entries, 10 a page.
    first = record_timeline(db, crm.member.workspace_id, ann.id)
    assert (len(first.entries), first.has_more) == (10, True)
    assert first.entries[0].kind == CHANGE
    assert [e.at.day for e in first.entries[1:]] == list(range(12, 3, -1))
    second = record_timeline(db, crm.member.workspace_id, ann.id, page=1)
    assert (len(second.entries), second.has_more) == (3, False)
    assert [e.at.day for e in second.entries] == [3, 2, 1]
    assert {e.kind for e in second.entries} == {THREAD}

    card = record_card_of(addon, ann)
    more = [a for a in actions_in(card) if a["name"] == "record_timeline"]
    assert more == [{"name": "record_timeline", "record_id": str(ann.id), "page": "1"}]
    page_two = card_of(
        addon.action("record_timeline", parameters={"record_id": str(ann.id), "page": "1"})
    )
    timeline = section_named(page_two, "Timeline · page 2")
    assert len(line_texts(timeline)) == 3
    assert [a for a in actions_in(page_two) if a["name"] == "record_timeline"] == [
        {"name": "record_timeline", "record_id": str(ann.id), "page": "0"}
    ]
    # A page past the end shows an empty timeline; nonsense pages read as the first.
    far = card_of(
        addon.action("record_timeline", parameters={"record_id": str(ann.id), "page": "7"})
    )
    assert "Nothing yet" in texts(far)
    odd = card_of(
        addon.action("record_timeline", parameters={"record_id": str(ann.id), "page": "-3"})
    )
    assert section_named(odd, "Timeline")["header"] == "Timeline"


def test_another_workspace_cannot_page_a_records_timeline(
    other_tenant: AddonClient, crm: Crm, db: Session
) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    data = other_tenant.action(
        "record_timeline", parameters={"record_id": str(ann.id), "page": "1"}, expect=403
    )
    assert data == {"error": "record not found in your workspace"}


def test_the_timeline_card_builder_is_pure(crm: Crm, db: Session) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    ingest(crm, [mail("p1@globex.com", ANN, REP, thread="p", day=3)])
    db.add(Note(workspace_id=ann.workspace_id, record_id=ann.id, body="<b>hi</b>"))
    db.flush()
    timeline = record_timeline(db, crm.member.workspace_id, ann.id)
    assert [e.kind for e in timeline.entries] == [NOTE, CHANGE, THREAD]
    detail = load_detail(db, ann)
    before = row_counts(db)
    built = record_card(
        Actions(BASE_URL), detail, timeline=timeline, locale="de", tz="Europe/Berlin"
    )
    assert row_counts(db) == before
    check_card(built)
    assert "&lt;b&gt;hi&lt;/b&gt;" in texts(built)


# ------------------------------------------------------------------------- stats fields


def test_an_admin_adds_the_stats_fields_from_the_folder_card(
    addon: AddonClient, gmail: FakeGmail, crm: Crm, db: Session
) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    three_messages(gmail, "rep-1", "r")
    open_card(addon, "r3", "rep-1")
    contacts = crm.folders["contacts"]
    folder_card = card_of(addon.action("admin_folder", parameters={"folder_id": str(contacts.id)}))
    [button] = [a for a in actions_in(folder_card) if a["name"] == "admin_add_stats_fields"]
    data = addon.action("admin_add_stats_fields", parameters={"folder_id": button["folder_id"]})
    assert data["renderActions"]["action"]["notification"]["text"] == "10 email stats fields added"
    labels = {f.label for f in folder_fields(db, contacts.id) if f.type == "stats"}
    assert labels == set(METRIC_LABELS.values())
    audit = (
        db.execute(select(AuditEntry.summary).where(AuditEntry.action == "field_change"))
        .scalars()
        .all()
    )
    assert audit == ["Added 10 email stats fields to Contacts"]
    again = addon.action("admin_add_stats_fields", parameters={"folder_id": str(contacts.id)})
    assert (
        "already has every email stats field"
        in again["renderActions"]["action"]["notification"]["text"]
    )
    # The record card shows them, filled in from the ledger.
    details = section_named(record_card_of(addon, ann), "Details")
    shown = {top: text for top, text, _bottom in line_texts(details)}
    assert shown["Emails sent"] == "1"
    assert shown["Emails received"] == "2"
    assert shown["Email threads"] == "1"
    assert "2025" in shown["Last email received"]
    # And so does the contextual card (last contacted, days since last reply, threads).
    card = open_card(addon, "r3", "rep-1")
    assert "Days since last reply" in texts(card)
    assert "Email threads" in texts(card)


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_only_admins_add_stats_fields(addon: AddonClient, crm: Crm, db: Session, role: str) -> None:
    client = member_with_role(addon, db, f"{role}@acme.test", role)
    before = row_counts(db)
    card = card_of(
        client.action(
            "admin_add_stats_fields", parameters={"folder_id": str(crm.folders["contacts"].id)}
        )
    )
    assert card["header"]["title"] == "Not allowed"
    assert row_counts(db) == before


def test_no_reply_for_30_days_view(crm: Crm, db: Session) -> None:
    contacts = crm.folders["contacts"]
    ensure_stats_fields(db, contacts)
    today = date(2025, 7, 3)
    # Last replies on June 2, 3 and 4: 31, 30 and 29 days before "today".
    for name, day in (("Old", 2), ("Edge", 3), ("Fresh", 4)):
        email = f"{name.lower()}@globex.com"
        crm.save("contacts", first_name=name, emails=email)
        ingest(crm, [mail(f"{name}@globex.com", f"{name} <{email}>", REP, thread=name, day=day)])
    # Written to but never answered: no reply at all is not "more than 30 days".
    crm.save("contacts", first_name="Silent", emails="silent@globex.com")
    ingest(crm, [mail("s@acme.test", REP, "silent@globex.com", thread="s", day=1)])
    fields = folder_fields(db, contacts.id)

    def no_reply_for(op: str, days: str) -> list[str]:
        condition = {"field": "email_days_since_last_reply", "op": op, "value": days}
        definition = parse_definition(fields, {"conditions": [condition]})
        found = list_view(db, contacts, definition, today=today)
        assert count_view(db, contacts, definition, today=today) == len(found)
        return sorted(r.title for r in found)

    assert no_reply_for("gt", "30") == ["Old"]
    assert no_reply_for("equals", "30") == ["Edge"]
    assert no_reply_for("lt", "30") == ["Fresh"]
