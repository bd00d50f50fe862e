"""Admin cards for web forms: create, edit, publish, roles and other workspaces' ids."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.crm.models import AuditEntry, Member
from addon.crm.webform_models import WebForm
from addon.crm.workspaces import folder_fields, folders_by_key
from tests.cardread import actions_in, card_of, texts
from tests.crmdata import Crm
from tests.google_fakes import AddonClient
from tests.webforms_support import make_form, stored_counts


def _ids(db: Session, crm: Crm, folder: str, *keys: str) -> list[str]:
    by_key = {f.key: f for f in folder_fields(db, crm.folders[folder].id)}
    return [str(by_key[k].id) for k in keys]


def _forms(db: Session) -> list[WebForm]:
    return list(db.execute(select(WebForm).order_by(WebForm.id)).scalars())


def test_admin_creates_edits_and_publishes_a_form(
    app: Flask, addon: AddonClient, crm: Crm, db: Session
) -> None:
    settings = card_of(addon.post("/actions/settings"))
    assert "webforms" in [a["name"] for a in actions_in(settings)]
    listing = card_of(addon.action("webforms"))
    assert "No web forms yet." in texts(listing)

    contacts = str(crm.folders["contacts"].id)
    editor = card_of(addon.action("webform_new", form={"folder_id": contacts}))
    assert "Fields on the form" in str(editor)
    first, emails, phones = _ids(db, crm, "contacts", "first_name", "emails", "phones")
    saved = addon.action(
        "webform_save",
        parameters={"folder_id": contacts},
        form={
            "name": "Demo request",
            "fields": [first, emails, phones],
            "required": [emails],
            f"label_{emails}": "Work email",
            "thank_you": "Thanks!",
        },
    )
    assert saved["renderActions"]["action"]["notification"]["text"] == "Form saved"
    (form,) = _forms(db)
    assert form.fields == [
        {"field_id": int(first), "label": "First name", "required": False},
        {"field_id": int(emails), "label": "Work email", "required": True},
        {"field_id": int(phones), "label": "Phones", "required": False},
    ]
    assert form.workspace_id == crm.member.workspace_id and form.enabled
    assert len(form.public_id) >= 32
    shown = card_of(saved)
    url = f"{app.config['BASE_URL']}/forms/{form.public_id}"
    assert url in texts(shown)
    assert app.test_client().get(f"/forms/{form.public_id}").status_code == 200

    # Edit: another name, phones dropped.
    edit = card_of(addon.action("webform_edit", parameters={"form_id": str(form.id)}))
    assert "Demo request" in str(edit)
    addon.action(
        "webform_save",
        parameters={"folder_id": contacts, "form_id": str(form.id)},
        form={"name": "Talk to sales", "fields": [emails], "required": [emails]},
    )
    db.expire_all()
    assert form.name == "Talk to sales" and len(form.fields) == 1

    addon.action("webform_toggle", parameters={"form_id": str(form.id), "enabled": "false"})
    db.expire_all()
    assert not form.enabled
    assert app.test_client().get(f"/forms/{form.public_id}").status_code == 404
    summaries = db.execute(
        select(AuditEntry.summary).where(AuditEntry.action == "web_form").order_by(AuditEntry.id)
    ).scalars()
    assert list(summaries) == [
        "Created web form “Demo request”",
        "Changed web form “Talk to sales”",
        "Disabled web form “Talk to sales”",
    ]


def test_refused_definitions_show_the_editor_again_and_write_nothing(
    addon: AddonClient, crm: Crm, db: Session
) -> None:
    addon.post("/homepage")
    companies = str(crm.folders["companies"].id)
    (domain,) = _ids(db, crm, "companies", "domain")
    (owner,) = _ids(db, crm, "companies", "owner")
    (emails,) = _ids(db, crm, "contacts", "emails")
    before = stored_counts(db)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "", "fields": [domain]}, "Give the form a name."),
        ({"name": "F"}, "Pick at least one field."),
        ({"name": "F", "fields": [domain]}, "“Name” is required in Companies"),
        ({"name": "F", "fields": [owner]}, "not a field of this folder a form can ask for"),
        ({"name": "F", "fields": [emails]}, "not a field of this folder a form can ask for"),
        ({"name": "x" * 101, "fields": [domain]}, "longer than 100 characters"),
    ]
    for form, message in cases:
        answer = addon.action("webform_save", parameters={"folder_id": companies}, form=form)
        assert message in texts(card_of(answer)), message
        assert stored_counts(db) == before, message


def test_only_admins_manage_forms(addon: AddonClient, crm: Crm, db: Session) -> None:
    form = make_form(crm)
    rep = AddonClient(addon.client, addon.tokens, user="sam@acme.test", hd="acme.test")
    rep.post("/homepage")
    member = db.execute(select(Member).where(Member.email == "sam@acme.test")).scalar_one()
    member.role = "manager"
    db.flush()
    before = stored_counts(db)
    for name, parameters in [
        ("webforms", {}),
        ("webform_edit", {"form_id": str(form.id)}),
        ("webform_toggle", {"form_id": str(form.id), "enabled": "false"}),
        ("webform_save", {"form_id": str(form.id), "folder_id": str(form.folder_id)}),
    ]:
        answer = rep.action(name, parameters=parameters, form={"name": "Hijacked"})
        assert "Not allowed" in texts(card_of(answer)), name
    db.expire_all()
    assert stored_counts(db) == before
    assert form.enabled and form.name == "Contact us"


def test_ids_of_another_workspace_are_refused(
    addon: AddonClient, other_tenant: AddonClient, crm: Crm, db: Session
) -> None:
    form = make_form(crm)
    other_tenant.post("/homepage")  # spy@rival.test: first member, so admin of rival.test
    rival = db.execute(select(Member).where(Member.email == "spy@rival.test")).scalar_one()
    rival_contacts = folders_by_key(db, rival.workspace_id)["contacts"]
    (acme_emails,) = _ids(db, crm, "contacts", "emails")
    before = stored_counts(db)
    other_tenant.action("webform_edit", expect=403, parameters={"form_id": str(form.id)})
    other_tenant.action(
        "webform_toggle", expect=403, parameters={"form_id": str(form.id), "enabled": "false"}
    )
    other_tenant.action(
        "webform_save",
        expect=403,
        parameters={"form_id": str(form.id), "folder_id": str(form.folder_id)},
        form={"name": "Mine now", "fields": [acme_emails]},
    )
    other_tenant.action("webform_new", expect=403, form={"folder_id": str(form.folder_id)})
    # Their own folder, but our field ids: refused as fields the folder does not have.
    answer = other_tenant.action(
        "webform_save",
        parameters={"folder_id": str(rival_contacts.id)},
        form={"name": "Mine", "fields": [acme_emails]},
    )
    assert "not a field of this folder" in texts(card_of(answer))
    db.expire_all()
    assert stored_counts(db) == before
    assert form.enabled and form.name == "Contact us"
