"""Mass update: the service (set, clear, add; all or nothing; cap; changed views; audit) and
the actions end to end (form, preview, apply, roles, other workspaces)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Connection, func, insert, select
from sqlalchemy.orm import Session

from addon.crm.massupdate import (
    MAX_RECORDS,
    MassUpdateError,
    apply_mass_update,
    preview_mass_update,
)
from addon.crm.models import AuditEntry, FieldValue, Member, Record, SavedView
from addon.crm.records import load_detail, save_record, value_keys
from addon.crm.structure import add_folder
from addon.crm.views import save_view
from addon.crm.workspaces import folder_fields, resolve_member
from tests.cardread import card_of, texts
from tests.crmdata import Crm, add_field
from tests.dbstate import StatementCounter, row_counts
from tests.google_fakes import AddonClient

# ----------------------------------------------------------------------------- helpers


def make_view(
    crm: Crm, folder: str, *conditions: tuple[str, str, str], name: str = "Segment"
) -> SavedView:
    """A shared view over a folder with these (field, op, value) conditions."""
    definition = {"conditions": [{"field": f, "op": o, "value": v} for f, o, v in conditions]}
    return save_view(crm.db, crm.member, crm.folders[folder], name, definition, shared=True)


def value(db: Session, record: Record, key: str) -> Any:
    db.expire_all()
    detail = load_detail(db, record)
    if key in detail.links:
        return [r.id for r in detail.links[key]]
    return detail.values.get(key)


def teammate(crm: Crm, email: str, role: str = "rep") -> Member:
    member = resolve_member(crm.db, "acme.test", email, is_consumer=False)
    member.role = role
    crm.db.flush()
    return member


def audits(db: Session, action: str) -> list[AuditEntry]:
    return list(
        db.execute(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        .scalars()
        .all()
    )


def tag(crm: Crm) -> SavedView:
    """A view of the contacts tagged "team"."""
    return make_view(crm, "contacts", ("job_title", "equals", "team"))


@pytest.fixture
def team(crm: Crm, db: Session) -> list[Record]:
    """Three contacts of the "team" view, with custom fields of the types mass update uses."""
    contacts = crm.folders["contacts"]
    add_field(db, contacts, "score", "number")
    add_field(db, contacts, "budget", "currency", default_currency="EUR")
    add_field(db, contacts, "met_at", "datetime")
    add_field(db, contacts, "birthday", "date")
    add_field(db, contacts, "vip", "checkbox")
    add_field(db, contacts, "tags", "multidropdown", choices=["gold", "silver", "bronze"])
    add_field(db, contacts, "profiles", "social")
    add_field(db, contacts, "member_no", "autonumber")
    add_field(db, contacts, "doubled", "formula", expression="score * 2")
    add_field(db, contacts, "sent", "stats", metric="emails_sent")
    return [
        crm.save("contacts", first_name="Ann", emails="ann@x.test", job_title="team", tags="gold"),
        crm.save("contacts", first_name="Bob", emails="bob@x.test", job_title="team", score="1"),
        crm.save("contacts", first_name="Cat", phones="+1 650 253 0000", job_title="team"),
    ]


# ------------------------------------------------------------------------ set and clear

SETS: list[tuple[str, str | list[str], Any]] = [
    ("lifecycle_stage", "Customer", "customer"),
    ("last_name", "  Smith   Jones ", "Smith Jones"),
    ("score", "1,250.5", "1250.5"),
    ("budget", "€1.250,50", {"amount": "1250.50", "currency": "EUR"}),
    ("birthday", "2026-03-01", "2026-03-01"),
    ("met_at", "1782894600000", "2026-07-01T08:30:00Z"),
    ("vip", "yes", True),
    ("vip", "false", False),
    ("tags", ["silver", "gold"], ["gold", "silver"]),
    ("emails", "Team@Example.ORG", ["team@example.org"]),
    ("phones", "+49 30 901820", ["+4930901820"]),
    ("profiles", "github.com/Acme", {"github": "https://github.com/acme"}),
]


@pytest.mark.parametrize(
    ("key", "raw", "stored"), SETS, ids=[f"{k}-{i}" for i, (k, *_) in enumerate(SETS)]
)
def test_set_parses_once_and_writes_every_record(
    crm: Crm, db: Session, team: list[Record], key: str, raw: str | list[str], stored: Any
) -> None:
    view = tag(crm)
    preview = preview_mass_update(db, crm.member, view, key, "set", raw)
    assert preview.ok and preview.count == 3 and preview.value == stored
    result = apply_mass_update(db, crm.member, view, key, "set", raw, 3)
    assert result.count == 3
    assert all(value(db, r, key) == stored for r in team)


def test_set_user_and_link_fields(crm: Crm, db: Session, team: list[Record]) -> None:
    bob = teammate(crm, "bob@acme.test")
    globex = crm.save("companies", name="Globex")
    view = tag(crm)
    preview = preview_mass_update(db, crm.member, view, "owner", "set", "bob@acme.test")
    assert preview.sentence() == "set Owner to bob@acme.test on 3 contacts"
    apply_mass_update(db, crm.member, view, "owner", "set", f"#{bob.id}", 3)
    apply_mass_update(db, crm.member, view, "company", "set", "globex", 3)
    assert [value(db, r, "owner") for r in team] == [bob.id] * 3
    assert [value(db, r, "company") for r in team] == [[globex.id]] * 3


def test_a_link_to_a_missing_record_is_refused_not_created(
    crm: Crm, db: Session, team: list[Record]
) -> None:
    view = tag(crm)
    before = row_counts(db)
    preview = preview_mass_update(db, crm.member, view, "company", "set", "Typo Inc")
    assert preview.error == "Company: no company “Typo Inc” in this workspace"
    with pytest.raises(MassUpdateError):
        apply_mass_update(db, crm.member, view, "company", "set", "Typo Inc", 3)
    assert row_counts(db) == before


@pytest.mark.parametrize("key", ["lifecycle_stage", "tags", "score", "vip", "company", "owner"])
def test_clear_empties_every_record(crm: Crm, db: Session, team: list[Record], key: str) -> None:
    view = tag(crm)
    crm.save("companies", name="Globex")
    filler = {
        "lifecycle_stage": "lead",
        "tags": "bronze",
        "score": "7",
        "vip": "yes",
        "company": "Globex",
        "owner": crm.member.email,
    }[key]
    apply_mass_update(db, crm.member, view, key, "set", filler, 3)
    preview = preview_mass_update(db, crm.member, view, key, "clear", "ignored")
    assert preview.ok and preview.sentence().startswith("clear ")
    result = apply_mass_update(db, crm.member, view, key, "clear", None, 3)
    assert result.changed == 3
    assert all(value(db, r, key) in (None, []) for r in team)


# ------------------------------------------------------------------------------- add


def test_add_to_multi_valued_fields(crm: Crm, db: Session, team: list[Record]) -> None:
    ann, bob, cat = team
    view = tag(crm)
    result = apply_mass_update(db, crm.member, view, "tags", "add", ["silver"], 3)
    assert result.changed == 3
    # The choices stay in the admin's order, existing ones kept.
    assert [value(db, r, "tags") for r in team] == [["gold", "silver"], ["silver"], ["silver"]]
    apply_mass_update(db, crm.member, view, "emails", "add", "shared@x.test", 3)
    assert value(db, ann, "emails") == ["ann@x.test", "shared@x.test"]
    assert value(db, cat, "emails") == ["shared@x.test"]
    apply_mass_update(db, crm.member, view, "phones", "add", "+33 1 23 45 67 89", 3)
    assert value(db, cat, "phones") == ["+16502530000", "+33123456789"]
    apply_mass_update(db, crm.member, view, "profiles", "add", "linkedin.com/in/acme", 3)
    assert value(db, bob, "profiles") == {"linkedin": "https://www.linkedin.com/in/acme"}
    # Adding what every record already holds changes nothing.
    again = apply_mass_update(db, crm.member, view, "tags", "add", ["silver"], 3)
    assert again.changed == 0


def test_add_to_a_many_link(crm: Crm, db: Session, team: list[Record]) -> None:
    ann, bob, _ = team
    deal = crm.save("deals", name="Pilot", contacts=f"#{ann.id}")
    other = crm.save("deals", name="Rollout")
    view = make_view(crm, "deals", ("name", "is_not_empty", ""))
    apply_mass_update(db, crm.member, view, "contacts", "add", f"#{bob.id}", 2)
    assert sorted(value(db, deal, "contacts")) == sorted([ann.id, bob.id])
    assert value(db, other, "contacts") == [bob.id]


@pytest.mark.parametrize("key", ["lifecycle_stage", "owner", "company", "score"])
def test_add_is_refused_for_single_valued_fields(
    crm: Crm, db: Session, team: list[Record], key: str
) -> None:
    view = tag(crm)
    preview = preview_mass_update(db, crm.member, view, key, "add", "x")
    assert preview.error is not None and "holds one value" in preview.error
    before = row_counts(db)
    with pytest.raises(MassUpdateError, match="use Set"):
        apply_mass_update(db, crm.member, view, key, "add", "x", 3)
    assert row_counts(db) == before


# --------------------------------------------------------------------- refusals, rules


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("member_no", "assigned automatically"),
        ("doubled", "calculated from a formula"),
        ("sent", "computed from email activity"),
    ],
)
def test_computed_fields_are_refused(
    crm: Crm, db: Session, team: list[Record], key: str, reason: str
) -> None:
    view = tag(crm)
    assert reason in str(preview_mass_update(db, crm.member, view, key, "set", "5").error)
    with pytest.raises(MassUpdateError, match=reason):
        apply_mass_update(db, crm.member, view, key, "clear", None, 3)


def test_an_invalid_value_is_refused_before_anything_is_written(
    crm: Crm, db: Session, team: list[Record]
) -> None:
    view = tag(crm)
    before = row_counts(db)
    for key, raw, message in [
        ("score", "lots", "Score “lots” is not a number"),
        ("emails", "nope@", "is not a valid email address"),
        ("lifecycle_stage", "vip", "“vip” is not one of"),
        ("owner", "stranger@else.test", "is not a member of this workspace"),
        ("score", "", "Enter a value for Score (or choose Clear to empty it)"),
        ("nonexistent", "x", "Choose a field to update"),
    ]:
        preview = preview_mass_update(db, crm.member, view, key, "set", raw)
        assert not preview.ok and message in str(preview.error), (key, preview.error)
        with pytest.raises(MassUpdateError):
            apply_mass_update(db, crm.member, view, key, "set", raw, 3)
    with pytest.raises(MassUpdateError, match="set, clear or add"):
        apply_mass_update(db, crm.member, view, "score", "multiply", "2", 3)
    assert row_counts(db) == before


def test_clearing_a_required_field_fails_naming_the_record_and_writes_nothing(
    crm: Crm, db: Session, team: list[Record]
) -> None:
    fields = {f.key: f for f in folder_fields(db, crm.folders["contacts"].id)}
    fields["lifecycle_stage"].required = True
    db.flush()
    for record in team:
        save_record(db, crm.member, crm.folders["contacts"], {"lifecycle_stage": ["lead"]}, record)
    view = tag(crm)
    before = row_counts(db)
    with pytest.raises(MassUpdateError) as refused:
        apply_mass_update(db, crm.member, view, "lifecycle_stage", "clear", None, 3)
    assert str(refused.value) == (
        f"Ann (#{team[0].id}) cannot be updated: Lifecycle stage is required. Nothing was changed."
    )
    assert row_counts(db) == before
    assert [value(db, r, "lifecycle_stage") for r in team] == ["lead"] * 3


def test_a_record_failing_midway_rolls_back_the_ones_before(
    crm: Crm, db: Session, team: list[Record]
) -> None:
    ann, bob, cat = team
    # Region becomes required after the contacts exist; only Bob lacks it.
    region = add_field(db, crm.folders["contacts"], "region", "text")
    for record in (ann, cat):
        save_record(db, crm.member, crm.folders["contacts"], {"region": ["EMEA"]}, record)
    region.required = True
    db.flush()
    view = tag(crm)
    before = row_counts(db)
    with pytest.raises(MassUpdateError, match=rf"Bob \(#{bob.id}\) cannot be updated: Region"):
        apply_mass_update(db, crm.member, view, "score", "set", "99", 3)
    # Ann was saved before Bob was refused, and is rolled back with everything else.
    assert value(db, ann, "score") is None
    assert row_counts(db) == before
    assert audits(db, "mass_update") == []


def test_the_view_changing_between_preview_and_apply_is_refused(
    crm: Crm, db: Session, team: list[Record]
) -> None:
    view = tag(crm)
    assert preview_mass_update(db, crm.member, view, "score", "set", "5").count == 3
    crm.save("contacts", first_name="Dan", job_title="team")
    before = row_counts(db)
    with pytest.raises(MassUpdateError) as refused:
        apply_mass_update(db, crm.member, view, "score", "set", "5", 3)
    assert str(refused.value) == "the view changed: 4 records now, not 3; preview again"
    assert row_counts(db) == before


def test_more_than_ten_thousand_records_are_refused(crm: Crm, db: Session) -> None:
    folder = add_folder(db, crm.member, "Tickets")
    db.execute(
        insert(Record),
        [
            {"workspace_id": folder.workspace_id, "folder_id": folder.id, "title": f"T{i}"}
            for i in range(MAX_RECORDS + 1)
        ],
    )
    view = save_view(db, crm.member, folder, "All tickets", {"conditions": []}, shared=True)
    preview = preview_mass_update(db, crm.member, view, "name", "set", "Closed")
    assert preview.error == (
        "The view holds 10,001 records; a mass update changes at most 10,000 at a time. "
        "Narrow the view with another condition."
    )
    with pytest.raises(MassUpdateError, match="at most 10,000"):
        apply_mass_update(db, crm.member, view, "name", "set", "Closed", MAX_RECORDS + 1)


def test_another_workspace_view_is_refused(crm: Crm, db: Session, team: list[Record]) -> None:
    spy = resolve_member(db, "rival.test", "spy@rival.test", is_consumer=False)
    view = tag(crm)
    before = row_counts(db)
    with pytest.raises(MassUpdateError, match="this view does not exist"):
        apply_mass_update(db, spy, view, "score", "set", "1", 3)
    assert row_counts(db) == before


# ----------------------------------------------------------------------- scale, audit


def test_reassigning_the_owner_of_a_thousand_contacts(
    crm: Crm, db: Session, connection: Connection
) -> None:
    bob = teammate(crm, "bob@acme.test")
    carol = teammate(crm, "carol@acme.test")
    contacts = crm.folders["contacts"]
    by_key = {f.key: f for f in folder_fields(db, contacts.id)}
    # 1,000 contacts of Bob's, written in bulk with the keys save_record would give them.
    ids = (
        db.execute(
            insert(Record).returning(Record.id),
            [
                {
                    "workspace_id": contacts.workspace_id,
                    "folder_id": contacts.id,
                    "title": f"Person {i}",
                    "search_key": f"person {i}",
                }
                for i in range(1000)
            ],
        )
        .scalars()
        .all()
    )
    rows = []
    for record_id, (key, stored) in (
        (rid, item) for rid in ids for item in (("first_name", "Person"), ("owner", bob.id))
    ):
        text_key, num_key = value_keys(by_key[key], stored)
        rows.append(
            {
                "workspace_id": contacts.workspace_id,
                "record_id": record_id,
                "field_id": by_key[key].id,
                "value": stored,
                "text_key": text_key,
                "num_key": num_key,
            }
        )
    db.execute(insert(FieldValue), rows)
    crm.save("contacts", first_name="Kept", owner=f"#{carol.id}")
    view = make_view(crm, "contacts", ("owner", "equals", "bob@acme.test"), name="Bob's")
    preview = preview_mass_update(db, crm.member, view, "owner", "set", "carol@acme.test")
    assert preview.sentence() == "set Owner to carol@acme.test on 1,000 contacts"
    with StatementCounter(connection) as counter:
        result = apply_mass_update(db, crm.member, view, "owner", "set", f"#{carol.id}", 1000)
    assert (result.count, result.changed) == (1000, 1000)
    # The folder's fields are read a handful of times for the plan, not once per record.
    assert sum("FROM field_defs" in sql for sql in counter.statements) < 10
    owners = db.execute(
        select(func.count()).select_from(Record).where(Record.folder_id == contacts.id)
    ).scalar_one()
    assert owners == 1001
    assert preview_mass_update(db, crm.member, view, "owner", "clear", None).count == 0
    # One audit entry per record, naming the change, and one summary.
    updates = audits(db, "update")
    assert len(updates) == 1000
    assert updates[0].before == {"owner": bob.id} and updates[0].after == {"owner": carol.id}
    assert "(mass update)" in updates[0].summary
    (summary,) = audits(db, "mass_update")
    assert summary.actor_id == crm.member.id and summary.folder_id == contacts.id
    assert summary.after == {
        "view_id": view.id,
        "view": "Bob's",
        "field": "owner",
        "mode": "set",
        "value": carol.id,
        "value_text": "carol@acme.test",
        "count": 1000,
        "changed": 1000,
    }
    assert summary.summary == (
        "Mass update of view “Bob's”: set Owner to carol@acme.test on 1,000 contacts "
        "(1,000 changed)"
    )


def test_records_that_already_hold_the_value_are_left_alone(
    crm: Crm, db: Session, team: list[Record]
) -> None:
    view = tag(crm)
    apply_mass_update(db, crm.member, view, "score", "set", "1", 3)
    updates = [a for a in audits(db, "update") if a.after == {"score": "1", "doubled": "2"}]
    # Bob had score 1 already: only Ann and Cat were changed.
    assert {a.record_id for a in updates} == {team[0].id, team[2].id}
    (summary,) = audits(db, "mass_update")
    assert summary.after is not None and summary.after["changed"] == 2


# ------------------------------------------------------------------------ the actions


def action_params(card: dict[str, Any], text: str) -> dict[str, str]:
    """The parameters of the button with this text."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("text") == text and "onClick" in node:
                found.append(node["onClick"]["action"])
            for val in node.values():
                walk(val)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(card)
    assert found, f"no button {text!r}"
    return {p["key"]: p["value"] for p in found[0].get("parameters", [])}


