"""Record forms for every field type, and display in the user's locale and time zone.

Each editable type gets its own widget; the edit form shows the stored value and, sent
back untouched the way Google sends it, changes nothing (no audit entry). Refused input
shows the form again with the message and what the user typed. Cards follow the
`userLocale` and `timeZone` of the event, falling back when they are missing or invalid.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.cards.records import member_choices, record_form, zone_offset_minutes
from addon.cards.widgets import Actions
from addon.crm.models import AuditEntry, FieldValue, Member, Record, RecordRelation
from addon.crm.records import load_detail
from addon.crm.workspaces import folder_fields
from addon.gmail.fake_server import FakeGmail, FakeMessage
from addon.web.events import parse_form_inputs, user_locale, user_timezone
from tests.cardcheck import BASE_URL, check_card
from tests.cardread import card_of, texts
from tests.crmdata import Crm, add_field
from tests.dbstate import row_counts
from tests.google_fakes import AddonClient

JULY_MOMENT = "2026-07-01T08:30:00Z"  # 10:30 in Paris and Berlin (summer time)
JULY_MS = int(datetime(2026, 7, 1, 8, 30, tzinfo=UTC).timestamp() * 1000)

# ----------------------------------------------------------------------------- helpers


def widgets_of(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every widget of a card, in order."""
    return [w for s in card.get("sections", []) for w in s["widgets"]]


def input_named(card: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """(widget kind, body) of the input with this name."""
    for widget in widgets_of(card):
        for kind, body in widget.items():
            if kind == "decoratedText" and body.get("switchControl", {}).get("name") == name:
                return "switchControl", body["switchControl"]
            if isinstance(body, dict) and body.get("name") == name:
                return kind, body
    raise AssertionError(f"no input named {name!r}")


def input_names(card: dict[str, Any]) -> set[str]:
    """Names of every input on a card."""
    names: set[str] = set()
    for widget in widgets_of(card):
        for kind, body in widget.items():
            if kind == "decoratedText" and "switchControl" in body:
                names.add(body["switchControl"]["name"])
            elif isinstance(body, dict) and "name" in body:
                names.add(body["name"])
    return names


def submitted_untouched(card: dict[str, Any]) -> dict[str, Any]:
    """formInputs as Google sends them for a form the user did not touch.

    Text inputs send their text; selection inputs their selected values; a checkbox its
    value only when ticked; a picker its milliseconds only when it has a value.
    """
    inputs: dict[str, Any] = {}
    for widget in widgets_of(card):
        if "textInput" in widget:
            body = widget["textInput"]
            inputs[body["name"]] = {"stringInputs": {"value": [body.get("value", "")]}}
        elif "selectionInput" in widget:
            body = widget["selectionInput"]
            chosen = [i["value"] for i in body["items"] if i.get("selected")]
            if chosen:
                inputs[body["name"]] = {"stringInputs": {"value": chosen}}
        elif "switchControl" in widget.get("decoratedText", {}):
            control = widget["decoratedText"]["switchControl"]
            if control.get("selected"):
                inputs[control["name"]] = {"stringInputs": {"value": [control["value"]]}}
        elif "dateTimePicker" in widget:
            body = widget["dateTimePicker"]
            if "valueMsEpoch" in body:
                key = "dateInput" if body["type"] == "DATE_ONLY" else "dateTimeInput"
                inputs[body["name"]] = {key: {"msSinceEpoch": body["valueMsEpoch"]}}
    return inputs


def with_locale(
    addon: AddonClient, locale: str | None, zone: str | None, **kwargs: Any
) -> dict[str, Any]:
    """An event whose user locale and time zone are these (None leaves them out)."""
    event = addon.event(**kwargs)
    common = event["commonEventObject"]
    common.pop("userLocale", None)
    common.pop("timeZone", None)
    if locale is not None:
        common["userLocale"] = locale
    if zone is not None:
        common["timeZone"] = {"id": zone, "offset": 0}
    return event


def audit_count(db: Session, record: Record) -> int:
    return int(
        db.execute(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.record_id == record.id)
        ).scalar_one()
    )


