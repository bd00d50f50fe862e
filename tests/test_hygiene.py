"""Duplicates caught before they are made, listed in clusters, and merged with everything moved."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from addon.crm.audit import record_history
from addon.crm.hygiene import (
    duplicate_clusters,
    find_duplicates_for,
    merge_records,
    normalised_company_name,
)
from addon.crm.models import (
    AuditEntry,
    FieldValue,
    Note,
    RecentView,
    Record,
    RecordEmail,
    RecordPhone,
    RecordRelation,
    ThreadLink,
)
from addon.crm.records import (
    ValidationError,
    add_note,
    get_record,
    load_detail,
    mark_viewed,
)
from addon.crm.workspaces import folders_by_key, resolve_member
from tests.crmdata import Crm


def test_matches_by_email_phone_domain_and_company_name(crm: Crm) -> None:
    contacts, companies = crm.folders["contacts"], crm.folders["companies"]
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com", phones="+49 30 1234567")
    globex = crm.save("companies", name="Globex, Inc.", domain="globex.com")

    def reasons(folder: object, **values: object) -> dict[int, str]:
        found = find_duplicates_for(crm.db, folder, **values)  # type: ignore[arg-type]
        return {m.record.id: m.reason for m in found}

    assert reasons(contacts, emails=["ann@globex.com"]) == {ann.id: "same email"}
    assert reasons(contacts, phones=["+49301234567"]) == {ann.id: "same phone"}
    assert reasons(contacts, emails=["ann@globex.com"], exclude_id=ann.id) == {}
    assert reasons(companies, domain="mail.globex.com") == {globex.id: "same domain"}
    assert reasons(companies, name="GLOBEX inc") == {globex.id: "same name"}
    assert reasons(companies, name="Globex Logistics") == {}
    # Another folder's records are never offered.
    assert reasons(companies, emails=["ann@globex.com"]) == {}


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ACME, Inc.", "acme"), ("Acme Corp", "acme"), ("Société Générale SA", "société générale")],
)
def test_company_names_are_compared_without_legal_suffixes(name: str, expected: str) -> None:
    assert normalised_company_name(name) == expected


def test_clusters_join_records_sharing_any_key(crm: Crm) -> None:
    a = crm.save("contacts", first_name="A", emails="a@x.com")
    b = crm.save("contacts", first_name="B", emails=["a@x.com", "b@y.com"])
    c = crm.save("contacts", first_name="C", emails="b@y.com", phones="+44 20 7946 0958")
    d = crm.save("contacts", first_name="D", phones="+442079460958")
    crm.save("contacts", first_name="E", emails="e@x.com")
    g1 = crm.save("companies", name="Globex Ltd")
    g2 = crm.save("companies", name="globex")
    clusters = duplicate_clusters(crm.db, crm.member.workspace_id)
    assert [c.record_ids for c in clusters] == [[a.id, b.id, c.id, d.id], [g1.id, g2.id]]
    assert clusters[0].reasons == ["same email", "same phone"]
    assert clusters[1].reasons == ["same name"]


@pytest.fixture
def twins(crm: Crm, db: Session) -> tuple[Record, Record, Record, Record]:
    globex = crm.save("companies", name="Globex", domain="globex.com")
    initech = crm.save("companies", name="Initech")
    keep = crm.save(
        "contacts",
        first_name="Ann",
        last_name="Archer",
        emails="ann@globex.com",
        job_title="CTO",
        company=f"#{globex.id}",
    )
    dupe = crm.save(
        "contacts",
        first_name="Annie",
        emails=["ann.archer@gmail.com", "ANN@globex.com"],
        phones="+1 650 253 0000",
        lifecycle_stage="customer",
        company=f"#{initech.id}",
    )
    crm.save("deals", name="Renewal", contacts=f"#{dupe.id}")
    crm.link(dupe, "thread-1", "Hello")
    crm.link(keep, "thread-1", "Hello")
    crm.link(dupe, "thread-2", "Pricing")
    add_note(db, crm.member, dupe, "Met at the fair")
    mark_viewed(db, crm.member, dupe)
    db.flush()
    return keep, dupe, globex, initech


def test_merge_moves_everything_to_the_survivor(
    crm: Crm, db: Session, twins: tuple[Record, Record, Record, Record]
) -> None:
    keep, dupe, globex, _initech = twins
    dupe_id = dupe.id
    merge_records(db, crm.member, keep, [dupe], {"first_name": dupe.id})
    db.flush()
    detail = load_detail(db, keep)
    assert detail.values["first_name"] == "Annie"  # chosen from the duplicate
    assert detail.values["last_name"] == "Archer"  # only the survivor had it
    assert detail.values["job_title"] == "CTO"
    assert detail.values["lifecycle_stage"] == "customer"  # only the duplicate had it
    assert detail.values["emails"] == ["ann@globex.com", "ann.archer@gmail.com"]
    assert detail.values["phones"] == ["+16502530000"]
    # A one-record link keeps the survivor's target unless another was chosen.
    assert [r.id for r in detail.links["company"]] == [globex.id]
    assert [r.title for r in detail.related["deals"]] == ["Renewal"]
    assert sorted(t.thread_id for t in detail.threads) == ["thread-1", "thread-2"]
    assert [n.body for n in detail.notes] == ["Met at the fair"]
    # The merged record is gone with its own rows; its id resolves to the survivor.
    assert db.get(Record, dupe_id) is None
    assert get_record(db, crm.member.workspace_id, dupe_id) is keep
    for model in (FieldValue, RecordEmail, RecordPhone):
        left = db.scalar(select(func.count()).where(model.record_id == dupe_id))
        assert left == 0, model
    assert db.scalar(select(func.count()).where(ThreadLink.record_id == keep.id)) == 2
    assert db.scalar(select(func.count()).where(Note.record_id == keep.id)) == 1
    assert db.scalar(select(func.count()).where(RecentView.record_id == keep.id)) == 1
    emails = db.scalars(select(RecordEmail.email).where(RecordEmail.record_id == keep.id))
    assert sorted(emails) == ["ann.archer@gmail.com", "ann@globex.com"]
    assert keep.title == "Annie Archer"
    [entry] = [e for e in record_history(db, keep.workspace_id, keep.id) if e.action == "merge"]
    assert entry.actor_id == crm.member.id
    assert entry.after == {"survivor": keep.id, "merged": [dupe_id]}
    assert "Annie" in str(entry.before)
    # The duplicate's own audit history now belongs to the survivor's timeline.
    assert db.scalar(select(func.count()).where(AuditEntry.record_id == dupe_id)) == 0


def test_merge_can_take_the_other_records_company(
    crm: Crm, db: Session, twins: tuple[Record, Record, Record, Record]
) -> None:
    keep, dupe, globex, initech = twins
    merge_records(db, crm.member, keep, [dupe], {"company": dupe.id})
    assert [r.id for r in load_detail(db, keep).links["company"]] == [initech.id]
    assert (
        db.scalar(
            select(func.count()).where(
                RecordRelation.from_record_id == keep.id, RecordRelation.to_record_id == globex.id
            )
        )
        == 0
    )


def test_chains_of_merges_resolve_to_the_last_survivor(crm: Crm, db: Session) -> None:
    a = crm.save("contacts", first_name="A", emails="a@x.com")
    b = crm.save("contacts", first_name="B", emails="b@x.com")
    c = crm.save("contacts", first_name="C", emails="c@x.com")
    b_id, c_id = b.id, c.id
    merge_records(db, crm.member, b, [c])
    merge_records(db, crm.member, a, [b])
    assert get_record(db, crm.member.workspace_id, c_id) is a
    assert get_record(db, crm.member.workspace_id, b_id) is a


def test_merging_refuses_mixed_folders_and_single_records(crm: Crm, db: Session) -> None:
    person = crm.save("contacts", first_name="P", emails="p@x.com")
    company = crm.save("companies", name="Co")
    with pytest.raises(ValidationError, match="same folder"):
        merge_records(db, crm.member, person, [company])
    with pytest.raises(ValidationError, match="at least two"):
        merge_records(db, crm.member, person, [person])
    other = crm.save("contacts", first_name="Q", emails="q@x.com")
    with pytest.raises(ValidationError, match="one of the merged"):
        merge_records(db, crm.member, person, [other], {"first_name": company.id})


def test_cli_lists_duplicate_clusters_and_reindexes(app: Any, crm: Crm, db: Session) -> None:
    a = crm.save("contacts", first_name="Ann", emails="ann@x.com")
    b = crm.save("contacts", first_name="Annie", emails="ANN@x.com")
    db.execute(update(FieldValue).values(text_key=None, num_key=None))
    db.flush()
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["crm", "duplicates", "--domain", "acme.test"])
    assert listed.exit_code == 0, listed.output
    assert f"same email: #{a.id} Ann, #{b.id} Annie" in listed.output
    assert "1 duplicate cluster(s)" in listed.output
    unknown = runner.invoke(args=["crm", "duplicates", "--domain", "nowhere.test"])
    assert unknown.exit_code != 0 and "no workspace" in unknown.output
    reindexed = runner.invoke(args=["crm", "reindex", "--domain", "acme.test"])
    assert reindexed.exit_code == 0, reindexed.output
    assert "2 record(s) reindexed" in reindexed.output
    db.expire_all()
    keys = db.scalars(select(FieldValue.text_key).where(FieldValue.record_id == a.id))
    assert "|ann@x.com|" in set(keys)


def test_clusters_never_include_another_workspaces_records(crm: Crm, db: Session) -> None:
    a = crm.save("contacts", first_name="A", emails="shared@x.com")
    b = crm.save("contacts", first_name="B", emails="SHARED@x.com")
    spy = resolve_member(db, "rival.test", "spy@rival.test", is_consumer=False)
    db.flush()
    rival = Crm(db, spy, folders_by_key(db, spy.workspace_id))
    # The rival workspace holds the same duplicated address: its cluster is its own.
    r1 = rival.save("contacts", first_name="R1", emails="shared@x.com")
    r2 = rival.save("contacts", first_name="R2", emails="shared@x.com")
    ours = duplicate_clusters(db, crm.member.workspace_id)
    assert [c.record_ids for c in ours] == [[a.id, b.id]]
    theirs = duplicate_clusters(db, spy.workspace_id)
    assert [c.record_ids for c in theirs] == [[r1.id, r2.id]]