def selection(card: dict[str, Any], name: str) -> dict[str, Any]:
    for sec in card["sections"]:
        for widget in sec["widgets"]:
            body = widget.get("selectionInput")
            if body is not None and body["name"] == name:
                return dict(body)
    raise AssertionError(f"no selection input {name!r}")


def client_with_role(addon: AddonClient, db: Session, email: str, role: str) -> AddonClient:
    client = AddonClient(addon.client, addon.tokens, user=email, hd="acme.test")
    client.post("/homepage")
    member = db.execute(select(Member).where(Member.email == email)).scalar_one()
    member.role = role
    db.flush()
    return client


@pytest.fixture
def acme(addon: AddonClient, crm: Crm, db: Session) -> tuple[SavedView, list[Record], Member]:
    """The "team" view of three contacts, and Bob, a member to hand them to."""
    bob = teammate(crm, "bob@acme.test")
    people = [
        crm.save("contacts", first_name=name, job_title="team") for name in ("Ann", "Bob", "Cat")
    ]
    return tag(crm), people, bob


def test_form_preview_apply_end_to_end(
    addon: AddonClient, db: Session, acme: tuple[SavedView, list[Record], Member]
) -> None:
    view, people, bob = acme
    vid = str(view.id)
    data = addon.action("mass_update_form", parameters={"view_id": vid})
    form = card_of(data)
    assert "pushCard" in data["renderActions"]["action"]["navigations"][0]
    assert "3 contacts now" in texts(form)
    field = selection(form, "field")
    assert field["onChangeAction"]["function"].endswith("/actions/mass_update_form")
    assert ("owner", "Owner") in {(i["value"], i["text"]) for i in field["items"]}
    assert "member_no" not in {i["value"] for i in field["items"]}
    # Choosing the field redraws the form with a dropdown of the members.
    data = addon.action(
        "mass_update_form", parameters={"view_id": vid, "nav": "update"}, form={"field": "owner"}
    )
    form = card_of(data)
    assert "updateCard" in data["renderActions"]["action"]["navigations"][0]
    members = selection(form, "value")
    assert ("#" + str(bob.id), "bob@acme.test") in {
        (i["value"], i["text"]) for i in members["items"]
    }
    assert [i["value"] for i in selection(form, "mode")["items"]] == ["set", "clear"]
    preview = card_of(
        addon.action(
            "mass_update_preview",
            parameters={"view_id": vid},
            form={"field": "owner", "mode": "set", "value": f"#{bob.id}"},
        )
    )
    assert "This will set Owner to bob@acme.test on 3 contacts." in texts(preview)
    apply = action_params(preview, "Apply")
    assert apply["count"] == "3" and json.loads(apply["value"]) == [f"#{bob.id}"]
    # Back shows the form again, filled in.
    back = card_of(addon.action("mass_update_form", parameters=action_params(preview, "Back")))
    assert [i["value"] for i in selection(back, "value")["items"] if i["selected"]] == [
        f"#{bob.id}"
    ]
    data = addon.action("mass_update_apply", parameters=apply)
    assert data["stateChanged"] is True
    assert data["renderActions"]["action"]["notification"]["text"] == "Updated 3 contacts"
    result = card_of(data)
    assert "Set Owner to bob@acme.test" in texts(result)
    assert "“Segment” now holds 3 contacts." in texts(result)
    assert all(value(db, r, "owner") == bob.id for r in people)