def values_of(db: Session, record: Record) -> dict[str, Any]:
    db.expire_all()
    detail = load_detail(db, record)
    links = {k: [r.id for r in v] for k, v in detail.links.items()}
    return {**detail.values, **links}


# The custom fields added to Contacts beside the defaults (text, email, phone, link,
# dropdown, user): one of every other type.
CUSTOM_FIELDS: list[tuple[str, str, dict[str, Any]]] = [
    ("notes_field", "multiline", {}),
    ("score", "number", {"decimals": 2}),
    ("member_no", "autonumber", {"prefix": "M-"}),
    ("discount", "percent", {}),
    ("budget", "currency", {"default_currency": "EUR"}),
    ("birthday", "date", {}),
    ("met_at", "datetime", {}),
    ("vip", "checkbox", {}),
    ("tags", "multidropdown", {"choices": ["gold", "silver", "bronze", "a, b"]}),
    ("website", "url", {}),
    ("address", "address", {}),
    ("skype", "skype", {}),
    ("profiles", "social", {}),
    ("doubled", "formula", {"expression": "score * 2"}),
    ("emails_sent", "stats", {"metric": "emails_sent"}),
]

# A value of every editable type, as a form sends it.
SAMPLE: dict[str, str | list[str]] = {
    "first_name": "Ann",
    "last_name": "Archer",
    "emails": ["ann@globex.com", "ann.a@example.org"],
    "phones": ["+1 650 253 0000", "+33 1 23 45 67 89"],
    "job_title": "Head of Sales",
    "lifecycle_stage": "customer",
    "lead_source": "referral",
    "notes_field": "Met at the fair.\nWants a demo.",
    "score": "1234.5",
    "discount": "12.5",
    "budget": "1234.50 EUR",
    "birthday": "1990-06-14",
    "met_at": JULY_MOMENT,
    "vip": "yes",
    "tags": ["gold", "a, b"],
    "website": "example.com/about",
    "address": '{"street":"Hauptstr. 1","city":"Berlin","postal_code":"10115","country":"DE"}',
    "skype": "ann.archer",
    "profiles": ["https://www.linkedin.com/in/ann", "https://github.com/ann"],
}


@pytest.fixture
def typed_contacts(crm: Crm, db: Session) -> Crm:
    """Contacts with one custom field of every type the defaults lack."""
    for key, ftype, options in CUSTOM_FIELDS:
        add_field(db, crm.folders["contacts"], key, ftype, **options)
    return crm


def full_contact(crm: Crm) -> Record:
    globex = crm.save("companies", name="Globex", domain="globex.com")
    return crm.save("contacts", **SAMPLE, company=f"#{globex.id}", owner=f"#{crm.member.id}")


def edit_form(addon: AddonClient, record: Record, event: dict[str, Any] | None = None) -> Any:
    if event is None:
        return card_of(addon.action("edit_record", parameters={"record_id": str(record.id)}))
    return card_of(addon.post("/actions/edit_record", event))


# ------------------------------------------------------------------------------ widgets


