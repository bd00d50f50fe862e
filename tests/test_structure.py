"""Folders and fields: the structure services, type changes, and the admin cards and actions."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.crm.fields import field_type
from addon.crm.models import AuditEntry, FieldDef, FieldValue, Folder, Member, Record, RecordEmail
from addon.crm.records import ValidationError, save_record
from addon.crm.structure import (
    MAX_ACTIVE_FOLDERS,
    StructureError,
    add_field,
    add_folder,
    all_fields,
    change_field_type,
    derive_key,
    list_folders,
    move_field,
    move_folder,
    options_from_inputs,
    rename_field,
    rename_folder,
    set_dropdown_choices,
    set_field_active,
    set_field_required,
    set_folder_active,
)
from addon.crm.workspaces import folder_fields, folders_by_key
from tests.cardread import card_of, navigations, texts
from tests.crmdata import Crm
from tests.dbstate import row_counts
from tests.google_fakes import AddonClient

# ------------------------------------------------------------------------------ helpers


def field_of(db: Session, folder: Folder, key: str) -> FieldDef:
    """A folder's field by key."""
    return db.execute(
        select(FieldDef).where(FieldDef.folder_id == folder.id, FieldDef.key == key)
    ).scalar_one()


def stored(db: Session, record: Record, fdef: FieldDef) -> FieldValue | None:
    """The stored value row of one field of one record."""
    return db.execute(
        select(FieldValue).where(FieldValue.record_id == record.id, FieldValue.field_id == fdef.id)
    ).scalar_one_or_none()