def test_an_invalid_value_shows_the_form_with_the_message(
    addon: AddonClient, db: Session, acme: tuple[SavedView, list[Record], Member]
) -> None:
    view, _, _ = acme
    before = row_counts(db)
    form = card_of(
        addon.action(
            "mass_update_preview",
            parameters={"view_id": str(view.id)},
            form={"field": "emails", "mode": "add", "value": "not-an-email"},
        )
    )
    shown = texts(form)
    assert "Emails “not-an-email” is not a valid email address" in shown
    assert "not-an-email" in shown  # what was typed is kept
    assert row_counts(db) == before


def test_apply_after_the_view_changed_shows_the_form_and_writes_nothing(
    addon: AddonClient, crm: Crm, db: Session, acme: tuple[SavedView, list[Record], Member]
) -> None:
    view, _people, bob = acme
    crm.save("contacts", first_name="Dan", job_title="team")
    before = row_counts(db)
    params = {
        "view_id": str(view.id),
        "field": "owner",
        "mode": "set",
        "value": json.dumps([f"#{bob.id}"]),
        "count": "3",
    }
    form = card_of(addon.action("mass_update_apply", parameters=params))
    assert "The view changed: 4 records now, not 3; preview again" in texts(form)
    assert row_counts(db) == before
    for bad_count in ("", "many", "9" * 12):
        refused = card_of(
            addon.action("mass_update_apply", parameters={**params, "count": bad_count})
        )
        assert "preview again" in texts(refused).lower()
    assert row_counts(db) == before