def test_every_type_gets_its_widget(typed_contacts: Crm, addon: AddonClient) -> None:
    record = full_contact(typed_contacts)
    form = edit_form(addon, record)
    kinds = {
        "first_name": "textInput",
        "emails": "textInput",
        "phones": "textInput",
        "company": "textInput",
        "lifecycle_stage": "selectionInput",
        "owner": "selectionInput",
        "notes_field": "textInput",
        "score": "textInput",
        "discount": "textInput",
        "budget": "textInput",
        "birthday": "dateTimePicker",
        "met_at": "dateTimePicker",
        "vip": "switchControl",
        "tags": "selectionInput",
        "website": "textInput",
        "skype": "textInput",
        "profiles": "textInput",
    }
    for name, kind in kinds.items():
        assert input_named(form, name)[0] == kind, name
    assert input_named(form, "lifecycle_stage")[1]["type"] == "DROPDOWN"
    owner = input_named(form, "owner")[1]
    assert owner["type"] == "DROPDOWN"
    assert [i["text"] for i in owner["items"] if i["selected"]] == ["rep@acme.test"]
    assert input_named(form, "notes_field")[1]["type"] == "MULTIPLE_LINE"
    assert input_named(form, "birthday")[1]["type"] == "DATE_ONLY"
    assert input_named(form, "met_at")[1]["type"] == "DATE_AND_TIME"
    vip = input_named(form, "vip")[1]
    assert vip["controlType"] == "CHECK_BOX" and vip["selected"] is True
    tags = input_named(form, "tags")[1]
    assert tags["type"] == "MULTI_SELECT"
    assert tags["multiSelectMaxSelectedItems"] == 4  # every choice may be picked
    assert [i["value"] for i in tags["items"] if i["selected"]] == ["gold", "a, b"]
    # Hints say how to write numbers, money and lists.
    assert input_named(form, "budget")[1]["hintText"] == "Amount and currency, e.g. 1250.50 EUR"
    assert "e.g. 1250.50" in input_named(form, "score")[1]["hintText"]
    assert "commas" in input_named(form, "emails")[1]["hintText"]
    # An address is five inputs, one per part.
    parts = [input_named(form, f"address.{i}")[1].get("value", "") for i in range(5)]
    assert parts == ["Hauptstr. 1", "Berlin", "", "10115", "DE"]
    # Computed fields are shown as text, never as inputs.
    names = input_names(form)
    assert {"member_no", "doubled", "emails_sent"}.isdisjoint(names)
    shown = texts(form)
    assert "M-1" in shown and "2,469" in shown


def test_the_create_form_has_the_same_widgets(typed_contacts: Crm, addon: AddonClient) -> None:
    form = card_of(addon.action("new_record", parameters={"folder": "contacts"}))
    assert input_named(form, "vip") == (
        "switchControl",
        {"name": "vip", "value": "true", "selected": False, "controlType": "CHECK_BOX"},
    )
    assert input_named(form, "tags")[0] == "selectionInput"
    assert "valueMsEpoch" not in input_named(form, "met_at")[1]
    assert "Assigned when saved" in texts(form)  # the auto-number, before it exists
    assert "doubled" not in input_names(form)


def test_date_time_pickers_use_the_user_zone_offset_at_the_value(
    typed_contacts: Crm, addon: AddonClient, db: Session
) -> None:
    record = typed_contacts.save("contacts", first_name="Ann", met_at=JULY_MOMENT)
    winter = typed_contacts.save("contacts", first_name="Bob", met_at="2026-01-15T08:30:00Z")
    # The test client's events come from Europe/Paris: summer and winter time differ.
    picker = input_named(edit_form(addon, record), "met_at")[1]
    assert (picker["valueMsEpoch"], picker["timezoneOffsetDate"]) == (str(JULY_MS), 120)
    assert input_named(edit_form(addon, winter), "met_at")[1]["timezoneOffsetDate"] == 60
    tokyo = edit_form(
        addon,
        record,
        with_locale(addon, "ja", "Asia/Tokyo", parameters={"record_id": str(record.id)}),
    )
    assert input_named(tokyo, "met_at")[1]["timezoneOffsetDate"] == 540
    # What the picker sends back is an absolute moment, stored in UTC.
    picked = JULY_MS + 90 * 60 * 1000
    addon.action(
        "update_record",
        parameters={"record_id": str(record.id)},
        form={"met_at": {"dateTimeInput": {"msSinceEpoch": str(picked)}}},
    )
    assert values_of(db, record)["met_at"] == "2026-07-01T10:00:00Z"


