"""Records through the sidebar: create, validate, edit, link threads, notes, search, roles."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.crm.models import (
    FieldValue,
    Member,
    Note,
    Record,
    RecordEmail,
    RecordRelation,
    ThreadLink,
)
from tests.cardread import actions_in, texts
from tests.dbstate import row_counts
from tests.google_fakes import AddonClient


def card_of(data: dict[str, Any]) -> dict[str, Any]:
    """The first card of a callback or trigger response."""
    action = data["renderActions"]["action"] if "renderActions" in data else data["action"]
    for navigation in action["navigations"]:
        for key in ("pushCard", "updateCard"):
            if key in navigation:
                return dict(navigation[key])
    raise AssertionError("no card in response")


def create_contact(addon: AddonClient, **form: Any) -> Record:
    """Create a contact through the sidebar and return it."""
    data = addon.action("create_record", parameters={"folder": "contacts"}, form=form)
    card = card_of(data)
    assert card["name"].startswith("record-"), texts(card)
    return _record(addon, int(card["name"].removeprefix("record-")))


def _record(addon: AddonClient, record_id: int) -> Record:
    session = addon.client.application.extensions["addon.sessionmaker"]()
    record = session.get(Record, record_id)
    assert record is not None
    return record


def test_create_contact_with_new_company(addon: AddonClient, db: Session) -> None:
    record = create_contact(
        addon,
        first_name="  Ann  ",
        last_name="Lee",
        emails="Ann.Lee@Example-Corp.COM, ann@other.org",
        company="Example Corp",
        lifecycle_stage="lead",
    )
    assert record.title == "Ann Lee"
    emails = (
        db.execute(select(RecordEmail.email).where(RecordEmail.record_id == record.id))
        .scalars()
        .all()
    )
    assert sorted(emails) == ["ann.lee@example-corp.com", "ann@other.org"]
    company = db.execute(
        select(Record)
        .join(RecordRelation, RecordRelation.to_record_id == Record.id)
        .where(RecordRelation.from_record_id == record.id)
    ).scalar_one()
    assert company.title == "Example Corp"
    assert company.folder.key == "companies"


def test_second_contact_reuses_company_by_name(addon: AddonClient, db: Session) -> None:
    first = create_contact(addon, first_name="A", emails="a@globex.io", company="Globex")
    second = create_contact(addon, first_name="B", emails="b@globex.io", company="globex")
    targets = (
        db.execute(
            select(RecordRelation.to_record_id).where(
                RecordRelation.from_record_id.in_([first.id, second.id])
            )
        )
        .scalars()
        .all()
    )
    assert len(set(targets)) == 1


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"first_name": "Ann", "emails": "not-an-email"}, "Emails", "not a valid email"),
        (
            {"first_name": "", "last_name": "", "emails": ""},
            "First name",
            "enter a name or an email",
        ),
        ({"first_name": "Ann", "lifecycle_stage": "royalty"}, "Lifecycle stage", "not one of"),
        ({"first_name": "Ann", "phones": "call me"}, "Phones", "not a phone number"),
        ({"first_name": "Ann", "owner": "#999999"}, "Owner", "not a member"),
        ({"first_name": "x" * 301}, "First name", "longer than 300"),
    ],
)
def test_invalid_contact_shows_form_again_and_saves_nothing(
    addon: AddonClient, db: Session, form: dict[str, str], field: str, message: str
) -> None:
    addon.post("/homepage")  # the workspace exists before we count
    before = row_counts(db)
    data = addon.action("create_record", parameters={"folder": "contacts"}, form=form)
    navigation = data["renderActions"]["action"]["navigations"][0]
    assert "updateCard" in navigation, "errors answer with the same form (updateCard)"
    shown = texts(navigation["updateCard"])
    assert "Nothing was saved" in shown
    assert field in shown and message in shown
    assert row_counts(db) == before


def test_required_company_name(addon: AddonClient, db: Session) -> None:
    addon.post("/homepage")
    before = row_counts(db)
    data = addon.action(
        "create_record", parameters={"folder": "companies"}, form={"name": "", "domain": "acme.com"}
    )
    assert "Name is required" in texts(card_of(data))
    assert row_counts(db) == before


def test_invalid_domain_and_amount(addon: AddonClient, db: Session) -> None:
    addon.post("/homepage")
    before = row_counts(db)
    data = addon.action(
        "create_record", parameters={"folder": "deals"}, form={"name": "Big", "amount": "lots XYZ"}
    )
    assert "Amount" in texts(card_of(data))
    data = addon.action(
        "create_record", parameters={"folder": "companies"}, form={"name": "X", "domain": "nodot"}
    )
    assert "is not a domain" in texts(card_of(data))
    assert row_counts(db) == before


def test_unknown_linked_record_in_form(addon: AddonClient, db: Session) -> None:
    addon.post("/homepage")
    before = row_counts(db)
    data = addon.action(
        "create_record", parameters={"folder": "deals"}, form={"name": "Deal", "company": "#424242"}
    )
    assert "record #424242 was not found" in texts(card_of(data))
    assert row_counts(db) == before


def test_unknown_folder_is_refused(addon: AddonClient, db: Session) -> None:
    addon.post("/homepage")
    before = row_counts(db)
    data = addon.action(
        "create_record", parameters={"folder": "spaceships"}, form={"name": "x"}, expect=403
    )
    assert "error" in data
    assert row_counts(db) == before


def test_edit_record_updates_only_submitted_fields(addon: AddonClient, db: Session) -> None:
    record = create_contact(
        addon, first_name="Ann", last_name="Lee", emails="ann@corp.com", job_title="CTO"
    )
    form = card_of(addon.action("edit_record", parameters={"record_id": str(record.id)}))
    assert "CTO" in texts(form)
    data = addon.action(
        "update_record",
        parameters={"record_id": str(record.id)},
        form={"first_name": "Anne", "job_title": "CEO"},
    )
    navigations = data["renderActions"]["action"]["navigations"]
    assert navigations[0] == {"pop": True}
    shown = texts(navigations[1]["updateCard"])
    assert "Anne Lee" in shown and "CEO" in shown and "ann@corp.com" in shown


def test_edit_with_bad_input_keeps_old_values(addon: AddonClient, db: Session) -> None:
    record = create_contact(addon, first_name="Ann", emails="ann@corp.com")
    before = row_counts(db)
    data = addon.action(
        "update_record",
        parameters={"record_id": str(record.id)},
        form={"emails": "broken@", "first_name": "Zed"},
    )
    assert "updateCard" in data["renderActions"]["action"]["navigations"][0]
    assert row_counts(db) == before
    db.expire_all()
    assert db.get(Record, record.id).title == "Ann"  # type: ignore[union-attr]


def test_record_card_shows_everything(addon: AddonClient, db: Session) -> None:
    contact = create_contact(
        addon, first_name="Ann", emails="ann@corp.com", company="Corp", phones="+33 1 23 45 67 89"
    )
    addon.action(
        "create_note", parameters={"record_id": str(contact.id)}, form={"body": "Met at the fair"}
    )
    addon.action(
        "link_thread",
        parameters={"record_id": str(contact.id), "thread_id": "t-1", "subject": "Hello"},
    )
    deal = addon.action(
        "create_record",
        parameters={"folder": "deals", "link_to": str(contact.id)},
        form={"name": "Pilot", "amount": "1200,5 EUR", "stage": "proposal"},
    )
    assert "1,200.50 EUR" in texts(card_of(deal))
    card = card_of(addon.action("open_record", parameters={"record_id": str(contact.id)}))
    shown = texts(card)
    for expected in (
        "Ann",
        "ann@corp.com",
        "Corp",
        "+33 1 23 45 67 89",
        "Met at the fair",
        "Hello",
        "Pilot",
    ):
        assert expected in shown
    # Deal links back to the contact and to nothing else.
    deal_id = int(card_of(deal)["name"].removeprefix("record-"))
    deal_card = card_of(addon.action("open_record", parameters={"record_id": str(deal_id)}))
    assert "Ann" in texts(deal_card)


def test_link_thread_twice_does_nothing_new_and_unlink(addon: AddonClient, db: Session) -> None:
    record = create_contact(addon, first_name="Ann", emails="ann@corp.com")
    params = {"record_id": str(record.id), "thread_id": "thread-9", "subject": "Quote"}
    first = addon.action("link_thread", parameters=params)
    assert first["stateChanged"] is True
    second = addon.action("link_thread", parameters=params)
    assert second["stateChanged"] is False
    assert "already linked" in second["renderActions"]["action"]["notification"]["text"]
    assert (
        db.execute(
            select(func.count()).select_from(ThreadLink).where(ThreadLink.record_id == record.id)
        ).scalar_one()
        == 1
    )
    shown = card_of(first)
    assert any(a["name"] == "unlink_thread" for a in actions_in(shown))
    addon.action("unlink_thread", parameters={"record_id": str(record.id), "thread_id": "thread-9"})
    assert (
        db.execute(
            select(func.count()).select_from(ThreadLink).where(ThreadLink.record_id == record.id)
        ).scalar_one()
        == 0
    )


def test_link_without_thread_is_refused(addon: AddonClient, db: Session) -> None:
    record = create_contact(addon, first_name="Ann", emails="ann@corp.com")
    data = addon.action("link_thread", parameters={"record_id": str(record.id)})
    assert "no email thread" in data["renderActions"]["action"]["notification"]["text"].lower()
    assert db.execute(select(func.count()).select_from(ThreadLink)).scalar_one() == 0


def test_link_picker_searches_any_folder(addon: AddonClient) -> None:
    create_contact(addon, first_name="Ann", emails="ann@corp.com", company="Annex Ltd")
    picker = card_of(addon.action("link_search", parameters={"thread_id": "t-2", "subject": "Hi"}))
    assert picker["name"] == "link-picker"
    data = addon.action(
        "link_search", parameters={"thread_id": "t-2", "subject": "Hi"}, form={"query": "ann"}
    )
    assert "updateCard" in data["renderActions"]["action"]["navigations"][0]
    found = texts(card_of(data))
    assert "Ann" in found and "Annex Ltd" in found
    links = [a for a in actions_in(card_of(data)) if a["name"] == "link_thread"]
    assert len(links) == 2 and all(a["thread_id"] == "t-2" for a in links)


def test_notes(addon: AddonClient, db: Session) -> None:
    record = create_contact(addon, first_name="Ann", emails="ann@corp.com")
    form = card_of(addon.action("new_note", parameters={"record_id": str(record.id)}))
    assert form["name"] == "note-form"
    empty = addon.action(
        "create_note", parameters={"record_id": str(record.id)}, form={"body": "   "}
    )
    assert "updateCard" in empty["renderActions"]["action"]["navigations"][0]
    assert db.execute(select(func.count()).select_from(Note)).scalar_one() == 0
    addon.action(
        "create_note", parameters={"record_id": str(record.id)}, form={"body": "<b>bold</b> claim"}
    )
    card = card_of(addon.action("open_record", parameters={"record_id": str(record.id)}))
    assert "&lt;b&gt;bold&lt;/b&gt; claim" in texts(card), "user text is escaped on cards"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ann", "Ann Lee"),
        ("ANN LEE", "Ann Lee"),
        ("ann@corp.com", "Ann Lee"),
        ("corp.com", "Ann Lee"),
        ("Corpo", "Corporate Inc"),
        ("Corporate", "Ann Lee"),
        ("zzz", None),
    ],
)
def test_homepage_search(addon: AddonClient, query: str, expected: str | None) -> None:
    create_contact(
        addon, first_name="Ann", last_name="Lee", emails="ann@corp.com", company="Corporate Inc"
    )
    card = card_of(addon.action("search", form={"query": query}))
    shown = texts(card)
    if expected is None:
        assert "No records match" in shown
    else:
        assert expected in shown


def test_homepage_recent_and_created(addon: AddonClient) -> None:
    record = create_contact(addon, first_name="Ann", emails="ann@corp.com")
    addon.action("open_record", parameters={"record_id": str(record.id)})
    card = card_of(addon.post("/homepage"))
    sections = {
        s.get("header"): texts({"header": {"title": ""}, "sections": [s]}) for s in card["sections"]
    }
    assert "Ann" in sections["Recently viewed"]
    assert "Ann" in sections["Recently created"]
    creators = [a for a in actions_in(card) if a["name"] == "new_record"]
    assert {a["folder"] for a in creators} == {"contacts", "companies", "deals"}


def test_new_record_forms_for_each_folder(addon: AddonClient) -> None:
    for folder in ("contacts", "companies", "deals"):
        form = card_of(addon.action("new_record", parameters={"folder": folder}))
        assert form["name"] == "record-form"
        assert form["fixedFooter"]["primaryButton"]["text"] == "Save"


def test_date_input_is_stored_as_iso_date(addon: AddonClient, db: Session) -> None:
    addon.post("/homepage")
    data = addon.action(
        "create_record",
        parameters={"folder": "deals"},
        form={"name": "Dated", "close_date": {"dateInput": {"msSinceEpoch": "1767225600000"}}},
    )
    deal_id = int(card_of(data)["name"].removeprefix("record-"))
    values = (
        db.execute(select(FieldValue.value).where(FieldValue.record_id == deal_id)).scalars().all()
    )
    assert "2026-01-01" in values


def test_viewer_cannot_create_and_gets_a_clear_card(addon: AddonClient, db: Session) -> None:
    addon.post("/homepage")  # rep@acme.test becomes the admin
    viewer = AddonClient(addon.client, addon.tokens, user="viewer@acme.test", hd="acme.test")
    viewer.post("/homepage")
    member = db.execute(select(Member).where(Member.email == "viewer@acme.test")).scalar_one()
    member.role = "viewer"
    db.flush()
    before = row_counts(db)
    data = viewer.action(
        "create_record", parameters={"folder": "contacts"}, form={"first_name": "Nope"}
    )
    assert "does not allow" in texts(card_of(data))
    assert row_counts(db) == before


def test_unknown_action_is_404(addon: AddonClient) -> None:
    data = addon.action("launch_rockets", expect=404)
    assert "unknown action" in data["error"]


def test_settings_lists_members(addon: AddonClient) -> None:
    card = card_of(addon.action("settings"))
    assert "rep@acme.test" in texts(card) and "admin" in texts(card)