def test_a_record_breaking_a_rule_is_named_in_the_form(
    addon: AddonClient, crm: Crm, db: Session, acme: tuple[SavedView, list[Record], Member]
) -> None:
    view, people, _ = acme
    fields = {f.key: f for f in folder_fields(db, crm.folders["contacts"].id)}
    fields["job_title"].required = True
    db.flush()
    before = row_counts(db)
    params = {
        "view_id": str(view.id),
        "field": "job_title",
        "mode": "clear",
        "value": "[]",
        "count": "3",
    }
    form = card_of(addon.action("mass_update_apply", parameters=params))
    assert f"Ann (#{people[0].id}) cannot be updated: Job title is required" in texts(form)
    assert row_counts(db) == before


@pytest.mark.parametrize("role", ["rep", "viewer"])
@pytest.mark.parametrize("name", ["mass_update_form", "mass_update_preview", "mass_update_apply"])
def test_reps_and_viewers_may_not_mass_update(
    addon: AddonClient,
    db: Session,
    acme: tuple[SavedView, list[Record], Member],
    role: str,
    name: str,
) -> None:
    view, _people, bob = acme
    client = client_with_role(addon, db, f"{role}@acme.test", role)
    before = row_counts(db)
    data = client.action(
        name,
        parameters={
            "view_id": str(view.id),
            "field": "owner",
            "mode": "set",
            "value": json.dumps([f"#{bob.id}"]),
            "count": "3",
        },
        form={"field": "owner", "mode": "set", "value": f"#{bob.id}"},
    )
    assert f"Your role ({role}) does not allow you to mass update records." in texts(card_of(data))
    assert row_counts(db) == before


