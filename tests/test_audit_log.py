"""The audit log: every kind of change writes an entry; the admin card lists, filters, exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.admin.auditlog import PAGE_SIZE
from addon.admin.members import change_role
from addon.crm.audit import record_history
from addon.crm.deletion import delete_record
from addon.crm.exports import export_rows
from addon.crm.hygiene import merge_records
from addon.crm.imports import import_csv
from addon.crm.massupdate import apply_mass_update
from addon.crm.models import AuditEntry, Record
from addon.crm.records import add_note, link_thread, save_record, unlink_thread
from addon.crm.views import save_view
from addon.crm.workspaces import folders_by_key, resolve_member
from tests.admin_support import download, link_of, member, member_with_role
from tests.cardread import actions_in, card_of, navigations, texts
from tests.crmdata import Crm
from tests.dbstate import row_counts
from tests.google_fakes import AddonClient


def entries(db: Session) -> list[AuditEntry]:
    """Every audit entry, oldest first."""
    return list(db.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars())


def test_every_kind_of_change_writes_an_entry_with_actor_time_and_values(
    crm: Crm, db: Session
) -> None:
    me = crm.member
    ann = crm.save("contacts", first_name="Ann", last_name="Lee", emails="ann@lee.example")
    crm.save("contacts", first_name="Ann", last_name="Lee", emails="ann2@lee.example")
    bob = crm.save("contacts", first_name="Bob", lifecycle_stage="lead")
    save_record(db, me, crm.folders["contacts"], {"job_title": ["CTO"]}, ann)
    add_note(db, me, ann, "Met at the fair")
    link_thread(db, me, ann, "thread-1", "Pricing")
    unlink_thread(db, ann, "thread-1", me)
    view = save_view(
        db,
        me,
        crm.folders["contacts"],
        "Leads",
        {"conditions": [{"field": "lifecycle_stage", "op": "equals", "value": "lead"}]},
        shared=True,
    )
    apply_mass_update(db, me, view, "job_title", "set", ["Buyer"], 1)
    import_csv(db, me, crm.folders["contacts"], b"First name,Last name\nCy,Young\n")
    export_rows(db, me, crm.folders["contacts"])
    other = db.execute(
        select(Record).where(Record.title == "Ann Lee", Record.id != ann.id)
    ).scalar_one()
    merge_records(db, me, ann, [other])
    teammate = resolve_member(db, "acme.test", "tim@acme.test", is_consumer=False)
    change_role(db, me, teammate, "manager")
    delete_record(db, me, bob)
    db.flush()

    log = entries(db)
    actions = [e.action for e in log]
    for expected in (
        "create",
        "update",
        "note",
        "link_thread",
        "unlink_thread",
        "create_view",
        "mass_update",
        "import",
        "export",
        "merge",
        "role_change",
        "delete",
    ):
        assert expected in actions, expected
    for entry in log:
        assert entry.actor_id == me.id and entry.created_at is not None
        assert entry.summary
        assert entry.before is not None or entry.after is not None, entry.action
    update = next(e for e in log if e.action == "update" and e.record_id == ann.id)
    assert update.before == {"job_title": None} and update.after == {"job_title": "CTO"}
    mass = next(e for e in log if e.action == "update" and e.record_id == bob.id)
    assert mass.after == {"job_title": "Buyer"}
    deleted = next(e for e in log if e.action == "delete")
    assert deleted.record_id == bob.id and deleted.before
    assert deleted.before["first_name"] == "Bob" and deleted.before["job_title"] == "Buyer"
    role = next(e for e in log if e.action == "role_change")
    assert role.before == {"member": "tim@acme.test", "role": "rep"}
    # The record's history (the record timeline) has its entries, newest first.
    history = record_history(db, me.workspace_id, ann.id)
    assert {e.action for e in history} >= {"create", "update", "note", "link_thread", "merge"}
    assert history == sorted(history, key=lambda e: (e.created_at, e.id), reverse=True)
    # A deleted record keeps its history.
    assert record_history(db, me.workspace_id, bob.id)[0].action == "delete"


def test_deleting_a_record_from_its_card_asks_first(addon: AddonClient, db: Session) -> None:
    addon.post("/homepage")
    crm_member = member(db, "rep@acme.test")
    record = save_record(
        db,
        crm_member,
        folders_by_key(db, crm_member.workspace_id)["contacts"],
        {"first_name": ["Zed"]},
    )
    other = save_record(
        db,
        crm_member,
        folders_by_key(db, crm_member.workspace_id)["contacts"],
        {"first_name": ["Yo"]},
    )
    db.flush()
    card = card_of(addon.action("open_record", parameters={"record_id": str(record.id)}))
    assert {"name": "confirm_delete_record", "record_id": str(record.id)} in actions_in(card)
    confirm = card_of(
        addon.action("confirm_delete_record", parameters={"record_id": str(record.id)})
    )
    assert "Delete Zed?" in texts(confirm)
    data = addon.action("delete_record", parameters={"record_id": str(record.id), "confirm": "yes"})
    assert navigations(data) == ["popToRoot"]
    assert db.get(Record, record.id, populate_existing=True) is None
    # A rep may not delete, and sees no button.
    rep = member_with_role(addon, db, "sam@acme.test", "rep")
    card = card_of(rep.action("open_record", parameters={"record_id": str(other.id)}))
    assert "confirm_delete_record" not in {a["name"] for a in actions_in(card)}
    before = row_counts(db)
    refused = rep.action("delete_record", parameters={"record_id": str(other.id), "confirm": "yes"})
    assert "does not allow you to delete records" in texts(card_of(refused))
    assert row_counts(db) == before


def _seed_log(crm: Crm, db: Session, count: int) -> list[Record]:
    return [crm.save("contacts", first_name=f"P{i}") for i in range(count)]


def test_audit_card_lists_pages_and_filters(addon: AddonClient, db: Session) -> None:
    addon.post("/homepage")
    me = member(db, "rep@acme.test")
    crm = Crm(db, me, folders_by_key(db, me.workspace_id))
    records = _seed_log(crm, db, PAGE_SIZE + 5)
    sam = resolve_member(db, "acme.test", "sam@acme.test", is_consumer=False)
    change_role(db, me, sam, "viewer")
    db.flush()
    first = card_of(addon.action("admin_audit"))
    shown = texts(first)
    assert "Role of sam@acme.test: rep → viewer" in shown
    assert "Created P0" not in shown  # on the second page
    pager = [a for a in actions_in(first) if a["name"] == "admin_audit" and a.get("page") == "1"]
    assert pager
    second = card_of(addon.action("admin_audit", parameters={"page": "1", "nav": "update"}))
    assert "Created P0" in texts(second)
    # Filter by record.
    only = card_of(
        addon.action("admin_audit", parameters={"filter": "1"}, form={"record": str(records[3].id)})
    )
    lines = [w for s in only["sections"] for w in s["widgets"] if "decoratedText" in w]
    assert [w["decoratedText"]["text"] for w in lines] == ["Created P3 (sidebar)"]
    # Filter by action and actor.
    roles = card_of(
        addon.action(
            "admin_audit",
            parameters={"filter": "1"},
            form={"action": "role_change", "actor": "REP@acme.test"},
        )
    )
    lines = [w for s in roles["sections"] for w in s["widgets"] if "decoratedText" in w]
    assert len(lines) == 1 and "sam@acme.test" in lines[0]["decoratedText"]["text"]
    # The export buttons carry the filter.
    exports = [a for a in actions_in(roles) if a["name"] == "admin_audit_export"]
    assert {a["fmt"] for a in exports} == {"csv", "jsonl"}
    assert all(a["action"] == "role_change" and a["actor_id"] == str(me.id) for a in exports)
    # One entry's before and after.
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "role_change")).scalar_one()
    detail = texts(
        card_of(addon.action("admin_audit_entry", parameters={"entry_id": str(entry.id)}))
    )
    assert '"rep"' in detail and '"viewer"' in detail


def test_bad_filters_are_named_and_the_form_kept(addon: AddonClient, db: Session) -> None:
    addon.post("/homepage")
    card = card_of(
        addon.action("admin_audit", parameters={"filter": "1"}, form={"actor": "nobody@acme.test"})
    )
    assert "“nobody@acme.test” is not a member of this workspace." in texts(card)
    card = card_of(addon.action("admin_audit", parameters={"filter": "1"}, form={"record": "abc"}))
    assert "“abc” is not a record number." in texts(card) and "abc" in texts(card)
    card = card_of(
        addon.action("admin_audit", parameters={"filter": "1"}, form={"action": "explode"})
    )
    assert "“explode” is not an action in this log." in texts(card)


def test_audit_entries_of_another_workspace_stay_hidden(
    addon: AddonClient, other_tenant: AddonClient, db: Session
) -> None:
    other_tenant.post("/homepage")
    spy = member(db, "spy@rival.test")
    sam = resolve_member(db, "rival.test", "sam@rival.test", is_consumer=False)
    change_role(db, spy, sam, "viewer")
    db.flush()
    entry = db.execute(select(AuditEntry).where(AuditEntry.action == "role_change")).scalar_one()
    addon.post("/homepage")
    assert "sam@rival.test" not in texts(card_of(addon.action("admin_audit")))
    card = card_of(addon.action("admin_audit_entry", parameters={"entry_id": str(entry.id)}))
    assert "That audit entry is not in this workspace." in texts(card)
    card = card_of(
        addon.action("admin_audit", parameters={"filter": "1"}, form={"actor": str(spy.id)})
    )
    assert "is not a member of this workspace" in texts(card)


def test_audit_log_exports_as_csv_and_json_lines_and_the_export_is_audited(
    addon: AddonClient, db: Session
) -> None:
    addon.post("/homepage")
    me = member(db, "rep@acme.test")
    sam = resolve_member(db, "acme.test", "sam@acme.test", is_consumer=False)
    change_role(db, me, sam, "manager")
    db.flush()
    url = link_of(addon.action("admin_audit_export", parameters={"fmt": "jsonl"}))
    assert "sam" not in url and "role" not in url  # the token is encrypted
    response = download(addon.client, url)
    assert response.mimetype == "application/x-ndjson"
    assert response.headers["Cache-Control"] == "no-store"
    rows = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    role = next(r for r in rows if r["action"] == "role_change")
    assert role["actor"] == "rep@acme.test"
    assert role["before"] == {"member": "sam@acme.test", "role": "rep"}
    assert role["after"] == {"member": "sam@acme.test", "role": "manager"}
    # The export itself is logged, and the filtered CSV has only what was asked.
    assert (
        db.execute(
            select(AuditEntry).where(AuditEntry.action == "export", AuditEntry.actor_id == me.id)
        )
        .scalars()
        .all()
    )
    url = link_of(
        addon.action("admin_audit_export", parameters={"fmt": "csv", "action": "role_change"})
    )
    text = download(addon.client, url).get_data(as_text=True)
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["action"] for r in table] == ["role_change"]
    assert json.loads(table[0]["after"]) == {"member": "sam@acme.test", "role": "manager"}


def test_download_links_are_checked_again(addon: AddonClient, db: Session) -> None:
    addon.post("/homepage")
    url = link_of(addon.action("admin_audit_export", parameters={"fmt": "csv"}))
    body = download(addon.client, url[:-3] + "xyz", 403).get_json()
    assert body == {"error": "this download link has expired or is not valid"}
    # Demoted since the link was made: refused.
    member_with_role(addon, db, "ada@acme.test", "admin")
    member(db, "rep@acme.test").role = "rep"
    db.flush()
    body = download(addon.client, url, 403).get_json()
    assert body == {"error": "your role (rep) does not allow you to manage the workspace"}


def test_an_expired_download_link_is_refused(
    addon: AddonClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time as time_module

    addon.post("/homepage")
    url = link_of(addon.action("admin_audit_export", parameters={"fmt": "csv"}))
    later = time_module.time() + timedelta(minutes=11).total_seconds()
    monkeypatch.setattr(time_module, "time", lambda: later)
    body = download(addon.client, url, 403).get_json()
    assert body == {"error": "this download link has expired or is not valid"}


def test_an_unknown_export_format_is_refused(addon: AddonClient, db: Session) -> None:
    addon.post("/homepage")
    card = card_of(addon.action("admin_audit_export", parameters={"fmt": "xml"}))
    assert "“xml” is not an export format (csv or jsonl)." in texts(card)
