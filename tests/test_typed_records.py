"""Typed custom fields through the records service: auto-numbers, formulas, keys, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.crm.audit import record_history
from addon.crm.models import FieldValue
from addon.crm.records import ValidationError, load_detail, save_record
from tests.crmdata import Crm, add_field


def test_auto_numbers_formulas_and_view_keys(crm: Crm, db: Session) -> None:
    deals = crm.folders["deals"]
    number = add_field(db, deals, "ticket", "autonumber", prefix="D-")
    add_field(db, deals, "probability", "percent")
    add_field(db, deals, "weighted", "formula", expression="amount * probability")
    first = crm.save("deals", name="One", amount="1000 EUR", probability="25%")
    second = crm.save("deals", name="Two", amount="10", probability="50")
    first_values = load_detail(db, first).values
    assert (first_values["ticket"], load_detail(db, second).values["ticket"]) == (1, 2)
    # A percent is a fraction inside formulas: 1000 x 25 % = 250.
    assert first_values["weighted"] == "250"
    row = db.scalar(
        select(FieldValue).where(FieldValue.record_id == first.id, FieldValue.field_id == number.id)
    )
    assert row is not None and row.num_key == 1.0
    # Recomputed when an operand changes; auto-numbers cannot be typed in.
    save_record(db, crm.member, deals, {"probability": ["10"]}, first)
    assert load_detail(db, first).values["weighted"] == "100"
    with pytest.raises(ValidationError) as refused:
        save_record(db, crm.member, deals, {"ticket": ["99"]}, first)
    assert "ticket" in refused.value.errors


def test_required_custom_fields_are_enforced_and_named(crm: Crm, db: Session) -> None:
    contacts = crm.folders["contacts"]
    region = add_field(db, contacts, "region", "dropdown", choices=["EMEA", "APAC"])
    region.required = True
    db.flush()
    with pytest.raises(ValidationError) as refused:
        crm.save("contacts", first_name="Ann", emails="ann@x.com")
    assert refused.value.errors == {"region": "is required"}
    ann = crm.save("contacts", first_name="Ann", emails="ann@x.com", region="EMEA")
    with pytest.raises(ValidationError):
        save_record(db, crm.member, contacts, {"region": [""]}, ann)


def test_every_change_is_audited_with_before_and_after(crm: Crm, db: Session) -> None:
    contacts = crm.folders["contacts"]
    ann = crm.save("contacts", first_name="Ann", emails="ann@x.com")
    save_record(db, crm.member, contacts, {"job_title": ["CTO"], "first_name": ["Ann"]}, ann)
    update, create = record_history(db, ann.workspace_id, ann.id)
    assert (create.action, update.action) == ("create", "update")
    assert create.after is not None and create.after["emails"] == ["ann@x.com"]
    # Only what changed: the unchanged first name is not listed.
    assert update.before == {"job_title": None}
    assert update.after == {"job_title": "CTO"}
    assert update.actor_id == crm.member.id