def test_a_manager_may_mass_update(
    addon: AddonClient, db: Session, acme: tuple[SavedView, list[Record], Member]
) -> None:
    view, people, _bob = acme
    manager = client_with_role(addon, db, "boss@acme.test", "manager")
    params = {
        "view_id": str(view.id),
        "field": "lifecycle_stage",
        "mode": "set",
        "value": '["lead"]',
        "count": "3",
    }
    data = manager.action("mass_update_apply", parameters=params)
    assert data["renderActions"]["action"]["notification"]["text"] == "Updated 3 contacts"
    assert all(value(db, r, "lifecycle_stage") == "lead" for r in people)


@pytest.mark.parametrize("name", ["mass_update_form", "mass_update_preview", "mass_update_apply"])
def test_another_workspace_cannot_use_the_view(
    other_tenant: AddonClient,
    db: Session,
    acme: tuple[SavedView, list[Record], Member],
    name: str,
) -> None:
    view, _people, bob = acme
    other_tenant.post("/homepage")
    spy = db.execute(select(Member).where(Member.email == "spy@rival.test")).scalar_one()
    spy.role = "admin"
    db.flush()
    before = row_counts(db)
    params = {
        "view_id": str(view.id),
        "field": "owner",
        "mode": "set",
        "value": json.dumps([f"#{bob.id}"]),
        "count": "3",
    }
    foreign = other_tenant.action(name, parameters=params, form={"field": "owner"}, expect=403)
    unknown = other_tenant.action(
        name, parameters={**params, "view_id": "999999"}, form={"field": "owner"}, expect=403
    )
    assert foreign == unknown == {"error": "record not found in your workspace"}
    assert row_counts(db) == before