def test_zone_offsets_and_member_choices_without_a_database() -> None:
    assert zone_offset_minutes(None) is None
    assert zone_offset_minutes("America/New_York", JULY_MS) == -240
    assert zone_offset_minutes("Asia/Kolkata", JULY_MS) == 330
    assert zone_offset_minutes("UTC", JULY_MS) == 0
    members = [Member(id=i, email=f"m{i:03d}@acme.test") for i in range(1, 100)]
    choices = member_choices(members, "#500", {500: Member(id=500, email="zed@acme.test")})
    # The owner beyond the first 99 members stays selectable, within 99 choices.
    assert len(choices) == 99 and choices[-1] == ("#500", "zed@acme.test")
    assert len(member_choices(members, "#1")) == 99


# --------------------------------------------------------------------------- round trip

ROUND_TRIP: list[tuple[str, str | list[str]]] = [
    *((k, v) for k, v in SAMPLE.items()),
    ("vip", "no"),
    ("tags", ["silver"]),
    ("budget", "-0.5 EUR"),
    ("score", "0"),
    ("met_at", "2026-01-15T23:59:00Z"),
    ("address", "Only a street line 5"),
]


@pytest.mark.parametrize(
    ("key", "value"), ROUND_TRIP, ids=[f"{k}-{i}" for i, (k, _) in enumerate(ROUND_TRIP)]
)
def test_saving_an_untouched_edit_form_changes_nothing(
    typed_contacts: Crm, addon: AddonClient, db: Session, key: str, value: str | list[str]
) -> None:
    fields: dict[str, str | list[str]] = {key: value}
    if key not in ("first_name", "emails"):
        fields["first_name"] = "Zoe"
    record = typed_contacts.save("contacts", **fields)
    before_values, before_audits = values_of(db, record), audit_count(db, record)
    assert before_values.get(key) not in (None, "", []), "the sample must store a value"
    form = edit_form(addon, record)
    data = addon.action(
        "update_record",
        parameters={"record_id": str(record.id)},
        form=submitted_untouched(form),
    )
    assert data["renderActions"]["action"]["navigations"][0] == {"pop": True}
    assert values_of(db, record) == before_values
    assert audit_count(db, record) == before_audits


def test_an_untouched_form_with_every_type_filled_changes_nothing(
    typed_contacts: Crm, addon: AddonClient, db: Session
) -> None:
    record = full_contact(typed_contacts)
    before_values, before_audits = values_of(db, record), audit_count(db, record)
    form = edit_form(addon, record)
    addon.action(
        "update_record", parameters={"record_id": str(record.id)}, form=submitted_untouched(form)
    )
    assert values_of(db, record) == before_values
    assert audit_count(db, record) == before_audits


def test_unknown_checkbox_stays_unknown_and_unticking_clears(
    typed_contacts: Crm, addon: AddonClient, db: Session
) -> None:
    unknown = typed_contacts.save("contacts", first_name="Ann", vip="")
    assert "vip" not in values_of(db, unknown)
    addon.action(
        "update_record",
        parameters={"record_id": str(unknown.id)},
        form=submitted_untouched(edit_form(addon, unknown)),
    )
    assert "vip" not in values_of(db, unknown)
    ticked = typed_contacts.save("contacts", first_name="Bob", vip="yes", tags=["gold"])
    form = submitted_untouched(edit_form(addon, ticked))
    del form["vip"], form["tags"]  # the user unticks the box and deselects every tag
    addon.action("update_record", parameters={"record_id": str(ticked.id)}, form=form)
    after = values_of(db, ticked)
    assert after["vip"] is False and "tags" not in after


def test_an_unchanged_link_keeps_the_record_of_the_same_name(
    typed_contacts: Crm, addon: AddonClient, db: Session
) -> None:
    typed_contacts.save("companies", name="Acme")
    second = typed_contacts.save("companies", name="Acme")
    contact = typed_contacts.save("contacts", first_name="Ann", company=f"#{second.id}")
    form = edit_form(addon, contact)
    assert input_named(form, "company")[1]["value"] == "Acme"
    addon.action(
        "update_record", parameters={"record_id": str(contact.id)}, form=submitted_untouched(form)
    )
    targets = db.execute(
        select(RecordRelation.to_record_id).where(RecordRelation.from_record_id == contact.id)
    ).scalars()
    assert list(targets) == [second.id]