def audits(db: Session, action: str) -> list[AuditEntry]:
    """Audit entries of one action, oldest first."""
    return list(
        db.execute(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        .scalars()
        .all()
    )


def member_with_role(addon: AddonClient, db: Session, email: str, role: str) -> AddonClient:
    """A second member of acme.test with the given role."""
    client = AddonClient(addon.client, addon.tokens, user=email, hd="acme.test")
    client.post("/homepage")
    member = db.execute(select(Member).where(Member.email == email)).scalar_one()
    member.role = role
    db.flush()
    return client


# ------------------------------------------------------------------------------ folders


def test_add_folder_derives_key_and_gets_a_required_name_field(crm: Crm, db: Session) -> None:
    folder = add_folder(db, crm.member, "Support tickets")
    assert (folder.key, folder.name, folder.singular) == (
        "support_tickets",
        "Support tickets",
        "Support ticket",
    )
    assert folder.position == max(f.position for f in crm.folders.values()) + 1
    (name,) = all_fields(db, folder)
    assert (name.key, name.type, name.required) == ("name", "text", True)
    record = save_record(db, crm.member, folder, {"name": ["Printer on fire"]})
    assert record.title == "Printer on fire"
    entry = audits(db, "folder_change")[-1]
    assert entry.folder_id == folder.id and entry.after and entry.after["key"] == "support_tickets"
    assert entry.before is None


def test_folder_names_are_unique_and_keys_never_collide(crm: Crm, db: Session) -> None:
    with pytest.raises(StructureError, match="already exists"):
        add_folder(db, crm.member, " contacts ")
    first = add_folder(db, crm.member, "Partners", "Partner")
    rename_folder(db, crm.member, first, "Resellers", "Reseller")
    second = add_folder(db, crm.member, "Partners!")
    assert first.key == "partners" and second.key == "partners_2"
    with pytest.raises(StructureError, match="Enter a folder name"):
        add_folder(db, crm.member, "   ")
    with pytest.raises(StructureError, match="longer than 100"):
        add_folder(db, crm.member, "x" * 101)
    assert derive_key("2nd phone", set(), "field") == "f_2nd_phone"
    assert derive_key("Société générale", set(), "field") == "societe_generale"
    assert derive_key("日本", set(), "field") == "field"


def test_rename_keeps_the_key_and_is_audited(crm: Crm, db: Session) -> None:
    folder = add_folder(db, crm.member, "Partners")
    add_folder(db, crm.member, "Vendors")
    rename_folder(db, crm.member, folder, "Channel partners", "Channel partner")
    assert (folder.key, folder.name, folder.singular) == (
        "partners",
        "Channel partners",
        "Channel partner",
    )
    with pytest.raises(StructureError, match="Vendors"):
        rename_folder(db, crm.member, folder, "vendors")
    entry = audits(db, "folder_change")[-1]
    assert entry.before and entry.before["name"] == "Partners"
    assert entry.after and entry.after["name"] == "Channel partners"


def test_move_folder_reorders(crm: Crm, db: Session) -> None:
    deals = crm.folders["deals"]
    assert move_folder(db, crm.member, deals, -1)
    assert [f.key for f in list_folders(db, crm.member.workspace_id)] == [
        "contacts",
        "deals",
        "companies",
    ]
    assert not move_folder(db, crm.member, crm.folders["contacts"], -1)
    with pytest.raises(StructureError):
        move_folder(db, crm.member, deals, 2)


def test_deactivating_a_folder_keeps_its_records(crm: Crm, db: Session) -> None:
    for key in ("contacts", "companies", "deals"):
        with pytest.raises(StructureError, match="built-in"):
            set_folder_active(db, crm.member, crm.folders[key], False)
    folder = add_folder(db, crm.member, "Tickets")
    record = save_record(db, crm.member, folder, {"name": ["Broken"]})
    set_folder_active(db, crm.member, folder, False)
    assert not folder.active
    assert db.get(Record, record.id) is not None
    assert stored(db, record, field_of(db, folder, "name")) is not None
    set_folder_active(db, crm.member, folder, True)
    assert folder.active


def test_at_most_30_active_folders(crm: Crm, db: Session) -> None:
    extra = [add_folder(db, crm.member, f"Folder {n}") for n in range(MAX_ACTIVE_FOLDERS - 3)]
    with pytest.raises(StructureError, match="at most 30"):
        add_folder(db, crm.member, "One too many")
    set_folder_active(db, crm.member, extra[0], False)
    spare = add_folder(db, crm.member, "Now it fits")
    with pytest.raises(StructureError, match="at most 30"):
        set_folder_active(db, crm.member, extra[0], True)
    assert spare.active


# ------------------------------------------------------------------------------- fields


def test_add_field_derives_key_and_goes_last(crm: Crm, db: Session) -> None:
    deals = crm.folders["deals"]
    before = all_fields(db, deals)
    score = add_field(db, crm.member, deals, "Lead score", "number", {"decimals": 1})
    assert (score.key, score.options, score.required) == ("lead_score", {"decimals": 1}, False)
    assert score.position == max(f.position for f in before) + 1
    # "domain" would be normalised as a web domain by the records service.
    assert add_field(db, crm.member, deals, "Domain", "url").key == "domain_2"
    with pytest.raises(StructureError, match="already exists"):
        add_field(db, crm.member, deals, "lead SCORE", "text")
    ticket = add_field(db, crm.member, deals, "Ticket", "autonumber", {"start": 100})
    assert ticket.next_number == 100
    record = save_record(db, crm.member, deals, {"name": ["Big deal"]})
    value = stored(db, record, ticket)
    assert value is not None and value.value == 100
    entry = audits(db, "field_change")[-1]
    assert entry.after and entry.after["type"] == "autonumber" and entry.before is None


@pytest.mark.parametrize(
    ("type_name", "options", "message"),
    [
        ("colour", {}, "Unknown field type “colour”."),
        ("number", {"colour": "red"}, "Unknown option “colour” for number fields"),
        ("number", {"decimals": 99}, "“decimals” must be a whole number from 0 to 10"),
        ("dropdown", {}, "Dropdown fields need the option “choices”."),
        ("dropdown", {"choices": ["a", "A"]}, "appears twice"),
        ("currency", {"default_currency": "XXY"}, "not an ISO 4217 code"),
        ("link", {"folder": "nowhere"}, "“nowhere” is not one"),
        ("formula", {"expression": "amount *"}, "The formula ends too early."),
        ("formula", {"expression": "stage * 2"}, "a dropdown field (not a number or date)"),
        ("formula", {"expression": "missing + 1"}, "not a field of this folder"),
        ("autonumber", {"start": -1}, "“start” must be a whole number"),
    ],
)
def test_unknown_types_and_bad_options_are_refused(
    crm: Crm, db: Session, type_name: str, options: dict[str, Any], message: str
) -> None:
    before = row_counts(db)
    with pytest.raises(StructureError) as caught:
        add_field(db, crm.member, crm.folders["deals"], "New one", type_name, options)
    assert message.lower() in str(caught.value).lower()
    assert row_counts(db) == before


def test_computed_fields_cannot_be_required(crm: Crm, db: Session) -> None:
    with pytest.raises(StructureError, match="computed"):
        add_field(db, crm.member, crm.folders["deals"], "No", "autonumber", {}, required=True)


def test_links_need_an_active_folder(crm: Crm, db: Session) -> None:
    tickets = add_folder(db, crm.member, "Tickets")
    link = add_field(
        db, crm.member, crm.folders["contacts"], "Tickets", "link", {"folder": "tickets"}
    )
    assert link.options == {"folder": "tickets"}
    set_field_active(db, crm.member, link, False)
    set_folder_active(db, crm.member, tickets, False)
    with pytest.raises(StructureError, match="active folder"):
        add_field(db, crm.member, crm.folders["deals"], "Ticket", "link", {"folder": "tickets"})
    with pytest.raises(StructureError, match="active folder"):
        set_field_active(db, crm.member, link, True)


def test_formula_fields_are_computed_for_existing_records(crm: Crm, db: Session) -> None:
    deals = crm.folders["deals"]
    deal = crm.save("deals", name="Big", amount="1200 EUR", close_date="2026-03-01")
    empty = crm.save("deals", name="No amount")
    add_field(db, crm.member, deals, "Probability", "percent")
    double = add_field(db, crm.member, deals, "Double", "formula", {"expression": "amount * 2"})
    later = add_field(
        db, crm.member, deals, "Follow up", "formula", {"expression": "close_date + 14"}
    )
    value = stored(db, deal, double)
    assert value is not None and value.num_key == 2400.0
    follow = stored(db, deal, later)
    assert follow is not None and follow.value == "2026-03-15"
    assert stored(db, empty, double) is None
    # A formula can use another formula, and its inputs cannot be hidden under it.
    add_field(db, crm.member, deals, "Quad", "formula", {"expression": "double * 2"})
    with pytest.raises(StructureError, match="“Double” uses Amount"):
        set_field_active(db, crm.member, field_of(db, deals, "amount"), False)
    with pytest.raises(StructureError, match="must stay a number or date"):
        change_field_type(db, crm.member, field_of(db, deals, "amount"), "text")


def test_required_field_is_enforced_by_save_record(crm: Crm, db: Session) -> None:
    contacts = crm.folders["contacts"]
    crm.save("contacts", first_name="Ann", emails="ann@x.com")
    region = add_field(db, crm.member, contacts, "Region", "text", required=True)
    with pytest.raises(ValidationError) as caught:
        save_record(db, crm.member, contacts, {"first_name": ["Bob"]})
    assert caught.value.errors == {"region": "is required"}
    save_record(db, crm.member, contacts, {"first_name": ["Bob"], "region": ["EMEA"]})

    job = field_of(db, contacts, "job_title")
    missing = set_field_required(db, crm.member, job, True)
    assert missing == 2  # Ann and Bob have no job title
    with pytest.raises(ValidationError) as caught:
        save_record(db, crm.member, contacts, {"first_name": ["Cy"], "region": ["APAC"]})
    assert caught.value.errors == {"job_title": "is required"}
    assert set_field_required(db, crm.member, job, False) == 0
    set_field_active(db, crm.member, region, False)
    # An inactive field is no longer asked for.
    save_record(db, crm.member, contacts, {"first_name": ["Dee"]})


def test_rename_move_and_deactivate_field_keep_key_and_values(crm: Crm, db: Session) -> None:
    contacts = crm.folders["contacts"]
    ann = crm.save("contacts", first_name="Ann", job_title="CTO")
    job = field_of(db, contacts, "job_title")
    rename_field(db, crm.member, job, "Position")
    assert (job.key, job.label) == ("job_title", "Position")
    with pytest.raises(StructureError, match="already exists"):
        rename_field(db, crm.member, job, "phones")

    keys = [f.key for f in all_fields(db, contacts)]
    assert move_field(db, crm.member, job, -1)
    moved = [f.key for f in all_fields(db, contacts)]
    index = keys.index("job_title")
    assert moved[index - 1 : index + 1] == ["job_title", keys[index - 1]]
    last = all_fields(db, contacts)[-1]
    assert not move_field(db, crm.member, last, 1)

    set_field_active(db, crm.member, job, False)
    assert "job_title" not in [f.key for f in folder_fields(db, contacts.id)]
    value = stored(db, ann, job)
    assert value is not None and value.value == "CTO"
    set_field_active(db, crm.member, job, True)
    assert "job_title" in [f.key for f in folder_fields(db, contacts.id)]
    actions = [e.summary for e in audits(db, "field_change")]
    assert any("Renamed field Job title to Position" in s for s in actions)
    assert any("Deactivated field Position" in s for s in actions)


@pytest.mark.parametrize(
    ("folder", "key"),
    [
        ("contacts", "first_name"),
        ("contacts", "last_name"),
        ("contacts", "emails"),
        ("companies", "name"),
        ("companies", "domain"),
        ("deals", "name"),
    ],
)
def test_fields_the_crm_relies_on_cannot_be_hidden_or_retyped(
    crm: Crm, db: Session, folder: str, key: str
) -> None:
    fdef = field_of(db, crm.folders[folder], key)
    with pytest.raises(StructureError, match="cannot be deactivated"):
        set_field_active(db, crm.member, fdef, False)
    with pytest.raises(StructureError, match="cannot change"):
        change_field_type(db, crm.member, fdef, "multiline")
    rename_field(db, crm.member, fdef, "Renamed")
    assert fdef.label == "Renamed" and fdef.key == key


def test_at_most_100_active_fields(crm: Crm, db: Session) -> None:
    folder = add_folder(db, crm.member, "Wide")
    fields = [add_field(db, crm.member, folder, f"F{n}", "text") for n in range(99)]
    with pytest.raises(StructureError, match="at most 100"):
        add_field(db, crm.member, folder, "F100", "text")
    set_field_active(db, crm.member, fields[0], False)
    add_field(db, crm.member, folder, "F100", "text")
    with pytest.raises(StructureError, match="at most 100"):
        set_field_active(db, crm.member, fields[0], True)


# ---------------------------------------------------------------------- dropdown choices


def test_removing_a_choice_in_use_is_allowed_and_reported(crm: Crm, db: Session) -> None:
    contacts = crm.folders["contacts"]
    stage = field_of(db, contacts, "lifecycle_stage")
    lead = crm.save("contacts", first_name="Ann", lifecycle_stage="lead")
    customer = crm.save("contacts", first_name="Bob", lifecycle_stage="customer")
    crm.save("contacts", first_name="Cy")
    orphaned = set_dropdown_choices(db, crm.member, stage, ["Customer", "Partner", "Other"])
    assert orphaned == 1
    assert stage.options["choices"] == ["Customer", "Partner", "Other"]
    kept = stored(db, lead, stage)
    assert kept is not None and kept.value == "lead" and kept.num_key is None
    # Re-cased choices are renamed, and the sort key follows the new order.
    renamed = stored(db, customer, stage)
    assert renamed is not None and renamed.value == "Customer" and renamed.num_key == 0.0
    entry = audits(db, "field_change")[-1]
    assert entry.after and entry.after["records_with_removed_choices"] == 1
    with pytest.raises(StructureError, match="appears twice"):
        set_dropdown_choices(db, crm.member, stage, ["a", "A"])
    with pytest.raises(StructureError, match="not a dropdown"):
        set_dropdown_choices(db, crm.member, field_of(db, contacts, "job_title"), ["a"])


# --------------------------------------------------------------------------- type change


def test_text_to_number_converts_what_it_can_and_keeps_the_rest(crm: Crm, db: Session) -> None:
    contacts = crm.folders["contacts"]
    score = add_field(db, crm.member, contacts, "Score", "text")
    ann = crm.save("contacts", first_name="Ann", score="42")
    bob = crm.save("contacts", first_name="Bob", score="1 200.5")
    cy = crm.save("contacts", first_name="Cy", score="about ten")
    crm.save("contacts", first_name="Dee")
    values_before = db.execute(select(func.count()).select_from(FieldValue)).scalar_one()

    report = change_field_type(db, crm.member, score, "number")

    assert (score.type, score.options) == ("number", {})
    assert (report.converted, report.cleared, len(report.kept)) == (2, 0, 1)
    (kept,) = report.kept
    assert (kept.record_id, kept.title, kept.value) == (cy.id, "Cy", "about ten")
    assert "is not a number" in kept.reason
    for record, value, number in ((ann, "42", 42.0), (bob, "1200.5", 1200.5)):
        row = stored(db, record, score)
        assert row is not None and (row.value, row.num_key) == (value, number)
    row = stored(db, cy, score)
    assert row is not None and (row.value, row.num_key, row.text_key) == (
        "about ten",
        None,
        "about ten",
    )
    # Nothing lost: every value is still there; the kept one shows as stored.
    assert db.execute(select(func.count()).select_from(FieldValue)).scalar_one() == values_before
    assert field_type("number").display("about ten") == "about ten"
    entry = audits(db, "field_change")[-1]
    assert entry.summary == report.summary
    assert "2 values converted, 1 kept unconverted" in entry.summary
    assert entry.before and entry.before["type"] == "text"
    assert entry.after and entry.after["kept"] == [{"record_id": cy.id, "value": "about ten"}]
    # The kept value is refused at the record's next save until corrected.
    with pytest.raises(ValidationError):
        save_record(db, crm.member, contacts, {"score": ["about ten"]}, cy)


def test_dropdown_to_multidropdown_keeps_choices(crm: Crm, db: Session) -> None:
    stage = field_of(db, crm.folders["contacts"], "lifecycle_stage")
    choices = list(stage.options["choices"])
    ann = crm.save("contacts", first_name="Ann", lifecycle_stage="lead")
    report = change_field_type(db, crm.member, stage, "multidropdown")
    assert (report.converted, report.kept) == (1, [])
    assert stage.options == {"choices": choices}
    row = stored(db, ann, stage)
    assert row is not None and (row.value, row.text_key) == (["lead"], "|lead|")


def test_number_to_text_and_to_dropdown_with_choices_in_use(crm: Crm, db: Session) -> None:
    deals = crm.folders["deals"]
    size = add_field(db, crm.member, deals, "Size", "number")
    big = crm.save("deals", name="Big", size="1200.5")
    small = crm.save("deals", name="Small", size="3")
    change_field_type(db, crm.member, size, "text")
    row = stored(db, big, size)
    assert row is not None and (row.value, row.num_key) == ("1,200.5", None)
    report = change_field_type(db, crm.member, size, "dropdown")
    assert size.options == {"choices": ["1,200.5", "3"]}
    assert report.converted == 2
    row = stored(db, small, size)
    assert row is not None and (row.value, row.num_key) == ("3", 1.0)


def test_text_to_email_updates_the_matching_index(crm: Crm, db: Session) -> None:
    contacts = crm.folders["contacts"]
    other = add_field(db, crm.member, contacts, "Other address", "text")
    ann = crm.save("contacts", first_name="Ann", other_address="Ann@Example.COM")
    change_field_type(db, crm.member, other, "email")
    row = stored(db, ann, other)
    assert row is not None and row.value == ["ann@example.com"]
    emails = db.execute(select(RecordEmail.email).where(RecordEmail.record_id == ann.id))
    assert emails.scalars().all() == ["ann@example.com"]


@pytest.mark.parametrize(
    ("key", "new_type", "message"),
    [
        ("owner", "text", "cannot become text"),
        ("job_title", "link", "cannot become link"),
        ("job_title", "user", "cannot become user"),
        ("job_title", "formula", "computed"),
        ("job_title", "autonumber", "computed"),
        ("job_title", "text", "already is a text field"),
        ("job_title", "colour", "Unknown field type"),
    ],
)
def test_impossible_type_changes_are_refused_up_front(
    crm: Crm, db: Session, key: str, new_type: str, message: str
) -> None:
    crm.save("contacts", first_name="Ann", job_title="CTO")
    before = row_counts(db)
    fdef = field_of(db, crm.folders["contacts"], key)
    with pytest.raises(StructureError, match=message):
        change_field_type(db, crm.member, fdef, new_type)
    assert row_counts(db) == before
    assert fdef.type == ("user" if key == "owner" else "text")


def test_options_from_inputs_keeps_only_the_types_options() -> None:
    assert options_from_inputs("dropdown", choices="a\n\n b \n", currency="EUR") == {
        "choices": ["a", " b "]
    }
    assert options_from_inputs("link", folder="deals", many="true") == {
        "folder": "deals",
        "many": True,
    }
    assert options_from_inputs("number", decimals="2") == {"decimals": 2}
    assert options_from_inputs("text", decimals="2", expression="a") == {}
    with pytest.raises(StructureError, match="Decimals"):
        options_from_inputs("percent", decimals="two")


# ------------------------------------------------------------------------------ actions


def test_admin_browses_folders_and_fields(addon: AddonClient, crm: Crm) -> None:
    structure = card_of(addon.action("admin_structure"))
    assert {"Contacts", "Companies", "Deals", "Add folder"} <= set(texts(structure).split("\n"))
    contacts = crm.folders["contacts"]
    folder = card_of(addon.action("admin_folder", parameters={"folder_id": str(contacts.id)}))
    assert "First name" in texts(folder) and "Lifecycle stage" in texts(folder)
    stage = field_of(crm.db, contacts, "lifecycle_stage")
    edit = card_of(addon.action("admin_edit_field", parameters={"field_id": str(stage.id)}))
    assert "Change type" in texts(edit) and "subscriber\nlead" in texts(edit)
    new = card_of(addon.action("admin_new_field", parameters={"folder_id": str(contacts.id)}))
    assert "Link to records" in texts(new) and "Email statistics" not in texts(new)


def test_admin_adds_a_folder_and_a_field(addon: AddonClient, db: Session, crm: Crm) -> None:
    data = addon.action("admin_add_folder", form={"name": "Partners", "singular": ""})
    assert navigations(data) == ["updateCard"]
    assert "Partners" in texts(card_of(data))
    folder = folders_by_key(db, crm.member.workspace_id)["partners"]
    data = addon.action(
        "admin_add_field",
        parameters={"folder_id": str(folder.id)},
        form={"label": "Tier", "type": "dropdown", "required": "yes", "choices": "Gold\nSilver"},
    )
    assert navigations(data) == ["pop", "updateCard"]
    assert "Tier" in texts(card_of(data))
    db.expire_all()
    tier = field_of(db, folder, "tier")
    assert (tier.type, tier.options, tier.required) == (
        "dropdown",
        {"choices": ["Gold", "Silver"]},
        True,
    )


def test_invalid_input_shows_the_form_again_and_saves_nothing(
    addon: AddonClient, db: Session, crm: Crm
) -> None:
    deals = crm.folders["deals"]
    addon.action("admin_structure")
    before = row_counts(db)
    data = addon.action(
        "admin_add_field",
        parameters={"folder_id": str(deals.id)},
        form={"label": "Kind", "type": "dropdown", "required": "no", "choices": ""},
    )
    assert navigations(data) == ["updateCard"]
    card = card_of(data)
    assert "need the option “choices”" in texts(card) and "Kind" in texts(card)
    data = addon.action("admin_add_folder", form={"name": "Deals", "singular": "x"})
    assert "already exists" in texts(card_of(data))
    stage = field_of(db, deals, "stage")
    data = addon.action(
        "admin_update_field",
        parameters={"field_id": str(stage.id)},
        form={"label": "Renamed", "required": "no", "choices": "won\nwon"},
    )
    assert "appears twice" in texts(card_of(data)) and "Renamed" in texts(card_of(data))
    assert row_counts(db) == before
    db.expire_all()
    assert stage.label == "Pipeline stage"


def test_admin_edits_moves_and_toggles_a_field(addon: AddonClient, db: Session, crm: Crm) -> None:
    contacts = crm.folders["contacts"]
    crm.save("contacts", first_name="Ann", lifecycle_stage="lead")
    stage = field_of(db, contacts, "lifecycle_stage")
    params = {"field_id": str(stage.id)}
    data = addon.action(
        "admin_update_field",
        parameters=params,
        form={"label": "Stage", "required": "yes", "choices": "customer\nother"},
    )
    assert navigations(data) == ["pop", "updateCard"]
    notification = data["renderActions"]["action"]["notification"]["text"]
    assert "1 record keep a removed choice" in notification
    addon.action("admin_move_field", parameters={**params, "direction": "-1"})
    addon.action("admin_toggle_field", parameters={**params, "active": "false"})
    db.expire_all()
    assert (stage.label, stage.required, stage.active) == ("Stage", True, False)
    assert stage.options["choices"] == ["customer", "other"]
    first = field_of(db, contacts, "first_name")
    data = addon.action(
        "admin_toggle_field",
        parameters={"field_id": str(first.id), "active": "false", "nav": "pop"},
    )
    assert navigations(data) == ["updateCard"]
    assert "cannot be deactivated" in texts(card_of(data))


def test_admin_changes_a_type_and_sees_the_report(
    addon: AddonClient, db: Session, crm: Crm
) -> None:
    contacts = crm.folders["contacts"]
    score = add_field(db, crm.member, contacts, "Score", "text")
    crm.save("contacts", first_name="Ann", score="7")
    crm.save("contacts", first_name="Bob", score="n/a")
    data = addon.action(
        "admin_change_type",
        parameters={"field_id": str(score.id)},
        form={"new_type": "number", "type_decimals": "1"},
    )
    card = card_of(data)
    assert card["name"] == "admin-type-report"
    assert "1 value converted" in texts(card) and "Bob" in texts(card) and "n/a" in texts(card)
    db.expire_all()
    assert (score.type, score.options) == ("number", {"decimals": 1})
    data = addon.action(
        "admin_change_type",
        parameters={"field_id": str(score.id)},
        form={"new_type": "user"},
    )
    assert "cannot become user" in texts(card_of(data))


@pytest.mark.parametrize("role", ["rep", "viewer", "manager"])
def test_only_admins_manage_the_structure(
    addon: AddonClient, db: Session, crm: Crm, role: str
) -> None:
    client = member_with_role(addon, db, f"{role}@acme.test", role)
    stage = field_of(db, crm.folders["deals"], "stage")
    before = row_counts(db)
    for name, parameters, form in [
        ("admin_structure", {}, {}),
        ("admin_add_folder", {}, {"name": "Sneaky"}),
        ("admin_toggle_field", {"field_id": str(stage.id), "active": "false"}, {}),
        ("admin_change_type", {"field_id": str(stage.id)}, {"new_type": "text"}),
    ]:
        card = card_of(client.action(name, parameters=parameters, form=form))
        assert card["header"]["title"] == "Not allowed"
        assert "does not allow" in texts(card)
    assert row_counts(db) == before
    db.expire_all()
    assert stage.active and stage.type == "dropdown"


def test_other_workspaces_ids_are_refused(
    addon: AddonClient, other_tenant: AddonClient, db: Session, crm: Crm
) -> None:
    other_tenant.post("/homepage")  # spy@rival.test is the admin of rival.test
    deals = crm.folders["deals"]
    stage = field_of(db, deals, "stage")
    before = row_counts(db)
    other_tenant.action("admin_folder", parameters={"folder_id": str(deals.id)}, expect=403)
    other_tenant.action(
        "admin_rename_folder",
        parameters={"folder_id": str(deals.id)},
        form={"name": "Mine"},
        expect=403,
    )
    other_tenant.action(
        "admin_add_field",
        parameters={"folder_id": str(deals.id)},
        form={"label": "X", "type": "text"},
        expect=403,
    )
    for name in ("admin_edit_field", "admin_toggle_field", "admin_change_type"):
        other_tenant.action(
            name, parameters={"field_id": str(stage.id), "active": "false"}, expect=403
        )
    for bad in ("abc", "0", "99999999999", ""):
        addon.action("admin_folder", parameters={"folder_id": bad}, expect=403)
    assert row_counts(db) == before
    db.expire_all()
    assert deals.name == "Deals" and stage.active


def test_long_lists_stay_within_card_limits(addon: AddonClient, db: Session, crm: Crm) -> None:
    folder = add_folder(db, crm.member, "Wide")
    for n in range(99):
        add_field(db, crm.member, folder, f"Field {n}", "text")
    params = {"folder_id": str(folder.id)}
    first = card_of(addon.action("admin_folder", parameters=params))
    assert "Showing 25 of 100 fields" in texts(first) and "Next" in texts(first)
    last = card_of(
        addon.action("admin_folder", parameters={**params, "page": "3", "nav": "update"})
    )
    assert "Field 98" in texts(last) and "Previous" in texts(last) and "Next" not in texts(last)

    notes = add_field(db, crm.member, crm.folders["contacts"], "Notes", "text")
    for n in range(65):
        crm.save("contacts", first_name=f"P{n}", notes=f"note {n}")
    data = addon.action(
        "admin_change_type", parameters={"field_id": str(notes.id)}, form={"new_type": "date"}
    )
    report = card_of(data)
    assert "Showing 60 of 65 kept values" in texts(report)