def test_someone_else_s_personal_view_looks_missing(
    addon: AddonClient, crm: Crm, db: Session, acme: tuple[SavedView, list[Record], Member]
) -> None:
    boss = teammate(crm, "boss@acme.test", "manager")
    private = save_view(
        db,
        boss,
        crm.folders["contacts"],
        "Mine",
        {"conditions": [{"field": "job_title", "op": "equals", "value": "team"}]},
        shared=False,
    )
    addon.action("mass_update_form", parameters={"view_id": str(private.id)}, expect=403)


def test_the_form_lists_only_what_fits_the_field(
    addon: AddonClient, db: Session, crm: Crm, acme: tuple[SavedView, list[Record], Member]
) -> None:
    view, people, _ = acme
    add_field(db, crm.folders["contacts"], "tags", "multidropdown", choices=["gold", "silver"])
    add_field(db, crm.folders["contacts"], "vip", "checkbox")
    add_field(db, crm.folders["contacts"], "met_at", "datetime")
    vid = str(view.id)

    def redraw(field: str) -> dict[str, Any]:
        return card_of(
            addon.action(
                "mass_update_form",
                parameters={"view_id": vid, "nav": "update"},
                form={"field": field},
            )
        )

    tags = redraw("tags")
    assert [i["value"] for i in selection(tags, "mode")["items"]] == ["set", "clear", "add"]
    assert selection(tags, "value")["type"] == "MULTI_SELECT"
    vip = selection(redraw("vip"), "value")
    assert [(i["value"], i["text"]) for i in vip["items"]][1:] == [("true", "Yes"), ("false", "No")]
    stage = selection(redraw("lifecycle_stage"), "value")
    assert "customer" in {i["value"] for i in stage["items"]}
    met = redraw("met_at")
    pickers = [
        w["dateTimePicker"] for s in met["sections"] for w in s["widgets"] if "dateTimePicker" in w
    ]
    assert pickers[0]["type"] == "DATE_AND_TIME" and "timezoneOffsetDate" in pickers[0]
    # A multi-select value, previewed and applied through the cards.
    preview = card_of(
        addon.action(
            "mass_update_preview",
            parameters={"view_id": vid},
            form={"field": "tags", "mode": "add", "value": ["silver", "gold"]},
        )
    )
    assert "This will add gold, silver to Tags on 3 contacts." in texts(preview)
    addon.action("mass_update_apply", parameters=action_params(preview, "Apply"))
    assert [value(db, r, "tags") for r in people] == [["gold", "silver"]] * 3
    assert len(audits(db, "mass_update")) == 1