def test_address_parts_are_gathered_from_the_event() -> None:
    form = parse_form_inputs(
        {
            "formInputs": {
                "address.0": {"stringInputs": {"value": ["1 Main St"]}},
                "address.1": {"stringInputs": {"value": ["Springfield"]}},
                "address.4": {"stringInputs": {"value": ["US"]}},
                "first_name": {"stringInputs": {"value": ["Ann"]}},
            }
        }
    )
    assert form == {"address": ["1 Main St", "Springfield", "", "", "US"], "first_name": ["Ann"]}


def test_an_address_typed_in_parts_is_stored_structured(
    typed_contacts: Crm, addon: AddonClient, db: Session
) -> None:
    data = addon.action(
        "create_record",
        parameters={"folder": "contacts"},
        form={
            "first_name": "Ann",
            "address.0": "1 Main St",
            "address.1": "Springfield",
            "address.2": "IL",
            "address.3": "62701",
            "address.4": "us",
        },
    )
    record_id = int(card_of(data)["name"].removeprefix("record-"))
    stored = values_of(db, db.get(Record, record_id))  # type: ignore[arg-type]
    assert stored["address"] == {
        "street": "1 Main St",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
    }


# ------------------------------------------------------------------------- bad input


def test_refused_input_shows_the_form_again_with_what_was_typed(
    typed_contacts: Crm, addon: AddonClient, db: Session
) -> None:
    record = full_contact(typed_contacts)
    before = row_counts(db)
    before_values = values_of(db, record)
    typed = {
        "first_name": "Anne",
        "score": "twelve",
        "emails": "broken@",
        "budget": "12 XYZ",
        "tags": ["silver", "bronze"],
        "vip": "true",
        "met_at": {"dateTimeInput": {"msSinceEpoch": str(JULY_MS + 3_600_000)}},
        "birthday": {"dateInput": {"msSinceEpoch": "1767225600000"}},
        "address.0": "Elm St 5",
        "address.4": "ZZ",
    }
    data = addon.action("update_record", parameters={"record_id": str(record.id)}, form=typed)
    form = card_of(data)
    shown = texts(form)
    assert "Nothing was saved" in shown
    assert "Score “twelve” is not a number" in shown
    assert "“broken@” is not a valid email address" in shown
    assert "“XYZ” is not a supported currency code" in shown
    assert "“ZZ” is not an ISO 3166 country code" in shown
    assert input_named(form, "first_name")[1]["value"] == "Anne"
    assert input_named(form, "score")[1]["value"] == "twelve"
    tags = input_named(form, "tags")[1]
    assert [i["value"] for i in tags["items"] if i["selected"]] == ["silver", "bronze"]
    assert input_named(form, "vip")[1]["selected"] is True
    assert input_named(form, "met_at")[1]["valueMsEpoch"] == str(JULY_MS + 3_600_000)
    assert input_named(form, "birthday")[1]["valueMsEpoch"] == "1767225600000"
    assert input_named(form, "address.0")[1]["value"] == "Elm St 5"
    assert input_named(form, "address.4")[1]["value"] == "ZZ"
    # Computed fields still show their stored values.
    assert "M-1" in shown
    assert row_counts(db) == before
    assert values_of(db, record) == before_values


def test_refused_create_shows_the_typed_form(
    typed_contacts: Crm, addon: AddonClient, db: Session
) -> None:
    before = row_counts(db)
    data = addon.action(
        "create_record",
        parameters={"folder": "contacts"},
        form={"first_name": "Ann", "discount": "lots", "vip": "true", "tags": ["bronze"]},
    )
    form = card_of(data)
    assert "Discount “lots” is not a number" in texts(form)
    assert input_named(form, "discount")[1]["value"] == "lots"
    assert input_named(form, "vip")[1]["selected"] is True
    tags = input_named(form, "tags")[1]
    assert [i["value"] for i in tags["items"] if i["selected"]] == ["bronze"]
    assert row_counts(db) == before


