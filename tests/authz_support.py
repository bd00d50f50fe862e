"""A two-workspace world for authorization tests, one request per registered action.

`World` holds acme.test (a member of each role, each with a Gmail grant; records, a shared
view, a custom folder and field, a web form, a pending invitation) and rival.test (the
same things, named with SECRET, so a test can see whether any of it leaked). `CASES`
builds, for every action, a request that is valid for an acme.test member, so that only
the role or a swapped id decides the outcome.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from addon.admin.members import invite
from addon.admin.models import Invitation
from addon.auth.grants import PURPOSE_SCOPES, SYNC, store_grant
from addon.auth.roles import OWN_RECORDS_ONLY
from addon.auth.token_keys import TokenCipher
from addon.crm.models import AuditEntry, FieldDef, Folder, Member, Record, SavedView
from addon.crm.structure import add_field as add_structure_field
from addon.crm.structure import add_folder
from addon.crm.views import save_view
from addon.crm.webform_models import WebForm
from addon.crm.webforms import save_form
from addon.crm.workspaces import folder_fields, folders_by_key, resolve_member
from addon.db import Base
from addon.gmail.fake_server import FakeGmail, FakeGmailServer
from tests.cardread import cards_of
from tests.crmdata import Crm
from tests.google_fakes import AddonClient, SigningKey, TokenFactory
from tests.grants_support import grants_app, install_fake_oauth
from tests.mailing_authz_support import MailMerge, build_mail_merge, campaign_form, template_form

ROLE_USERS = {
    "admin": "boss@acme.test",
    "manager": "manager@acme.test",
    "rep": "sales@acme.test",
    "viewer": "viewer@acme.test",
}
SECRET = "rivalsecret"
# The refresh tokens of the world's grants are encrypted with this key (the app's too).
TOKEN_KEY = "Zm9yLWF1dGh6LXRlc3RzLW9ubHktMzItYnl0ZXMtISE="


@dataclass
class Tenant:
    """One workspace's things, as the tests refer to them."""

    crm: Crm
    contact: Record
    twin: Record
    company: Record
    deal: Record
    view: SavedView
    folder: Folder
    field: FieldDef
    form: WebForm
    invitation: Invitation
    entry: AuditEntry


@dataclass
class World:
    """acme.test with a member per role, and rival.test."""

    db: Session
    members: dict[str, Member]
    acme: Tenant
    rival: Tenant
    # Mail merge
    mail: MailMerge

    def folder(self, key: str) -> Folder:
        """An acme.test folder by key."""
        return self.acme.crm.folders[key]


def _member(db: Session, domain: str, email: str, role: str) -> Member:
    member = resolve_member(db, domain, email, is_consumer=False)
    member.role = role
    db.flush()
    return member


def _tenant(db: Session, admin: Member, tag: str) -> Tenant:
    crm = Crm(db, admin, folders_by_key(db, admin.workspace_id))
    company = crm.save("companies", name=f"{tag} Works", domain=f"{tag.lower()}works.test")
    contact = crm.save(
        "contacts",
        first_name=f"{tag} Ada",
        last_name="Person",
        emails=f"ada@{tag.lower()}works.test",
        company=f"#{company.id}",
    )
    twin = crm.save(
        "contacts", first_name=f"{tag} Ada", last_name="Twin", emails=f"twin@{tag.lower()}.test"
    )
    deal = crm.save(
        "deals", name=f"{tag} Deal", contacts=[f"#{contact.id}"], company=f"#{company.id}"
    )
    crm.link(contact, f"thread-{tag.lower()}", "Hello")
    view = save_view(
        db,
        admin,
        crm.folders["contacts"],
        f"{tag} people view",
        {"match": "all", "conditions": [{"field": "_title", "op": "contains", "value": "ada"}]},
        shared=True,
    )
    folder = add_folder(db, admin, f"{tag} Projects")
    field = add_structure_field(db, admin, crm.folders["contacts"], f"{tag} nickname", "text", {})
    crm.folders = folders_by_key(db, admin.workspace_id)
    by_key = {f.key: f for f in folder_fields(db, crm.folders["contacts"].id)}
    asked = [str(by_key[key].id) for key in ("first_name", "last_name", "emails")]
    form = save_form(
        db,
        admin,
        crm.folders["contacts"],
        name=f"{tag} contact form",
        field_ids=asked,
        required_ids={asked[0]},
        labels={},
        thank_you="Thanks",
    )
    invitation = invite(db, admin, f"{tag.lower()}.invitee@{admin.workspace.domain}", "rep")
    entry = db.execute(
        select(AuditEntry)
        .where(AuditEntry.workspace_id == admin.workspace_id, AuditEntry.record_id == contact.id)
        .order_by(AuditEntry.id)
        .limit(1)
    ).scalar_one()
    db.flush()
    return Tenant(crm, contact, twin, company, deal, view, folder, field, form, invitation, entry)


