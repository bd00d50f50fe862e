"""Automatic thread linking: who is linked and why, and what is never linked."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.crm.hygiene import merge_records
from addon.crm.models import Record, ThreadLink
from addon.crm.records import link_thread, save_record, unlink_thread
from addon.crm.structure import add_field
from addon.crm.workspaces import folders_by_key, resolve_member
from addon.ledger.models import LinkSuppression
from addon.ledger.policy import SettingsError, set_exclusions
from tests.crmdata import Crm
from tests.dbstate import row_counts
from tests.google_fakes import AddonClient
from tests.test_ledger import (
    ANN,
    REP,
    assert_recompute_agrees,
    count,
    ingest,
    links_of,
    mail,
    stats_of,
    teammate,
)


@pytest.fixture
def globex(crm: Crm) -> dict[str, Record]:
    """A company with two contacts (one at a free-mail address) and a deal."""
    company = crm.save("companies", name="Globex", domain="globex.com")
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com", company=f"#{company.id}")
    bob = crm.save("contacts", first_name="Bob", emails="bob.g@gmail.com", company=f"#{company.id}")
    return {"company": company, "ann": ann, "bob": bob}


def test_participants_link_their_contacts_and_companies_with_reasons(
    crm: Crm, globex: dict[str, Record]
) -> None:
    result = ingest(
        crm,
        [
            mail("m1@globex.com", ANN, REP, cc="Bob <bob.g@gmail.com>"),
            # An unknown person at the company's domain links the company by domain alone.
            mail("m2@globex.com", "Cy <cy@eu.globex.com>", REP, thread="t2", subject="Hi"),
        ],
    )
    first, second = result.conversations["thr-1"], result.conversations["t2"]
    assert links_of(crm.db, globex["ann"]) == {first: "matched_email"}
    assert links_of(crm.db, globex["bob"]) == {first: "matched_email"}
    # The company: by its domain where a participant has it, else through its contact.
    assert links_of(crm.db, globex["company"]) == {
        first: "matched_domain",
        second: "matched_domain",
    }
    bob_only = ingest(crm, [mail("m3@gmail.com", "Bob <bob.g@gmail.com>", REP, thread="t3")])
    third = bob_only.conversations["t3"]
    assert links_of(crm.db, globex["company"])[third] == "matched_email"
    link = crm.db.execute(
        select(ThreadLink).where(
            ThreadLink.conversation_id == first, ThreadLink.record_id == globex["ann"].id
        )
    ).scalar_one()
    assert (link.thread_id, link.subject, link.linked_by_id) == ("thr-1", "Pilot", None)
    assert_recompute_agrees(crm)


def test_free_mail_domains_never_link_a_company(crm: Crm) -> None:
    crm.save("companies", name="Google Mail", domain="gmail.com")
    extra = crm.save("companies", name="Mailbox Co", domain="mailbox.example.com")
    crm.member.workspace.settings = {"free_mail_domains": ["example.com"]}
    crm.db.flush()
    result = ingest(
        crm,
        [
            mail("f1@gmail.com", "Zed <zed@gmail.com>", REP),
            mail("f2@example.com", "Yan <yan@mailbox.example.com>", REP, thread="t2"),
        ],
    )
    assert result.links == []
    assert links_of(crm.db, extra) == {}


def test_own_domain_and_colleagues_never_link(crm: Crm) -> None:
    own = resolve_member(crm.db, "acme.com", "rep@acme.com", is_consumer=False)
    own_crm = Crm(crm.db, own, folders_by_key(crm.db, own.workspace_id))
    acme = own_crm.save("companies", name="Acme", domain="acme.com")
    colleague = own_crm.save("contacts", first_name="Col", emails="col@sales.acme.com")
    ann = own_crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    result = ingest(
        own_crm,
        [mail("o1@acme.com", "rep@acme.com", f"{ANN}, col@sales.acme.com", cc="x@acme.com")],
        own,
    )
    assert [(record, reason) for _c, record, reason in result.links] == [(ann.id, "matched_email")]
    assert links_of(crm.db, acme) == {} and links_of(crm.db, colleague) == {}


@pytest.mark.parametrize(
    "sender",
    [
        "No Reply <noreply@globex.com>",
        "mailer-daemon@globex.com",
        "bounces+123=x@globex.com",
        "notifications@globex.com",
    ],
)
def test_automated_senders_never_link(crm: Crm, sender: str) -> None:
    company = crm.save("companies", name="Globex", domain="globex.com")
    robot = crm.save("contacts", first_name="Robot", emails=sender.split("<")[-1].strip(">"))
    result = ingest(crm, [mail("n1@globex.com", sender, REP)])
    assert result.recorded == 1 and result.links == []
    assert links_of(crm.db, company) == {} and links_of(crm.db, robot) == {}


def test_excluded_addresses_and_domains_never_link(crm: Crm, globex: dict[str, Record]) -> None:
    partner = crm.save("companies", name="Initech", domain="initech.io")
    pat = crm.save("contacts", first_name="Pat", emails="pat@initech.io")
    set_exclusions(crm.member.workspace, "Ann@Globex.com", ["@initech.io"])
    crm.db.flush()
    result = ingest(
        crm,
        [
            mail("e1@globex.com", ANN, REP, cc="pat@eu.initech.io, Pat <pat@initech.io>"),
            mail("e2@globex.com", ANN, REP, cc="Bob <bob.g@gmail.com>", thread="t2"),
        ],
    )
    for record in (globex["ann"], partner, pat):
        assert links_of(crm.db, record) == {}
    # Bob is not excluded: he and his company are linked, through him only.
    second = result.conversations["t2"]
    assert links_of(crm.db, globex["bob"]) == {second: "matched_email"}
    assert links_of(crm.db, globex["company"]) == {second: "matched_email"}


def test_exclusion_lists_refuse_bad_entries_and_change_nothing(crm: Crm) -> None:
    workspace = crm.member.workspace
    workspace.settings = {"timezone": "Europe/Paris"}
    with pytest.raises(SettingsError, match="“not an address” is not an email address"):
        set_exclusions(workspace, ["ok@globex.com", "not an address"], [])
    with pytest.raises(SettingsError, match="“localhost” is not a domain"):
        set_exclusions(workspace, [], "globex.com\nlocalhost")
    assert workspace.settings == {"timezone": "Europe/Paris"}
    set_exclusions(workspace, "a@globex.com, A@GLOBEX.com", "Initech.IO.")
    assert workspace.settings == {
        "timezone": "Europe/Paris",
        "excluded_addresses": ["a@globex.com"],
        "excluded_domains": ["initech.io"],
    }


def test_conversations_inside_the_workspace_are_not_linked(crm: Crm) -> None:
    mate = teammate(crm)
    # The rep saved a colleague as a contact; their internal mail still links nothing.
    colleague = crm.save("contacts", first_name="Mate", emails="mate@acme.test")
    result = ingest(crm, [mail("i1@acme.test", REP, "mate@acme.test", cc="ops@acme.test")], mate)
    assert result.recorded == 1 and result.links == [] and links_of(crm.db, colleague) == {}


def test_a_single_open_deal_is_linked_and_several_are_suggested(
    crm: Crm, globex: dict[str, Record]
) -> None:
    ann, company = globex["ann"], globex["company"]
    crm.save("deals", name="Lost one", stage="lost", contacts=f"#{ann.id}")
    renewal = crm.save("deals", name="Renewal", stage="proposal", contacts=f"#{ann.id}")
    result = ingest(crm, [mail("d1@globex.com", ANN, REP)])
    conv = result.conversations["thr-1"]
    assert links_of(crm.db, renewal) == {conv: "single_open_deal"}
    assert result.candidates == {}
    # A second open deal on the company: its deals are suggested, not linked.
    expansion = crm.save("deals", name="Expansion", stage="new", company=f"#{company.id}")
    upsell = crm.save("deals", name="Upsell", company=f"#{company.id}")
    later = ingest(crm, [mail("d2@globex.com", "Cy <cy@globex.com>", REP, thread="t2")])
    second = later.conversations["t2"]
    assert later.candidates == {second: [expansion.id, upsell.id]}
    assert links_of(crm.db, expansion) == {} and links_of(crm.db, upsell) == {}
    # Once one of them closes, the other is the company's single open deal.
    save_record(crm.db, crm.member, crm.folders["deals"], {"stage": ["won"]}, expansion)
    crm.db.flush()
    reply = ingest(
        crm, [mail("d3@x.test", REP, "cy@globex.com", thread="t2", refs=["d2@globex.com"])]
    )
    assert reply.candidates == {}
    assert links_of(crm.db, upsell) == {second: "single_open_deal"}
    assert_recompute_agrees(crm)


def test_deals_count_by_any_link_field_of_the_deals_folder_and_nothing_else(
    crm: Crm, globex: dict[str, Record]
) -> None:
    """A deal pointing at the company through a link field an admin added is its deal;
    the contacts pointing at it through their company field are not deals."""
    company = globex["company"]
    add_field(crm.db, crm.member, crm.folders["deals"], "Reseller", "link", {"folder": "companies"})
    # Another folder's link field at the company: its records are never deals.
    add_field(
        crm.db, crm.member, crm.folders["contacts"], "Employer", "link", {"folder": "companies"}
    )
    crm.save("contacts", first_name="Dee", emails="dee@gmail.com", employer=f"#{company.id}")
    resale = crm.save("deals", name="Resale", stage="proposal", reseller=f"#{company.id}")
    result = ingest(crm, [mail("r1@globex.com", "Cy <cy@globex.com>", REP, thread="t-r")])
    conv = result.conversations["t-r"]
    assert links_of(crm.db, resale) == {conv: "single_open_deal"}
    assert result.candidates == {}
    assert_recompute_agrees(crm)


def test_manual_unlink_survives_later_mail_and_manual_link_wins(
    crm: Crm, globex: dict[str, Record]
) -> None:
    ann = globex["ann"]
    first = ingest(crm, [mail("u1@globex.com", ANN, REP, thread="t-u")])
    conv = first.conversations["t-u"]
    assert links_of(crm.db, ann) == {conv: "matched_email"}
    assert unlink_thread(crm.db, ann, "t-u", crm.member) is True
    assert links_of(crm.db, ann) == {}
    assert stats_of(crm, ann) is None
    suppression = crm.db.execute(select(LinkSuppression)).scalar_one()
    assert (suppression.record_id, suppression.conversation_id) == (ann.id, conv)
    # Sync delivers the thread again and a reply arrives: the unlink holds.
    again = ingest(
        crm,
        [
            mail("u1@globex.com", ANN, REP, thread="t-u"),
            mail("u2@globex.com", ANN, REP, thread="t-u", day=2, refs=["u1@globex.com"]),
        ],
    )
    assert again.recorded == 1
    assert links_of(crm.db, ann) == {} and stats_of(crm, ann) is None
    # The company stays linked: the unlink was the contact's only.
    assert conv in links_of(crm.db, globex["company"])
    # Linking by hand again lifts the suppression and counts the mail.
    assert link_thread(crm.db, crm.member, ann, "t-u", "Pilot") is True
    assert links_of(crm.db, ann) == {conv: "manual"}
    assert count(crm.db, LinkSuppression) == 0
    stats = stats_of(crm, ann)
    assert stats is not None and stats.emails_received == 2
    assert_recompute_agrees(crm)


def test_a_teammate_unlinks_with_their_own_thread_id(crm: Crm, globex: dict[str, Record]) -> None:
    mate = teammate(crm)
    ingest(crm, [mail("w1@globex.com", ANN, f"{REP}, mate@acme.test", thread="rep-t")])
    ingest(crm, [mail("w1@globex.com", ANN, f"{REP}, mate@acme.test", thread="mate-t")], mate)
    assert unlink_thread(crm.db, globex["ann"], "mate-t", mate) is True
    assert links_of(crm.db, globex["ann"]) == {}
    assert unlink_thread(crm.db, globex["ann"], "mate-t", mate) is False


def test_a_link_made_before_the_thread_is_recorded_is_attached(
    crm: Crm, globex: dict[str, Record]
) -> None:
    deal = crm.save("deals", name="Pilot")
    crm.link(deal, "early-t", "Pilot")
    assert links_of(crm.db, deal) == {None: "manual"}
    # Ann is linked and unlinked by hand before the thread is recorded: her unlink waits
    # for the thread too, and automatic linking then respects it.
    crm.link(globex["ann"], "early-t", "Pilot")
    assert unlink_thread(crm.db, globex["ann"], "early-t", crm.member) is True
    result = ingest(crm, [mail("a1@globex.com", ANN, REP, thread="early-t")])
    conv = result.conversations["early-t"]
    assert result.attached == 1
    assert links_of(crm.db, deal) == {conv: "manual"}
    assert links_of(crm.db, globex["ann"]) == {}
    suppression = crm.db.execute(select(LinkSuppression)).scalar_one()
    assert (suppression.record_id, suppression.conversation_id) == (globex["ann"].id, conv)
    stats = stats_of(crm, deal)
    assert stats is not None and (stats.emails_received, stats.threads) == (1, 1)
    assert_recompute_agrees(crm)


def test_merging_moves_links_unlinks_and_stats_to_the_survivor(
    crm: Crm, globex: dict[str, Record]
) -> None:
    ann = globex["ann"]
    twin = crm.save("contacts", first_name="Annie", emails="ann.archer@gmail.com")
    result = ingest(
        crm,
        [
            mail("g1@globex.com", ANN, REP, thread="t1"),
            mail("g2@gmail.com", "Annie <ann.archer@gmail.com>", REP, thread="t2", day=3),
            mail(
                "g3@gmail.com", "Annie <ann.archer@gmail.com>", f"{REP}, {ANN}", thread="t3", day=4
            ),
            mail("g4@gmail.com", "Annie <ann.archer@gmail.com>", REP, thread="t4", day=5),
        ],
    )
    t1, t3, t4 = (result.conversations[t] for t in ("t1", "t3", "t4"))
    unlink_thread(crm.db, twin, "t4", crm.member)
    # The survivor links t4 by hand: the manual link wins over the twin's unlink.
    link_thread(crm.db, crm.member, ann, "t4", "")
    merge_records(crm.db, crm.member, ann, [twin])
    crm.db.flush()
    assert set(links_of(crm.db, ann)) == {t1, result.conversations["t2"], t3, t4}
    assert count(crm.db, LinkSuppression) == 0
    stats = stats_of(crm, ann)
    assert stats is not None
    # Both addresses now count: g1 from Ann, g2-g4 from Annie; t3 once though both were on it.
    assert (stats.emails_received, stats.threads) == (4, 4)
    assert_recompute_agrees(crm)


def test_merging_keeps_an_unlink_against_an_automatic_link(crm: Crm, db: Session) -> None:
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    twin = crm.save("contacts", first_name="Annie", emails="ann@globex.com")
    result = ingest(crm, [mail("k1@globex.com", ANN, REP, thread="t1")])
    conv = result.conversations["t1"]
    unlink_thread(db, twin, "t1", crm.member)
    merge_records(db, crm.member, ann, [twin])
    db.flush()
    assert links_of(db, ann) == {}
    assert db.execute(select(LinkSuppression.record_id, LinkSuppression.conversation_id)).one() == (
        ann.id,
        conv,
    )
    assert stats_of(crm, ann) is None
    assert (
        ingest(crm, [mail("k2@globex.com", ANN, REP, thread="t1", refs=["k1@globex.com"])]).links
        == []
    )
    assert_recompute_agrees(crm)


def test_unlink_through_the_sidebar_records_the_suppression(
    addon: AddonClient, db: Session
) -> None:
    member = resolve_member(db, "acme.test", "rep@acme.test", is_consumer=False)
    crm = Crm(db, member, folders_by_key(db, member.workspace_id))
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    ingest(crm, [mail("s1@globex.com", ANN, REP, thread="side-t")])
    db.commit()
    data = addon.action(
        "unlink_thread", parameters={"record_id": str(ann.id), "thread_id": "side-t"}
    )
    assert data["stateChanged"] is True
    assert db.execute(select(LinkSuppression.record_id)).scalar_one() == ann.id
    assert ingest(crm, [mail("s2@globex.com", ANN, REP, thread="side-t")]).links == []


def test_another_workspace_cannot_unlink_or_link(
    addon: AddonClient, other_tenant: AddonClient, db: Session
) -> None:
    member = resolve_member(db, "acme.test", "rep@acme.test", is_consumer=False)
    crm = Crm(db, member, folders_by_key(db, member.workspace_id))
    ann = crm.save("contacts", first_name="Ann", emails="ann@globex.com")
    ingest(crm, [mail("x1@globex.com", ANN, REP, thread="x-t")])
    db.commit()
    before = row_counts(db)
    for name in ("unlink_thread", "link_thread"):
        data = other_tenant.action(
            name, expect=403, parameters={"record_id": str(ann.id), "thread_id": "x-t"}
        )
        assert data == {"error": "record not found in your workspace"}
    assert row_counts(db) == before
    assert len(links_of(db, ann)) == 1