def test_a_choice_removed_by_an_admin_is_shown_not_dropped(
    typed_contacts: Crm, addon: AddonClient, db: Session
) -> None:
    record = typed_contacts.save("contacts", first_name="Ann", lifecycle_stage="lead")
    stage = next(
        f
        for f in folder_fields(db, typed_contacts.folders["contacts"].id)
        if f.key == "lifecycle_stage"
    )
    stage.options = {"choices": ["customer", "other"]}
    db.flush()
    dropdown = input_named(edit_form(addon, record), "lifecycle_stage")[1]
    selected = [i for i in dropdown["items"] if i["selected"]]
    assert [(i["value"], i["text"]) for i in selected] == [("lead", "lead (no longer a choice)")]


def test_every_form_passes_the_card_check_when_built_directly(
    typed_contacts: Crm, db: Session
) -> None:
    record = full_contact(typed_contacts)
    detail = load_detail(db, record)
    members = list(db.execute(select(Member)).scalars())
    form = record_form(
        Actions(BASE_URL),
        record.folder,
        detail.fields,
        members,
        values=detail.values,
        detail=detail,
        errors={"score": "is wrong", "_form": "Something else"},
        locale="de",
        tz="Europe/Berlin",
    )
    check_card(form)
    assert "Something else" in texts(form)


# ------------------------------------------------------------------ locale, time zone


def open_card(addon: AddonClient, record: Record, locale: str | None, zone: str | None) -> str:
    event = with_locale(addon, locale, zone, parameters={"record_id": str(record.id)})
    return texts(card_of(addon.post("/actions/open_record", event)))


def test_a_german_user_in_berlin_sees_german_formats(
    typed_contacts: Crm, addon: AddonClient
) -> None:
    record = full_contact(typed_contacts)
    shown = open_card(addon, record, "de", "Europe/Berlin")
    assert "1.234,50 EUR" in shown  # currency
    assert "1.234,50" in shown  # number with two decimals
    assert "12,5\u00a0%" in shown  # percent
    assert "14.06.1990" in shown  # date
    assert "01.07.2026 10:30 CEST" in shown  # date-time in Berlin
    assert "Ja" in shown  # checkbox
    assert "Hauptstr. 1, 10115 Berlin, DE" in shown  # postal code before the city


def test_an_american_user_in_new_york_sees_us_formats(
    typed_contacts: Crm, addon: AddonClient
) -> None:
    record = full_contact(typed_contacts)
    shown = open_card(addon, record, "en-US", "America/New_York")
    assert "1,234.50 EUR" in shown
    assert "Jun 14, 1990" in shown
    assert "Jul 1, 2026 4:30 AM EDT" in shown
    assert "Yes" in shown


def test_british_locale_and_paris_zone(typed_contacts: Crm, addon: AddonClient) -> None:
    record = full_contact(typed_contacts)
    shown = open_card(addon, record, "en-GB", "Europe/Paris")
    assert "14 Jun 1990" in shown and "1 Jul 2026 10:30 CEST" in shown


@pytest.mark.parametrize(
    ("locale", "zone"),
    [(None, None), ("", ""), ("<script>", "Mars/Olympus_Mons"), ("en-US", "../../etc/passwd")],
)
def test_missing_or_invalid_locale_and_zone_fall_back(
    typed_contacts: Crm, addon: AddonClient, locale: str | None, zone: str | None
) -> None:
    record = full_contact(typed_contacts)
    shown = open_card(addon, record, locale, zone)
    assert "Jul 1, 2026 8:30 AM UTC" in shown
    assert "1,234.50 EUR" in shown


