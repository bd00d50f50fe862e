"""Privacy requests: export everything held about an address; erase a person, keeping a hash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from addon.admin import privacy
from addon.admin.models import ErasedPerson
from addon.admin.privacy import email_hash, erase_person, is_erased
from addon.crm.models import AuditEntry, Member, Record, RecordEmail
from addon.crm.records import add_note, link_thread
from addon.crm.workspaces import folders_by_key, resolve_member
from addon.db import Base
from addon.ledger.ingest import record_messages
from addon.ledger.models import LedgerMessage, LedgerParticipant
from addon.ledger.parse import LedgerInput
from addon.ledger.stats import recompute_stats
from tests.admin_support import audits, download, link_of, member
from tests.cardread import actions_in, card_of, navigations, texts
from tests.crmdata import Crm, add_field
from tests.dbstate import row_counts
from tests.google_fakes import AddonClient

JANE = "jane.doe@client.example"


def message(mid: str, sender: str, to: str, day: int) -> LedgerInput:
    """A message as a mailbox shows it."""
    return LedgerInput(
        message_id=f"<{mid}>",
        gmail_id=f"g-{mid}",
        gmail_thread_id="thr-1",
        sender=sender,
        to=to,
        cc="",
        bcc="",
        date=format_datetime(datetime(2025, 6, day, 10, tzinfo=UTC)),
        subject="Renewal",
        references="",
        in_reply_to="",
        label_ids=(),
    )


@pytest.fixture
def person(addon: AddonClient, db: Session) -> Iterator[Crm]:
    """acme.test with Jane: her contact (note, thread link), a deal and a company naming her
    address, two messages with her in the ledger, and an unrelated contact."""
    addon.post("/homepage")
    me = member(db, "rep@acme.test")
    crm = Crm(db, me, folders_by_key(db, me.workspace_id))
    jane = crm.save(
        "contacts", first_name="Jane", last_name="Doe", emails="Jane.Doe@client.example"
    )
    add_note(db, me, jane, "Prefers calls after 5pm")
    link_thread(db, me, jane, "thr-1", "Renewal")
    add_field(db, crm.folders["companies"], "contact_emails", "email")
    crm.save("companies", name="Client Inc", contact_emails=[JANE, "info@client.example"])
    crm.save("contacts", first_name="Max", last_name="Other", emails="max@other.example")
    record_messages(
        db,
        me,
        [
            message("m1", f"Jane Doe <{JANE}>", "rep@acme.test", 1),
            message("m2", "rep@acme.test", f"{JANE}, max@other.example", 2),
        ],
    )
    db.flush()
    yield crm


def test_export_holds_records_values_notes_links_ledger_and_audit(
    addon: AddonClient, db: Session, person: Crm
) -> None:
    url = link_of(addon.action("admin_privacy_export", form={"email": "JANE.DOE@client.example"}))
    assert "jane" not in url.lower()  # the link is encrypted: no address in URLs or logs
    response = download(addon.client, url)
    assert response.mimetype == "application/json"
    data = json.loads(response.get_data(as_text=True))
    assert data["email"] == JANE and data["workspace"] == "acme.test" and not data["erased"]
    by_folder = {r["folder"]: r for r in data["records"]}
    assert set(by_folder) == {"contacts", "companies"}
    contact = by_folder["contacts"]
    assert contact["values"]["first_name"] == "Jane" and contact["values"]["emails"] == [JANE]
    assert [n["body"] for n in contact["notes"]] == ["Prefers calls after 5pm"]
    assert contact["notes"][0]["author"] == "rep@acme.test"
    assert [link["thread_id"] for link in contact["thread_links"]] == ["thr-1"]
    assert sorted((m["role"], m["message_id"]) for m in data["ledger"]) == [
        ("from", "m1"),
        ("to", "m2"),
    ]
    actions = {e["action"] for e in data["audit_entries"]}
    assert {"create", "note", "link_thread"} <= actions
    assert all("Max" not in json.dumps(e) for e in data["audit_entries"])
    (entry,) = audits(db, "privacy_export")
    assert entry.after == {"email_hash": email_hash(JANE), "records": 2}
    assert JANE not in json.dumps([entry.summary, entry.after])


def _everything(db: Session) -> str:
    """Every row of every table as text, for checking an address is gone."""
    out: list[str] = []
    for table in Base.metadata.sorted_tables:
        for row in db.execute(select(table)).all():
            out.append(json.dumps([str(v) for v in row]))
    return "\n".join(out).lower()


def test_erase_asks_first_then_leaves_only_a_hash(
    addon: AddonClient, db: Session, person: Crm
) -> None:
    assert JANE in _everything(db)
    before = row_counts(db)
    confirm = card_of(addon.action("admin_erase_confirm", form={"email": JANE}))
    shown = texts(confirm)
    assert "Jane Doe" in shown and "Client Inc" in shown
    assert "1 record(s) deleted, 1 record(s) lose the address, 2 email(s)" in shown
    assert row_counts(db) == before  # asking changes nothing
    (erase,) = [a for a in actions_in(confirm) if a["name"] == "admin_erase"]
    data = addon.action("admin_erase", parameters={k: v for k, v in erase.items() if k != "name"})
    assert navigations(data) == ["pop", "updateCard"]
    db.expire_all()
    assert JANE not in _everything(db)
    assert "prefers calls" not in _everything(db)
    titles = set(db.execute(select(Record.title)).scalars())
    assert "Jane Doe" not in titles and {"Client Inc", "Max Other"} <= titles
    emails = set(db.execute(select(RecordEmail.email)).scalars())
    assert emails == {"info@client.example", "max@other.example"}
    stand_in = f"{email_hash(JANE)}@erased.invalid"
    roles = db.execute(
        select(LedgerParticipant.role).where(LedgerParticipant.email == stand_in)
    ).scalars()
    assert sorted(roles) == ["from", "to"]
    assert (
        db.execute(
            select(LedgerMessage.from_email).where(LedgerMessage.message_key == "m1")
        ).scalar_one()
        == stand_in
    )
    assert "max@other.example" in _everything(db)
    (kept,) = db.execute(select(ErasedPerson)).scalars()
    assert kept.email_hash == email_hash(JANE) and kept.actor_id == member(db, "rep@acme.test").id
    me = member(db, "rep@acme.test")
    assert is_erased(db, me.workspace_id, ["JANE.DOE@client.example", "max@other.example"]) == {
        "JANE.DOE@client.example"
    }
    (entry,) = audits(db, "erase")
    assert entry.after and entry.after["email_hash"] == email_hash(JANE)
    assert entry.actor_id == me.id
    # The deleted contact's history says what happened, without its values.
    history = (
        db.execute(
            select(AuditEntry).where(AuditEntry.summary.like("%record of an erased person%"))
        )
        .scalars()
        .all()
    )
    assert history and all(e.before is None and e.after is None for e in history)
    # The email stats still agree with the ledger they are derived from.
    assert recompute_stats(db, me.workspace_id) == 0
    # An export now finds nothing but the hash.
    url = link_of(addon.action("admin_privacy_export", form={"email": JANE}))
    exported = json.loads(download(addon.client, url).get_data(as_text=True))
    assert exported["erased"] and exported["records"] == [] and exported["ledger"] == []


def test_erased_people_are_per_workspace(crm: Crm, db: Session) -> None:
    crm.save("contacts", first_name="Jane", emails=JANE)
    erase_person(db, crm.member, JANE)
    other = resolve_member(db, "rival.test", "spy@rival.test", is_consumer=False)
    assert is_erased(db, crm.member.workspace_id, [JANE]) == {JANE}
    assert is_erased(db, other.workspace_id, [JANE]) == set()
    assert is_erased(db, crm.member.workspace_id, ["not an address", ""]) == set()
    # Erasing again is harmless and keeps one row.
    erase_person(db, crm.member, JANE)
    assert len(db.execute(select(ErasedPerson)).scalars().all()) == 1


def test_registered_erasers_run_inside_the_erase(
    crm: Crm, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, str, str]] = []

    def eraser(session: Session, workspace_id: int, email: str, hashed: str) -> int:
        seen.append((workspace_id, email, hashed))
        return 3

    monkeypatch.setattr(privacy, "ERASERS", [eraser])
    erase_person(db, crm.member, JANE)
    assert seen == [(crm.member.workspace_id, JANE, email_hash(JANE))]
    assert audits(db, "erase")[0].after["other_rows"] == 3  # type: ignore[index]


@pytest.mark.parametrize("action", ["admin_privacy_export", "admin_erase_confirm"])
@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter the person's email address."),
        ("jane at client", "“jane at client” is not an email address."),
    ],
)
def test_bad_addresses_are_named_and_kept(
    addon: AddonClient, db: Session, action: str, typed: str, message: str
) -> None:
    addon.post("/homepage")
    before = row_counts(db)
    card = card_of(addon.action(action, form={"email": typed}))
    assert message in texts(card)
    if typed:
        assert typed in texts(card)
    assert row_counts(db) == before


def test_erase_needs_the_confirmation(addon: AddonClient, db: Session, person: Crm) -> None:
    before = row_counts(db)
    card = card_of(addon.action("admin_erase", parameters={"email": JANE}))
    assert "Confirm the erase on its card first." in texts(card)
    assert row_counts(db) == before


def test_another_workspace_cannot_export_or_erase_here(
    other_tenant: AddonClient, db: Session, person: Crm
) -> None:
    # The spy is the admin of rival.test: their requests only ever see rival.test.
    url = link_of(other_tenant.action("admin_privacy_export", form={"email": JANE}))
    data = json.loads(download(other_tenant.client, url).get_data(as_text=True))
    assert data["workspace"] == "rival.test" and data["records"] == [] and data["ledger"] == []
    other_tenant.action("admin_erase", parameters={"email": JANE, "confirm": "yes"})
    db.expire_all()
    assert db.execute(select(Record).where(Record.title == "Jane Doe")).scalar_one()
    assert JANE in _everything(db)
    spy = db.execute(select(Member).where(Member.email == "spy@rival.test")).scalar_one()
    assert is_erased(db, spy.workspace_id, [JANE]) == {JANE}
    assert is_erased(db, person.member.workspace_id, [JANE]) == set()
    assert db.execute(text("select count(*) from erased_people")).scalar_one() == 1


def test_a_members_address_cannot_be_erased(addon: AddonClient, db: Session) -> None:
    addon.post("/homepage")
    before = row_counts(db)
    card = card_of(addon.action("admin_erase_confirm", form={"email": "REP@acme.test"}))
    assert "rep@acme.test belongs to a member of this workspace, not to the CRM." in texts(card)
    card = card_of(
        addon.action("admin_erase", parameters={"email": "rep@acme.test", "confirm": "yes"})
    )
    assert "belongs to a member of this workspace" in texts(card)
    assert row_counts(db) == before