def _grant(db: Session, member: Member, purpose: str) -> None:
    store_grant(
        db,
        member,
        google_email=member.email,
        scopes=list(PURPOSE_SCOPES[purpose]),
        refresh_token=f"refresh-{member.email}",
        cipher=TokenCipher([TOKEN_KEY.encode()]),
    )


def build_world(db: Session) -> World:
    """Both workspaces; acme.test's first member is its admin."""
    members = {"admin": _member(db, "acme.test", ROLE_USERS["admin"], "admin")}
    for role in ("manager", "rep", "viewer"):
        members[role] = _member(db, "acme.test", ROLE_USERS[role], role)
    acme = _tenant(db, members["admin"], "Acme")
    rival_admin = _member(db, "rival.test", "spy@rival.test", "admin")
    rival = _tenant(db, rival_admin, SECRET.capitalize())
    # Every member has connected Gmail, so each can see and revoke their own access.
    for member in [*members.values(), rival_admin]:
        _grant(db, member, SYNC)
    # Mail merge
    mail = build_mail_merge(db, members["admin"], acme.view, rival_admin, rival.view)
    return World(db, members, acme, rival, mail)


def authz_app(
    session_factory: sessionmaker[Session], server: FakeGmailServer, key: SigningKey
) -> Flask:
    """The test application with Google's OAuth endpoints on the fake server, so the
    Gmail access actions run their whole course."""
    install_fake_oauth(server, key)
    return grants_app(session_factory, server, TOKEN_KEYS=TOKEN_KEY, DEFERRED_WORK="inline")


def client_for(app: Flask, tokens: TokenFactory, email: str, hd: str = "acme.test") -> AddonClient:
    """An add-on client posting as this user."""
    return AddonClient(app.test_client(), tokens, user=email, hd=hd)


def snapshot(db: Session) -> dict[str, list[str]]:
    """Every row of every table, as sorted text: equal snapshots mean nothing changed."""
    state: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        rows = db.execute(select(table)).all()
        state[table.name] = sorted(repr(tuple(row)) for row in rows)
    return state


def denied(data: Any) -> bool:
    """Whether an answer is the authorization check's refusal card."""
    if not isinstance(data, dict) or "renderActions" not in data:
        return False
    shown = cards_of(data)
    return bool(shown) and shown[-1]["header"]["title"] == "Not allowed"


Request = dict[str, dict[str, Any]]


def _req(parameters: dict[str, Any] | None = None, form: dict[str, Any] | None = None) -> Request:
    return {
        "parameters": {k: str(v) for k, v in (parameters or {}).items()},
        "form": dict(form or {}),
    }


def _view_editor(w: World) -> dict[str, Any]:
    return {
        "view_name": "Renamed",
        "view_folder": "contacts",
        "match": "all",
        "c0_field": "_title",
        "c0_op": "contains",
        "c0_value": "ada",
        "sort_field": "_title",
        "sort_dir": "asc",
        "shared": "yes",
    }


def _webform_editor(w: World) -> dict[str, Any]:
    by_key = {f.key: str(f.id) for f in folder_fields(w.db, w.folder("contacts").id)}
    asked = [by_key["first_name"], by_key["emails"], by_key["job_title"]]
    return {
        "name": "Talk to us",
        "fields": asked,
        "required": [by_key["first_name"], by_key["emails"]],
        f"label_{by_key['emails']}": "Work email",
        "thank_you": "We will write back.",
    }