def test_an_invalid_zone_falls_back_to_the_workspace_zone(
    typed_contacts: Crm, addon: AddonClient, db: Session
) -> None:
    record = full_contact(typed_contacts)
    typed_contacts.member.workspace.settings = {"timezone": "Asia/Tokyo"}
    db.flush()
    assert "Jul 1, 2026 5:30 PM JST" in open_card(addon, record, "en-US", "Nowhere/Special")
    # A zone from the event wins over the workspace's.
    assert "Jul 1, 2026 4:30 AM EDT" in open_card(addon, record, "en-US", "America/New_York")


def test_locale_and_zone_readers() -> None:
    assert user_locale({"userLocale": "fr-FR"}) == "fr-FR"
    assert user_locale({"userLocale": "pt_BR"}) == "pt-BR"
    assert user_locale({"userLocale": 42}) == "en"
    assert user_locale({"userLocale": "x" * 40}) == "en"
    assert user_timezone({"timeZone": {"id": "Europe/Berlin", "offset": 7200000}}, {}) == (
        "Europe/Berlin"
    )
    assert user_timezone({"timeZone": "Europe/Berlin"}, {"timezone": "Asia/Tokyo"}) == "Asia/Tokyo"
    assert user_timezone({"timeZone": {"id": "Bad/Zone"}}, {"timezone": "Bad/Too"}) == "UTC"
    assert user_timezone({}, None) == "UTC"


def test_notes_are_timestamped_in_the_user_zone(
    typed_contacts: Crm, addon: AddonClient, db: Session
) -> None:
    record = typed_contacts.save("contacts", first_name="Ann")
    addon.action("create_note", parameters={"record_id": str(record.id)}, form={"body": "Hi"})
    shown = open_card(addon, record, "de", "Europe/Berlin")
    assert re.search(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2} CES?T", shown), shown


def test_the_edit_form_shows_computed_values_in_the_user_locale(
    typed_contacts: Crm, addon: AddonClient
) -> None:
    record = full_contact(typed_contacts)
    event = with_locale(addon, "de", "Europe/Berlin", parameters={"record_id": str(record.id)})
    form = card_of(addon.post("/actions/edit_record", event))
    assert "2.469" in texts(form)  # the formula, grouped the German way
    # Inputs keep the canonical form, which reads back the same in every locale.
    assert input_named(form, "score")[1]["value"] == "1234.5"


def test_stored_values_survive_the_round_trip_in_another_locale(
    typed_contacts: Crm, addon: AddonClient, db: Session
) -> None:
    record = full_contact(typed_contacts)
    before = values_of(db, record)
    event = with_locale(addon, "de", "Europe/Berlin", parameters={"record_id": str(record.id)})
    form = card_of(addon.post("/actions/edit_record", event))
    save = with_locale(
        addon,
        "de",
        "Europe/Berlin",
        parameters={"record_id": str(record.id)},
        form=submitted_untouched(form),
    )
    addon.post("/actions/update_record", save)
    assert values_of(db, record) == before
    rows = db.execute(select(func.count()).select_from(FieldValue)).scalar_one()
    assert rows > 0


def test_the_contextual_card_shows_deal_amounts_in_the_user_locale(
    crm: Crm, addon: AddonClient, gmail: FakeGmail
) -> None:
    ada = crm.save("contacts", first_name="Ada", emails="ada@globex.com")
    crm.save("deals", name="Renewal", amount="12000.5 USD", contacts=f"#{ada.id}")
    gmail.add(
        FakeMessage("msg-1", "thr-1", headers=[("From", "Ada <ada@globex.com>"), ("Subject", "Hi")])
    )
    opened = {"messageId": "msg-1", "threadId": "thr-1", "accessToken": "token"}
    german = texts(
        card_of(
            addon.post("/gmail/message", with_locale(addon, "de", "Europe/Berlin", gmail=opened))
        )
    )
    assert "12.000,50 USD" in german
    english = texts(
        card_of(addon.post("/gmail/message", with_locale(addon, None, None, gmail=opened)))
    )
    assert "12,000.50 USD" in english
