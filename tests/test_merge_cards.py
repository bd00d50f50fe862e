"""Duplicates in the sidebar: the warning before creating one, finding them, merging them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.cards import hygiene as hygiene_cards
from addon.cards.widgets import Actions
from addon.crm.models import (
    AuditEntry,
    MergedRecord,
    Note,
    Record,
    RecordEmail,
    RecordPhone,
    RecordRelation,
    ThreadLink,
)
from addon.crm.records import add_note, load_detail, load_values
from addon.crm.workspaces import folder_fields
from tests.cardcheck import BASE_URL, check_card
from tests.cardread import actions_in, card_of, navigations, texts
from tests.crmdata import Crm
from tests.dbstate import row_counts
from tests.google_fakes import AddonClient
from tests.test_view_cards import inputs, member_client, named, params_of


def record_count(db: Session) -> int:
    """How many records exist in all workspaces."""
    return int(db.execute(select(func.count()).select_from(Record)).scalar_one())


def created_id(data: dict[str, Any]) -> int:
    """The id of the record whose card a create answered with."""
    card = card_of(data)
    assert card["name"].startswith("record-"), texts(card)
    return int(card["name"].removeprefix("record-"))


# --------------------------------------------------------------------------- warning on create


def test_duplicate_email_warns_then_create_anyway_saves(
    addon: AddonClient, crm: Crm, db: Session
) -> None:
    ann = crm.save("contacts", first_name="Ann", last_name="Archer", emails="ann@globex.com")
    before = row_counts(db)
    typed = {
        "first_name": "Annie",
        "last_name": "A.",
        "emails": "  ANN@Globex.COM ",
        "job_title": "CEO",
    }
    data = addon.action(
        "create_record",
        parameters={"folder": "contacts", "thread_id": "t-1", "subject": "Hello"},
        form=typed,
    )
    assert navigations(data) == ["updateCard"]
    warning = card_of(data)
    assert warning["name"] == "duplicate-warning"
    text = texts(warning)
    assert "Ann Archer" in text and "Same email ann@globex.com" in text
    assert "Nothing was saved" in text
    assert {a["record_id"] for a in named(warning, "open_record")} == {str(ann.id)}
    # Nothing was written: no record, no audit entry, no new company.
    assert row_counts(db) == before

    (anyway,) = named(warning, "create_record")
    assert anyway["force"] == "1" and anyway["thread_id"] == "t-1"
    assert json.loads(anyway["values"]) == {k: [v] for k, v in typed.items()}
    created = addon.action("create_record", parameters=params_of(anyway))
    new_id = created_id(created)
    assert new_id != ann.id
    assert created["renderActions"]["action"]["notification"]["text"] == "Contact saved"
    record = db.get(Record, new_id)
    assert record is not None and record.title == "Annie A."
    emails = db.execute(select(RecordEmail.record_id).where(RecordEmail.email == "ann@globex.com"))
    assert sorted(emails.scalars()) == sorted([ann.id, new_id])
    # The context came along: the new card offers to link the open thread.
    assert any(a.get("thread_id") == "t-1" for a in named(card_of(created), "link_thread"))


def test_open_existing_opens_the_match(addon: AddonClient, crm: Crm, db: Session) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    warning = card_of(
        addon.action(
            "create_record",
            parameters={"folder": "contacts"},
            form={"first_name": "Ann", "emails": "ann@globex.com"},
        )
    )
    opened = addon.action("open_record", parameters=params_of(named(warning, "open_record")[0]))
    assert navigations(opened) == ["pushCard"]
    assert card_of(opened)["name"] == f"record-{ann.id}"
    assert record_count(db) == 1


def test_edit_details_brings_back_the_typed_form(addon: AddonClient, crm: Crm) -> None:
    crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    warning = card_of(
        addon.action(
            "create_record",
            parameters={"folder": "contacts", "subject": "Hi"},
            form={"first_name": "Annie", "emails": "ann@globex.com", "phones": ["+1 650 253 0000"]},
        )
    )
    (edit,) = named(warning, "duplicate_edit")
    form = card_of(addon.action("duplicate_edit", parameters=params_of(edit)))
    assert form["name"] == "record-form"
    typed = inputs(form)
    assert typed["first_name"] == "Annie" and typed["emails"] == "ann@globex.com"
    assert typed["phones"] == "+1 650 253 0000"
    (save,) = [a for a in actions_in(form) if a["name"] == "create_record"]
    assert save["subject"] == "Hi" and "force" not in save


@pytest.mark.parametrize(
    ("existing", "typed", "why"),
    [
        (
            {"name": "Globex, Inc.", "domain": "globex.com"},
            {"name": "Globex Logistics", "domain": "https://www.mail.globex.com/about"},
            "Same domain globex.com",
        ),
        ({"name": "Globex, Inc."}, {"name": "GLOBEX corp"}, "Same name “Globex, Inc.”"),
    ],
)
def test_companies_match_by_domain_or_name(
    addon: AddonClient,
    crm: Crm,
    db: Session,
    existing: dict[str, str],
    typed: dict[str, str],
    why: str,
) -> None:
    crm.save("companies", **existing)
    before = record_count(db)
    warning = card_of(addon.action("create_record", parameters={"folder": "companies"}, form=typed))
    assert warning["name"] == "duplicate-warning" and why in texts(warning)
    assert record_count(db) == before


def test_phones_match_in_any_format(addon: AddonClient, crm: Crm, db: Session) -> None:
    bob = crm.save("contacts", first_name="Bob", phones="+1 650 253 0000")
    warning = card_of(
        addon.action(
            "create_record",
            parameters={"folder": "contacts"},
            form={"first_name": "Robert", "phones": "(650) 253-0000"},
        )
    )
    assert "Same phone +16502530000" in texts(warning)
    assert named(warning, "open_record")[0]["record_id"] == str(bob.id)
    assert db.execute(select(func.count()).select_from(RecordPhone)).scalar_one() == 1


def test_no_warning_without_a_match_or_for_deals(addon: AddonClient, crm: Crm, db: Session) -> None:
    crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    crm.save("deals", name="Renewal")
    created_id(
        addon.action(
            "create_record",
            parameters={"folder": "contacts"},
            form={"first_name": "Ann", "emails": "ann@initech.com"},
        )
    )
    created_id(
        addon.action("create_record", parameters={"folder": "deals"}, form={"name": "Renewal"})
    )
    assert record_count(db) == 4


def test_invalid_input_is_reported_before_duplicates(
    addon: AddonClient, crm: Crm, db: Session
) -> None:
    crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    before = row_counts(db)
    card = card_of(
        addon.action(
            "create_record",
            parameters={"folder": "contacts"},
            form={"first_name": "Ann", "emails": "ann@globex.com, not-an-email"},
        )
    )
    assert card["name"] == "record-form" and "not a valid email" in texts(card)
    assert row_counts(db) == before


def test_create_anyway_with_an_unreadable_form_saves_nothing(
    addon: AddonClient, crm: Crm, db: Session
) -> None:
    before = row_counts(db)
    for values in ("{not json", json.dumps({"first_name": "Ann"}), json.dumps([1, 2])):
        card = card_of(
            addon.action(
                "create_record",
                parameters={"folder": "contacts", "force": "1", "values": values},
            )
        )
        assert card["name"] == "error" and "could not be read back" in texts(card)
    assert row_counts(db) == before


def test_another_workspace_does_not_see_our_duplicates(
    addon: AddonClient, other_tenant: AddonClient, crm: Crm
) -> None:
    crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    data = other_tenant.action(
        "create_record",
        parameters={"folder": "contacts"},
        form={"first_name": "Ann", "emails": "ann@globex.com"},
    )
    assert card_of(data)["name"].startswith("record-")


# --------------------------------------------------------------------------- merging


@pytest.fixture
def twins(crm: Crm, db: Session) -> dict[str, Record]:
    """Two records of one person, each with threads, notes, deals and views of its own."""
    globex = crm.save("companies", name="Globex", domain="globex.com")
    initech = crm.save("companies", name="Initech", domain="initech.com")
    first = crm.save(
        "contacts",
        first_name="Ann",
        last_name="Archer",
        emails="ann@globex.com",
        phones="+1 650 253 0000",
        job_title="CEO",
        company=f"#{globex.id}",
        lifecycle_stage="customer",
    )
    second = crm.save(
        "contacts",
        first_name="Ann",
        last_name="Archer-Smith",
        emails=["ann@globex.com", "a.archer@gmail.com"],
        phones="+44 20 7946 0000",
        job_title="Founder",
        company=f"#{initech.id}",
        lifecycle_stage="lead",
    )
    deal = crm.save("deals", name="Big deal", contacts=f"#{second.id}")
    crm.link(first, "thread-shared", "Intro")
    crm.link(second, "thread-shared", "Intro")
    crm.link(second, "thread-only-second", "Pricing")
    add_note(db, crm.member, second, "Met at the fair")
    db.flush()
    return {"first": first, "second": second, "deal": deal, "globex": globex, "initech": initech}


def test_merge_end_to_end(
    addon: AddonClient, crm: Crm, db: Session, twins: dict[str, Record]
) -> None:
    first, second = twins["first"], twins["second"]
    first_id, second_id = first.id, second.id  # the merged-away row is gone afterwards
    record_card = card_of(addon.action("open_record", parameters={"record_id": str(first.id)}))
    (finder_action,) = named(record_card, "find_duplicates")
    finder = card_of(addon.action("find_duplicates", parameters=params_of(finder_action)))
    assert finder["name"] == "duplicates"
    assert "Ann Archer-Smith — same email ann@globex.com" in texts(finder)
    (cont,) = named(finder, "merge_form")
    shown = addon.action(
        "merge_form", parameters=params_of(cont), form={"merge_ids": [str(second.id)]}
    )
    assert navigations(shown) == ["updateCard"]
    merge_card = card_of(shown)
    assert merge_card["name"] == "merge"
    typed = inputs(merge_card)
    # Only the fields that disagree are asked; the start record's values are preselected.
    assert typed == {
        "survivor": str(first.id),
        "choice_last_name": str(first.id),
        "choice_job_title": str(first.id),
        "choice_company": str(first.id),
        "choice_lifecycle_stage": str(first.id),
    }
    text = texts(merge_card)
    assert "Archer-Smith" in text and "Founder" in text and "Initech" in text
    assert "ann@globex.com, a.archer@gmail.com" in text and "Emails and phones" in text

    (merge_button,) = named(merge_card, "merge_records")
    assert merge_button["merge_ids"] == str(second.id)
    done = addon.action(
        "merge_records",
        parameters=params_of(merge_button),
        form={
            "survivor": str(first.id),
            "choice_last_name": str(second.id),
            "choice_job_title": str(first.id),
            "choice_company": str(second.id),
            "choice_lifecycle_stage": str(second.id),
        },
    )
    assert navigations(done) == ["pop", "updateCard"]
    assert done["renderActions"]["action"]["notification"]["text"] == (
        "Merged 2 records into Ann Archer-Smith"
    )
    assert card_of(done)["name"] == f"record-{first.id}"

    db.expire_all()
    assert db.get(Record, second_id) is None
    survivor = db.get(Record, first_id)
    assert survivor is not None
    values = load_values(db, survivor, folder_fields(db, survivor.folder_id))
    assert values["last_name"] == "Archer-Smith" and values["job_title"] == "CEO"
    assert values["lifecycle_stage"] == "lead"
    assert values["emails"] == ["ann@globex.com", "a.archer@gmail.com"]
    assert values["phones"] == ["+16502530000", "+442079460000"]
    company = load_detail(db, survivor, full=False).links["company"]
    assert [c.id for c in company] == [twins["initech"].id]
    threads = db.execute(select(ThreadLink.thread_id).where(ThreadLink.record_id == first_id))
    assert sorted(threads.scalars()) == ["thread-only-second", "thread-shared"]
    notes = db.execute(select(Note.body).where(Note.record_id == first_id)).scalars().all()
    assert notes == ["Met at the fair"]
    deal_links = db.execute(
        select(RecordRelation.to_record_id).where(RecordRelation.from_record_id == twins["deal"].id)
    ).scalars()
    assert list(deal_links) == [first_id]
    audit = db.execute(
        select(AuditEntry).where(AuditEntry.action == "merge", AuditEntry.record_id == first_id)
    ).scalar_one()
    assert audit.after == {"survivor": first_id, "merged": [second_id]}
    assert db.get(MergedRecord, second_id) is not None
    # The merged-away id opens the survivor.
    reopened = addon.action("open_record", parameters={"record_id": str(second_id)})
    assert card_of(reopened)["name"] == f"record-{first_id}"


def test_the_other_record_can_be_kept(
    addon: AddonClient, db: Session, twins: dict[str, Record]
) -> None:
    first_id, second_id = twins["first"].id, twins["second"].id
    done = addon.action(
        "merge_records",
        parameters={"record_id": str(first_id), "merge_ids": str(second_id)},
        form={"survivor": str(second_id)},
    )
    assert card_of(done)["name"] == f"record-{second_id}"
    db.expire_all()
    assert db.get(Record, first_id) is None
    kept = db.get(Record, second_id)
    assert kept is not None
    # Unasked fields keep the kept record's values.
    values = load_values(db, kept, folder_fields(db, kept.folder_id))
    assert values["job_title"] == "Founder"


def test_finder_search_offers_other_records_and_keeps_ticks(
    addon: AddonClient, crm: Crm, twins: dict[str, Record]
) -> None:
    first = twins["first"]
    other = crm.save("contacts", first_name="Anne", last_name="Archer", emails="anne@example.org")
    crm.save("companies", name="Anne's Bakery")
    searched = addon.action(
        "find_duplicates",
        parameters={"record_id": str(first.id), "nav": "update"},
        form={"merge_query": "anne", "merge_ids": [str(twins["second"].id)]},
    )
    assert navigations(searched) == ["updateCard"]
    card = card_of(searched)
    (boxes,) = [
        w["selectionInput"]
        for s in card["sections"]
        for w in s["widgets"]
        if w.get("selectionInput", {}).get("name") == "merge_ids"
    ]
    offered = {i["value"]: i["selected"] for i in boxes["items"]}
    # Same folder only, never the record itself; the earlier tick survives the search.
    assert offered == {str(twins["second"].id): True, str(other.id): False}
    assert inputs(card)["merge_query"] == "anne"


def test_merge_form_needs_a_ticked_record(addon: AddonClient, twins: dict[str, Record]) -> None:
    first = twins["first"]
    data = addon.action("merge_form", parameters={"record_id": str(first.id)})
    card = card_of(data)
    assert card["name"] == "duplicates" and "Tick at least one record" in texts(card)
    # Ticking only the record itself (or its merged-away alias) is the same as nothing.
    card = card_of(
        addon.action(
            "merge_form",
            parameters={"record_id": str(first.id)},
            form={"merge_ids": [str(first.id)]},
        )
    )
    assert "Tick at least one record" in texts(card)


def test_records_of_another_folder_are_refused(
    addon: AddonClient, db: Session, twins: dict[str, Record]
) -> None:
    first, globex = twins["first"], twins["globex"]
    before = row_counts(db)
    card = card_of(
        addon.action(
            "merge_form",
            parameters={"record_id": str(first.id)},
            form={"merge_ids": [str(globex.id)]},
        )
    )
    assert card["name"] == "error" and "Only records of the same folder can be merged." in texts(
        card
    )
    card = card_of(
        addon.action(
            "merge_records",
            parameters={"record_id": str(first.id), "merge_ids": str(globex.id)},
            form={"survivor": str(first.id)},
        )
    )
    assert "Only records of the same folder can be merged." in texts(card)
    assert row_counts(db) == before


def test_a_value_from_outside_the_merge_is_refused(
    addon: AddonClient, db: Session, twins: dict[str, Record]
) -> None:
    first, second, deal = twins["first"], twins["second"], twins["deal"]
    before = row_counts(db)
    data = addon.action(
        "merge_records",
        parameters={"record_id": str(first.id), "merge_ids": str(second.id)},
        form={"survivor": str(first.id), "choice_job_title": str(deal.id)},
    )
    card = card_of(data)
    assert card["name"] == "merge"
    assert "Choose the value of one of the merged records. Nothing was merged." in texts(card)
    assert row_counts(db) == before
    # A survivor that is not one of the records is refused too.
    card = card_of(
        addon.action(
            "merge_records",
            parameters={"record_id": str(first.id), "merge_ids": str(second.id)},
            form={"survivor": str(deal.id)},
        )
    )
    assert "Keep one of the merged records" in texts(card)
    assert row_counts(db) == before


def test_merging_needs_the_merge_permission(
    addon: AddonClient, db: Session, twins: dict[str, Record]
) -> None:
    first, second = twins["first"], twins["second"]
    admin_card = card_of(addon.action("open_record", parameters={"record_id": str(first.id)}))
    assert named(admin_card, "find_duplicates")
    rep = member_client(addon, db, "bob@acme.test", "rep")
    rep_card = card_of(rep.action("open_record", parameters={"record_id": str(first.id)}))
    assert not named(rep_card, "find_duplicates")
    before = row_counts(db)
    for name, form in (
        ("find_duplicates", {}),
        ("merge_form", {"merge_ids": [str(second.id)]}),
        ("merge_records", {"survivor": str(first.id)}),
    ):
        data = rep.action(
            name, parameters={"record_id": str(first.id), "merge_ids": str(second.id)}, form=form
        )
        assert "does not allow you to merge records" in texts(card_of(data))
    assert row_counts(db) == before


def test_another_workspace_cannot_merge_our_records(
    addon: AddonClient, other_tenant: AddonClient, db: Session, twins: dict[str, Record]
) -> None:
    first, second = twins["first"], twins["second"]
    spy_id = created_id(
        other_tenant.action(
            "create_record",
            parameters={"folder": "contacts"},
            form={"first_name": "Spy", "emails": "spy@rival.test"},
        )
    )
    before = row_counts(db)
    # Their records named from our side, and ours named from theirs, look missing.
    addon.action(
        "merge_form",
        parameters={"record_id": str(first.id)},
        form={"merge_ids": [str(spy_id)]},
        expect=403,
    )
    addon.action(
        "merge_records",
        parameters={"record_id": str(first.id), "merge_ids": f"{second.id},{spy_id}"},
        form={"survivor": str(first.id)},
        expect=403,
    )
    other_tenant.action("find_duplicates", parameters={"record_id": str(first.id)}, expect=403)
    other_tenant.action(
        "merge_records",
        parameters={"record_id": str(spy_id), "merge_ids": str(first.id)},
        form={"survivor": str(spy_id)},
        expect=403,
    )
    assert row_counts(db) == before


def test_merge_card_built_directly_passes_the_contract(
    crm: Crm, db: Session, twins: dict[str, Record]
) -> None:
    details = [
        load_detail(db, twins["first"], full=False),
        load_detail(db, twins["second"], full=False),
    ]
    choices = hygiene_cards.merge_choices(details, twins["second"].id)
    # The kept record's values come first and are preselected.
    assert {c.key: c.selected for c in choices} == {
        k: twins["second"].id for k in ("last_name", "job_title", "company", "lifecycle_stage")
    }
    card = hygiene_cards.merge_card(
        Actions(BASE_URL),
        details,
        choices,
        start_id=twins["first"].id,
        survivor_id=twins["second"].id,
        error="something went wrong",
    )
    check_card(card)
    finder = hygiene_cards.duplicates_card(Actions(BASE_URL), twins["first"], [], query="zzz")
    check_card(finder)
    assert "No other contacts match “zzz”" in texts(finder)
