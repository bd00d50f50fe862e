"""Admin card: members and roles, invitations, domain settings; admin-only and audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.admin.domain import sending_cap
from addon.admin.members import AdminError, change_role, invite
from addon.admin.models import Invitation
from addon.crm.models import Workspace
from addon.crm.workspaces import resolve_member
from addon.mailing.quota import CAP_SETTING
from tests.admin_support import audits, member, member_with_role
from tests.cardread import actions_in, card_of, navigations, texts
from tests.crmdata import Crm
from tests.dbstate import row_counts
from tests.google_fakes import AddonClient


def test_settings_links_the_admin_cards_for_admins_only(addon: AddonClient, db: Session) -> None:
    names = {a["name"] for a in actions_in(card_of(addon.post("/actions/settings")))}
    assert {"admin_members", "admin_domain", "admin_audit", "admin_privacy"} <= names
    rep = member_with_role(addon, db, "sam@acme.test", "rep")
    names = {a["name"] for a in actions_in(card_of(rep.post("/actions/settings")))}
    assert not names & {"admin_members", "admin_domain", "admin_audit", "admin_privacy"}


@pytest.mark.parametrize(
    ("name", "parameters", "form"),
    [
        ("admin_members", {}, {}),
        ("admin_set_role", {"member_id": "1"}, {"role": "admin"}),
        ("admin_invite", {}, {"email": "x@acme.test", "role": "admin"}),
        ("admin_domain", {}, {}),
        ("admin_save_domain", {}, {"daily_send_cap": "10", "default_region": "US"}),
        ("admin_audit", {}, {}),
        ("admin_audit_export", {"fmt": "csv"}, {}),
        ("admin_privacy", {}, {}),
        ("admin_erase", {"email": "rep@acme.test", "confirm": "yes"}, {}),
    ],
)
def test_non_admins_are_refused_and_nothing_changes(
    addon: AddonClient, db: Session, name: str, parameters: dict[str, str], form: dict[str, str]
) -> None:
    manager = member_with_role(addon, db, "meg@acme.test", "manager")
    before = row_counts(db)
    card = card_of(manager.action(name, parameters=parameters, form=form))
    assert "does not allow you to manage the workspace" in texts(card)
    assert row_counts(db) == before
    assert member(db, "meg@acme.test").role == "manager"


def test_admin_changes_a_role_and_it_is_audited(addon: AddonClient, db: Session) -> None:
    member_with_role(addon, db, "sam@acme.test", "rep")
    sam = member(db, "sam@acme.test")
    listing = card_of(addon.action("admin_members"))
    assert "sam@acme.test" in texts(listing)
    assert {"name": "admin_member", "member_id": str(sam.id)} in actions_in(listing)
    card = card_of(addon.action("admin_member", parameters={"member_id": str(sam.id)}))
    assert "Role: rep" in texts(card)
    data = addon.action(
        "admin_set_role", parameters={"member_id": str(sam.id)}, form={"role": "manager"}
    )
    assert navigations(data) == ["pop", "updateCard"]
    assert data["renderActions"]["action"]["notification"]["text"] == "sam@acme.test is now manager"
    assert member(db, "sam@acme.test").role == "manager"
    (entry,) = audits(db, "role_change")
    assert entry.actor_id == member(db, "rep@acme.test").id
    assert entry.before == {"member": "sam@acme.test", "role": "rep"}
    assert entry.after == {"member": "sam@acme.test", "role": "manager"}
    assert entry.created_at is not None


def test_the_last_admin_cannot_step_down(addon: AddonClient, db: Session) -> None:
    addon.post("/homepage")
    me = member(db, "rep@acme.test")
    before = row_counts(db)
    data = addon.action(
        "admin_set_role", parameters={"member_id": str(me.id)}, form={"role": "rep"}
    )
    card = card_of(data)
    assert "You are the last admin; make another member admin first." in texts(card)
    # The admin's choice is kept on the redrawn card.
    role_input = next(
        w["selectionInput"] for s in card["sections"] for w in s["widgets"] if "selectionInput" in w
    )
    assert [i["value"] for i in role_input["items"] if i["selected"]] == ["rep"]
    assert member(db, "rep@acme.test").role == "admin" and row_counts(db) == before
    # With a second admin, stepping down works and leads back to the start.
    member_with_role(addon, db, "ada@acme.test", "admin")
    data = addon.action(
        "admin_set_role", parameters={"member_id": str(me.id)}, form={"role": "rep"}
    )
    assert navigations(data) == ["popToRoot"]
    assert member(db, "rep@acme.test").role == "rep"


def test_role_change_service_refuses_unknown_roles_and_other_workspaces(
    crm: Crm, db: Session
) -> None:
    other = resolve_member(db, "rival.test", "spy@rival.test", is_consumer=False)
    with pytest.raises(AdminError, match="not in this workspace"):
        change_role(db, crm.member, other, "viewer")
    with pytest.raises(AdminError, match="“owner” is not a role"):
        change_role(db, crm.member, crm.member, "owner")
    assert not change_role(db, crm.member, crm.member, "admin")


def test_ids_of_another_workspace_are_refused(
    addon: AddonClient, other_tenant: AddonClient, db: Session
) -> None:
    other_tenant.post("/homepage")
    spy = member(db, "spy@rival.test")
    addon.post("/homepage")
    before = row_counts(db)
    card = card_of(addon.action("admin_member", parameters={"member_id": str(spy.id)}))
    assert "not in this workspace" in texts(card)
    card = card_of(
        addon.action(
            "admin_set_role", parameters={"member_id": str(spy.id)}, form={"role": "viewer"}
        )
    )
    assert "not in this workspace" in texts(card)
    invitation = invite(db, spy, "new@rival.test", "viewer")
    db.flush()
    before = row_counts(db)
    card = card_of(
        addon.action("admin_revoke_invitation", parameters={"invitation_id": str(invitation.id)})
    )
    assert "That invitation is no longer pending." in texts(card)
    assert row_counts(db) == before and member(db, "spy@rival.test").role == "admin"


def test_an_invited_address_joins_with_the_chosen_role(addon: AddonClient, db: Session) -> None:
    data = addon.action("admin_invite", form={"email": " Vera@ACME.test ", "role": "viewer"})
    card = card_of(data)
    assert "vera@acme.test" in texts(card) and "invited as viewer" in texts(card)
    assert data["renderActions"]["action"]["notification"]["text"] == (
        "Invited vera@acme.test as viewer"
    )
    (entry,) = audits(db, "invite")
    assert entry.after == {"email": "vera@acme.test", "role": "viewer"}
    # First sign-in: a viewer, and the invitation is used up.
    vera = AddonClient(addon.client, addon.tokens, user="vera@acme.test", hd="acme.test")
    vera.post("/homepage")
    assert member(db, "vera@acme.test").role == "viewer"
    assert db.execute(select(Invitation)).scalars().all() == []
    assert audits(db, "join")[0].after == {"member": "vera@acme.test", "role": "viewer"}
    # Uninvited people still join as reps.
    member_with_role(addon, db, "ray@acme.test", "rep")
    assert member(db, "ray@acme.test").role == "rep"


def test_invitations_can_be_withdrawn(addon: AddonClient, db: Session) -> None:
    addon.action("admin_invite", form={"email": "vera@acme.test", "role": "manager"})
    invitation = db.execute(select(Invitation)).scalar_one()
    data = addon.action("admin_revoke_invitation", parameters={"invitation_id": str(invitation.id)})
    assert "vera@acme.test" not in texts(card_of(data))
    assert db.execute(select(Invitation)).scalars().all() == []
    assert audits(db, "revoke_invitation")[0].before == {
        "email": "vera@acme.test",
        "role": "manager",
    }
    vera = AddonClient(addon.client, addon.tokens, user="vera@acme.test", hd="acme.test")
    vera.post("/homepage")
    assert member(db, "vera@acme.test").role == "rep"


@pytest.mark.parametrize(
    ("email", "role", "message"),
    [
        ("not an address", "rep", "“not an address” is not an email address."),
        ("x@rival.test", "rep", "“x@rival.test” is not an address of acme.test"),
        ("x@acme.test", "owner", "“owner” is not a role"),
        ("", "rep", "Enter the address to invite."),
        ("rep@acme.test", "rep", "Already a member: rep@acme.test (admin)"),
    ],
)
def test_bad_invitations_keep_the_form_and_name_the_problem(
    addon: AddonClient, db: Session, email: str, role: str, message: str
) -> None:
    addon.post("/homepage")
    before = row_counts(db)
    card = card_of(addon.action("admin_invite", form={"email": email, "role": role}))
    assert message in texts(card)
    if email:
        assert email in texts(card)
    assert row_counts(db) == before


def test_domain_settings_are_saved_and_audited(addon: AddonClient, db: Session) -> None:
    card = card_of(addon.action("admin_domain"))
    assert "1500" in texts(card) and "US" in texts(card)
    form = {
        "plan": "workspace",
        "daily_send_cap": "1,800",
        "excluded_addresses": "Friend@Example.org\n",
        "excluded_domains": "@partner.example, law.example",
        "free_mail_domains": "mail.example",
        "default_region": "de",
    }
    data = addon.action("admin_save_domain", form=form)
    assert data["renderActions"]["action"]["notification"]["text"] == "Settings saved"
    workspace = db.execute(select(Workspace).where(Workspace.domain == "acme.test")).scalar_one()
    db.refresh(workspace)
    assert workspace.settings[CAP_SETTING] == 1800
    assert workspace.settings["excluded_addresses"] == ["friend@example.org"]
    assert workspace.settings["excluded_domains"] == ["partner.example", "law.example"]
    assert workspace.settings["free_mail_domains"] == ["mail.example"]
    assert workspace.settings["default_region"] == "DE"
    assert sending_cap(workspace.settings, workspace.is_consumer) == 1800
    (entry,) = audits(db, "settings_change")
    assert entry.after and entry.after["daily_send_cap"] == 1800
    assert entry.before and entry.before["daily_send_cap"] is None
    again = addon.action("admin_save_domain", form=form)
    assert again["renderActions"]["action"]["notification"]["text"] == "Nothing changed"
    assert len(audits(db, "settings_change")) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"daily_send_cap": "2001"}, "above Google's limit of 2,000 for Google Workspace"),
        ({"plan": "trial", "daily_send_cap": "501"}, "above Google's limit of 500 for Google"),
        ({"daily_send_cap": "lots"}, "“lots” must be a whole number"),
        ({"daily_send_cap": "0"}, "“0” must be a whole number"),
        ({"excluded_addresses": "ok@example.org\nbroken@"}, "“broken@” is not an email address"),
        ({"excluded_domains": "fine.example\nnot a domain"}, "“not a domain” is not a domain"),
        ({"free_mail_domains": "@@"}, "Free-mail list: “@@” is not a domain"),
        ({"default_region": "Mars"}, "“MARS” is not a region code"),
    ],
)
def test_bad_domain_settings_keep_the_typed_values_and_name_the_bad_entry(
    addon: AddonClient, db: Session, change: dict[str, str], message: str
) -> None:
    addon.post("/homepage")
    form = {"plan": "workspace", "daily_send_cap": "1000", "default_region": "US", **change}
    before = row_counts(db)
    card = card_of(addon.action("admin_save_domain", form=form))
    shown = texts(card)
    assert message in shown
    for value in change.values():
        assert value in shown
    assert row_counts(db) == before
    workspace = db.execute(select(Workspace).where(Workspace.domain == "acme.test")).scalar_one()
    db.refresh(workspace)
    assert CAP_SETTING not in (workspace.settings or {})


def test_sending_caps_never_exceed_googles_limits() -> None:
    assert sending_cap({}, False) == 1500
    assert sending_cap({"gmail_plan": "trial"}, False) == 400
    assert sending_cap({}, True) == 400
    # A stored cap above the plan's limit (the plan changed since) is clamped.
    assert sending_cap({"daily_send_cap": 2000, "gmail_plan": "trial"}, False) == 500
    assert sending_cap({"daily_send_cap": 5000}, True) == 500
    # Stored as text, a number still counts; anything else leaves the default cap.
    assert sending_cap({"daily_send_cap": "900"}, False) == 900
    assert sending_cap({"daily_send_cap": "lots"}, False) == 1500