# Per action: a request that an acme.test member whose role allows it can carry out.
CASES: dict[str, Callable[[World], Request]] = {
    "admin_structure": lambda w: _req(),
    "admin_add_folder": lambda w: _req(form={"name": "Partners", "singular": "Partner"}),
    "admin_folder": lambda w: _req({"folder_id": w.acme.folder.id}),
    "admin_rename_folder": lambda w: _req(
        {"folder_id": w.acme.folder.id}, {"name": "Initiatives", "singular": "Initiative"}
    ),
    "admin_toggle_folder": lambda w: _req({"folder_id": w.acme.folder.id, "active": "false"}),
    "admin_move_folder": lambda w: _req({"folder_id": w.acme.folder.id, "direction": "-1"}),
    "admin_new_field": lambda w: _req({"folder_id": w.acme.folder.id}),
    "admin_add_field": lambda w: _req(
        {"folder_id": w.acme.folder.id}, {"label": "Budget", "type": "text"}
    ),
    "admin_edit_field": lambda w: _req({"field_id": w.acme.field.id}),
    "admin_update_field": lambda w: _req({"field_id": w.acme.field.id}, {"label": "Alias"}),
    "admin_move_field": lambda w: _req({"field_id": w.acme.field.id, "direction": "-1"}),
    "admin_toggle_field": lambda w: _req({"field_id": w.acme.field.id, "active": "false"}),
    "admin_change_type": lambda w: _req({"field_id": w.acme.field.id}, {"new_type": "email"}),
    "settings": lambda w: _req(),
    "search": lambda w: _req(form={"query": "acme"}),
    "open_record": lambda w: _req({"record_id": w.acme.contact.id}),
    "new_record": lambda w: _req({"folder": "deals", "link_to": w.acme.contact.id}),
    "new_contact": lambda w: _req({"email": "new@newco.test", "name": "New Person"}),
    "create_record": lambda w: _req(
        {"folder": "deals", "link_to": w.acme.contact.id},
        {"name": "Fresh deal", "company": f"#{w.acme.company.id}"},
    ),
    "duplicate_edit": lambda w: _req(
        {"folder": "contacts", "values": json.dumps({"first_name": ["Acme Ada"]})}
    ),
    "edit_record": lambda w: _req({"record_id": w.acme.contact.id}),
    "update_record": lambda w: _req(
        {"record_id": w.acme.contact.id},
        {"job_title": "CTO", "company": f"#{w.acme.company.id}"},
    ),
    "link_search": lambda w: _req({"thread_id": "thread-new"}, {"query": "acme"}),
    "link_thread": lambda w: _req(
        {"record_id": w.acme.company.id, "thread_id": "thread-new", "subject": "Hi"}
    ),
    "unlink_thread": lambda w: _req({"record_id": w.acme.contact.id, "thread_id": "thread-acme"}),
    "new_note": lambda w: _req({"record_id": w.acme.contact.id}),
    "create_note": lambda w: _req({"record_id": w.acme.contact.id}, {"body": "Called her"}),
    "open_view": lambda w: _req({"view_id": w.acme.view.id}),
    "all_views": lambda w: _req(),
    "new_view": lambda w: _req({"folder": "contacts"}),
    "edit_view": lambda w: _req({"view_id": w.acme.view.id}),
    "view_form": lambda w: _req(
        {"view_id": w.acme.view.id, "rows": "1", "add": "1"}, _view_editor(w)
    ),
    "save_view": lambda w: _req({"view_id": w.acme.view.id, "rows": "1"}, _view_editor(w)),
    "confirm_delete_view": lambda w: _req({"view_id": w.acme.view.id}),
    "delete_view": lambda w: _req({"view_id": w.acme.view.id}),
    "export_view": lambda w: _req({"view_id": w.acme.view.id}),
    "find_duplicates": lambda w: _req({"record_id": w.acme.contact.id}),
    "merge_form": lambda w: _req(
        {"record_id": w.acme.contact.id}, {"merge_ids": [str(w.acme.twin.id)]}
    ),
    "merge_records": lambda w: _req(
        {"record_id": w.acme.contact.id, "merge_ids": w.acme.twin.id},
        {"survivor": [str(w.acme.contact.id)], "choice_last_name": [str(w.acme.twin.id)]},
    ),
    "mass_update_form": lambda w: _req({"view_id": w.acme.view.id}),
    "mass_update_preview": lambda w: _req(
        {"view_id": w.acme.view.id},
        {"field": "lifecycle_stage", "mode": "set", "value": "customer"},
    ),
    "mass_update_apply": lambda w: _req(
        {
            "view_id": w.acme.view.id,
            "field": "lifecycle_stage",
            "mode": "set",
            "value": json.dumps(["customer"]),
            "count": "2",
        }
    ),
    "confirm_delete_record": lambda w: _req({"record_id": w.acme.twin.id}),
    "delete_record": lambda w: _req({"record_id": w.acme.twin.id, "confirm": "yes"}),
    "record_timeline": lambda w: _req({"record_id": w.acme.contact.id, "page": "1"}),
    "admin_add_stats_fields": lambda w: _req({"folder_id": w.acme.folder.id}),
    "gmail_access": lambda w: _req({"nav": "update"}),
    "gmail_connect": lambda w: _req({"purpose": "both"}),
    "gmail_revoke": lambda w: _req(),
    "webforms": lambda w: _req(),
    "webform_new": lambda w: _req(form={"folder_id": str(w.folder("contacts").id)}),
    "webform_edit": lambda w: _req({"form_id": w.acme.form.id}),
    "webform_save": lambda w: _req(
        {"form_id": w.acme.form.id, "folder_id": w.folder("contacts").id}, _webform_editor(w)
    ),
    "webform_toggle": lambda w: _req({"form_id": w.acme.form.id, "enabled": "false"}),
    "admin_members": lambda w: _req({"page": "0", "nav": "update"}),
    "admin_member": lambda w: _req({"member_id": w.members["rep"].id}),
    "admin_set_role": lambda w: _req({"member_id": w.members["rep"].id}, {"role": "manager"}),
    "admin_invite": lambda w: _req(form={"email": "newcomer@acme.test", "role": "viewer"}),
    "admin_revoke_invitation": lambda w: _req({"invitation_id": w.acme.invitation.id}),
    "admin_domain": lambda w: _req(),
    "admin_save_domain": lambda w: _req(form={"daily_send_cap": "1000", "default_region": "FR"}),
    "admin_audit": lambda w: _req(
        {"actor_id": w.members["admin"].id, "record_id": w.acme.contact.id, "page": "0"}
    ),
    "admin_audit_entry": lambda w: _req({"entry_id": w.acme.entry.id}),
    "admin_audit_export": lambda w: _req(
        {"fmt": "csv", "actor_id": w.members["admin"].id, "record_id": w.acme.contact.id}
    ),
    "admin_privacy": lambda w: _req(),
    "admin_privacy_export": lambda w: _req(form={"email": "ada@acmeworks.test"}),
    "admin_erase_confirm": lambda w: _req(form={"email": "ada@acmeworks.test"}),
    "admin_erase": lambda w: _req({"email": "ada@acmeworks.test", "confirm": "yes"}),
    # Mail merge (campaigns are sent by the admin; the view is the shared contacts view)
    "mailing_home": lambda w: _req(),
    "mailing_templates": lambda w: _req(),
    "mailing_new_template": lambda w: _req(),
    "mailing_edit_template": lambda w: _req({"template_id": w.mail.template.id}),
    "mailing_save_template": lambda w: _req({"template_id": w.mail.template.id}, template_form()),
    "mailing_new_campaign": lambda w: _req({"view_id": w.acme.view.id}),
    "mailing_save_campaign": lambda w: _req(form=campaign_form(w)),
    "mailing_edit_campaign": lambda w: _req({"campaign_id": w.mail.draft.id}),
    "mailing_preview": lambda w: _req({"campaign_id": w.mail.draft.id, "position": "1"}),
    "mailing_send_test": lambda w: _req({"campaign_id": w.mail.draft.id, "position": "1"}),
    "mailing_start": lambda w: _req({"campaign_id": w.mail.draft.id}),
    "mailing_progress": lambda w: _req({"campaign_id": w.mail.running.id}),
    "mailing_pause": lambda w: _req({"campaign_id": w.mail.running.id}),
    "mailing_resume": lambda w: _req({"campaign_id": w.mail.paused.id}),
    "mailing_confirm_cancel": lambda w: _req({"campaign_id": w.mail.running.id}),
    "mailing_cancel": lambda w: _req({"campaign_id": w.mail.running.id}),
}


def restrict_reps(db: Session, member: Member) -> None:
    """Turn on the workspace option that shows reps only their own records."""
    workspace = member.workspace
    workspace.settings = {**(workspace.settings or {}), OWN_RECORDS_ONLY: True}
    db.flush()


__all__ = ["CASES", "FakeGmail", "World", "build_world", "client_for", "denied", "snapshot"]


# Shared by the whole-surface tests (matrix, fuzz, record rules): import them by these names.
@pytest.fixture(name="app")
def app_with_fake_oauth(
    session_factory: sessionmaker[Session],
    gmail_server: FakeGmailServer,
    signing_keys: tuple[SigningKey, SigningKey],
) -> Flask:
    """The test application, with Google's OAuth endpoints on the fake server."""
    return authz_app(session_factory, gmail_server, signing_keys[0])


@pytest.fixture(name="world")
def world_of_roles(db: Session) -> World:
    """acme.test with a member of each role, and rival.test."""
    return build_world(db)
