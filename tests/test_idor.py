"""Ids from another workspace in every parameter and form input that carries one: refused,
nothing of the other workspace read, nothing changed anywhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from addon.crm.models import Record
from addon.crm.workspaces import folder_fields
from addon.web.registry import ACTIONS
from tests.authz_support import (
    CASES,
    ROLE_USERS,
    SECRET,
    World,
    build_world,
    client_for,
    snapshot,
)
from tests.cardcheck import BASE_URL, check_response
from tests.cardread import card_of, texts
from tests.google_fakes import TokenFactory
from tests.mailing_authz_support import install_grants
from tests.mailing_support import FakeGrants

FOREIGN_ID = "403"  # the answer to an id of another workspace, as to an unknown one


@dataclass(frozen=True)
class Swap:
    """One input of an action's request replaced by something of rival.test."""

    where: str  # "parameters" or "form"
    key: str
    value: Callable[[World], str | list[str]]
    # FOREIGN_ID, or text the answer (a form shown again) must say instead.
    outcome: str = FOREIGN_ID
    # Other inputs set so that this one is the one read (e.g. a link target needs a
    # link type); a blank value removes a parameter.
    also: tuple[tuple[str, str, str], ...] = ()


def _record(w: World) -> str:
    return str(w.rival.contact.id)


def _view(w: World) -> str:
    return str(w.rival.view.id)


def _folder(w: World) -> str:
    return str(w.rival.folder.id)


def _field(w: World) -> str:
    return str(w.rival.field.id)


def _folder_key(w: World) -> str:
    return w.rival.folder.key


def _hash(record: Callable[[World], Record]) -> Callable[[World], str]:
    return lambda w: f"#{record(w).id}"


def _rival_company(w: World) -> Record:
    return w.rival.company


def _rival_contact(w: World) -> Record:
    return w.rival.contact


def _rival_member(w: World) -> str:
    return str(w.rival.crm.member.id)


def _rival_fields(w: World) -> list[str]:
    by_key = {f.key: str(f.id) for f in folder_fields(w.db, w.rival.crm.folders["contacts"].id)}
    return [by_key["first_name"], by_key["emails"]]


NOT_FOUND = "was not found"
NOT_A_MEMBER = "is not a member of this workspace"
NOT_A_RECORD = "is not a record of this workspace"
RECORD = Swap("parameters", "record_id", _record)
VIEW = Swap("parameters", "view_id", _view)
FOLDER = Swap("parameters", "folder_id", _folder)
FIELD = Swap("parameters", "field_id", _field)
FORM = Swap("parameters", "form_id", lambda w: str(w.rival.form.id))
MEMBER = Swap(
    "parameters", "member_id", _rival_member, outcome="That member is not in this workspace"
)
AUDIT_ACTOR = Swap("parameters", "actor_id", _rival_member, outcome=NOT_A_MEMBER)
AUDIT_RECORD = Swap("parameters", "record_id", _record, outcome=NOT_A_RECORD)


# Mail merge: a foreign id is answered with an error card, as an unknown one.
ABSENT = "does not exist in your workspace"


def _template(w: World) -> str:
    return str(w.mail.rival_template.id)


def _campaign(w: World) -> str:
    return str(w.mail.rival_campaign.id)


TEMPLATE = Swap("parameters", "template_id", _template, outcome=ABSENT)
CAMPAIGN = Swap("parameters", "campaign_id", _campaign, outcome=ABSENT)
MAIL_VIEW = Swap("parameters", "view_id", _view, outcome=ABSENT)

# Every action, and every input of it that names something by id (or by a key that only
# exists in the other workspace). An action that carries none says so with [].
SWAPS: dict[str, list[Swap]] = {
    "admin_structure": [],
    "admin_add_folder": [],
    "admin_folder": [FOLDER],
    "admin_rename_folder": [FOLDER],
    "admin_toggle_folder": [FOLDER],
    "admin_move_folder": [FOLDER],
    "admin_new_field": [FOLDER],
    "admin_add_field": [
        FOLDER,
        Swap(
            "form",
            "target",
            _folder_key,
            outcome="“{value}” is not one",
            also=(("form", "type", "link"),),
        ),
    ],
    "admin_edit_field": [FIELD],
    "admin_update_field": [FIELD],
    "admin_move_field": [FIELD],
    "admin_toggle_field": [FIELD],
    "admin_change_type": [FIELD],
    "settings": [],
    "search": [],
    "open_record": [RECORD],
    "new_record": [
        Swap("parameters", "folder", _folder_key),
        Swap("parameters", "link_to", _record),
    ],
    "new_contact": [],
    "create_record": [
        Swap("parameters", "folder", _folder_key),
        Swap("parameters", "link_to", _record),
        Swap("form", "company", _hash(_rival_company), outcome=NOT_FOUND),
        Swap(
            "form",
            "contacts",
            _hash(_rival_contact),
            outcome=NOT_FOUND,
            also=(("parameters", "link_to", ""),),
        ),
        Swap(
            "form",
            "owner",
            lambda w: f"#{w.rival.crm.member.id}",
            outcome="is not a member of this workspace",
        ),
        # "Create anyway" carries the form as JSON in a parameter.
        Swap(
            "parameters",
            "values",
            lambda w: json.dumps({"name": ["Carried"], "company": [f"#{w.rival.company.id}"]}),
            outcome=NOT_FOUND,
            also=(("parameters", "force", "1"),),
        ),
    ],
    "duplicate_edit": [Swap("parameters", "folder", _folder_key)],
    "edit_record": [RECORD],
    "update_record": [
        RECORD,
        Swap("form", "company", _hash(_rival_company), outcome=NOT_FOUND),
        Swap(
            "form",
            "owner",
            lambda w: f"#{w.rival.crm.member.id}",
            outcome="is not a member of this workspace",
        ),
    ],
    "link_search": [],
    "link_thread": [Swap("parameters", "record_id", lambda w: str(w.rival.company.id))],
    "unlink_thread": [RECORD],
    "new_note": [RECORD],
    "create_note": [RECORD],
    "open_view": [VIEW],
    "all_views": [],
    "new_view": [],
    "edit_view": [VIEW],
    "view_form": [VIEW],
    "save_view": [
        VIEW,
        Swap(
            "form",
            "c0_value",
            lambda w: f"#{w.rival.company.id}",
            outcome=NOT_FOUND,
            also=(("form", "c0_field", "company"), ("form", "c0_op", "equals")),
        ),
    ],
    "confirm_delete_view": [VIEW],
    "delete_view": [VIEW],
    "export_view": [
        VIEW,
        Swap("parameters", "folder", _folder_key, also=(("parameters", "view_id", ""),)),
    ],
    "find_duplicates": [RECORD],
    "merge_form": [RECORD, Swap("form", "merge_ids", lambda w: [str(w.rival.twin.id)])],
    "merge_records": [
        RECORD,
        Swap("parameters", "merge_ids", lambda w: str(w.rival.twin.id)),
    ],
    "mass_update_form": [VIEW],
    "mass_update_preview": [
        VIEW,
        Swap(
            "form",
            "value",
            lambda w: f"#{w.rival.crm.member.id}",
            outcome="is not a member of this workspace",
            also=(("form", "field", "owner"),),
        ),
    ],
    "mass_update_apply": [
        VIEW,
        Swap(
            "parameters",
            "value",
            lambda w: json.dumps([f"#{w.rival.crm.member.id}"]),
            outcome="is not a member of this workspace",
            also=(("parameters", "field", "owner"),),
        ),
    ],
    "confirm_delete_record": [RECORD],
    "delete_record": [RECORD],
    "record_timeline": [RECORD],
    "admin_add_stats_fields": [FOLDER],
    # The Gmail access actions name no grant and no member: each works on the caller's own.
    "gmail_access": [],
    "gmail_connect": [],
    "gmail_revoke": [],
    "webforms": [],
    "webform_new": [Swap("form", "folder_id", _folder)],
    "webform_edit": [FORM],
    "webform_save": [
        FORM,
        Swap("parameters", "folder_id", _folder),
        Swap("form", "fields", _rival_fields, outcome="is not a field of this folder"),
        Swap("form", "required", _rival_fields, outcome="A required field is not on the form"),
    ],
    "webform_toggle": [FORM],
    "admin_members": [],
    "admin_member": [MEMBER],
    "admin_set_role": [MEMBER],
    "admin_invite": [],
    "admin_revoke_invitation": [
        Swap(
            "parameters",
            "invitation_id",
            lambda w: str(w.rival.invitation.id),
            outcome="That invitation is no longer pending",
        )
    ],
    "admin_domain": [],
    "admin_save_domain": [],
    "admin_audit": [
        AUDIT_ACTOR,
        AUDIT_RECORD,
        Swap(
            "form",
            "actor",
            _rival_member,
            outcome=NOT_A_MEMBER,
            also=(("parameters", "filter", "1"),),
        ),
        Swap(
            "form",
            "record",
            _record,
            outcome=NOT_A_RECORD,
            also=(("parameters", "filter", "1"),),
        ),
    ],
    "admin_audit_entry": [
        Swap(
            "parameters",
            "entry_id",
            lambda w: str(w.rival.entry.id),
            outcome="That audit entry is not in this workspace",
        )
    ],
    "admin_audit_export": [AUDIT_ACTOR, AUDIT_RECORD],
    # Privacy requests name a person by address, never by id.
    "admin_privacy": [],
    "admin_privacy_export": [],
    "admin_erase_confirm": [],
    "admin_erase": [],
    # Mail merge
    "mailing_home": [],
    "mailing_templates": [],
    "mailing_new_template": [],
    "mailing_edit_template": [TEMPLATE],
    "mailing_save_template": [TEMPLATE],
    "mailing_new_campaign": [MAIL_VIEW],
    "mailing_save_campaign": [
        Swap("form", "cmp_view", _view, outcome=ABSENT),
        Swap("form", "cmp_template", _template, outcome=ABSENT),
        CAMPAIGN,
    ],
    "mailing_edit_campaign": [CAMPAIGN],
    "mailing_preview": [CAMPAIGN],
    "mailing_send_test": [CAMPAIGN],
    "mailing_start": [CAMPAIGN],
    "mailing_progress": [CAMPAIGN],
    "mailing_pause": [CAMPAIGN],
    "mailing_resume": [CAMPAIGN],
    "mailing_confirm_cancel": [CAMPAIGN],
    "mailing_cancel": [CAMPAIGN],
}


# Mail merge
@pytest.fixture(autouse=True)
def mail_merge_grants(app: Flask) -> FakeGrants:
    """Every member may send: a foreign campaign is refused before any grant is asked for."""
    return install_grants(app)


def test_every_action_lists_its_id_inputs(app: Flask) -> None:
    """A new action fails here until its id-carrying inputs are listed."""
    assert set(ACTIONS) == set(SWAPS), set(ACTIONS) ^ set(SWAPS)


CASES_WITH_IDS = [
    (name, index) for name, swaps in sorted(SWAPS.items()) for index in range(len(swaps))
]


@pytest.mark.parametrize(("name", "index"), CASES_WITH_IDS)
def test_foreign_id_is_refused(
    app: Flask, tokens: TokenFactory, db: Session, name: str, index: int
) -> None:
    """An acme.test admin (who may do everything there) naming rival.test's things."""
    world = build_world(db)
    swap = SWAPS[name][index]
    request = CASES[name](world)
    value = swap.value(world)
    request[swap.where][swap.key] = value
    for where, key, extra in swap.also:
        request[where][key] = extra
    before = snapshot(db)
    client = client_for(app, tokens, ROLE_USERS["admin"])
    path = f"/actions/{name}"
    bearer = tokens.system_token(BASE_URL + path)
    response = client.client.post(
        path,
        json=client.event(parameters=request["parameters"], form=request["form"]),
        headers={"Authorization": f"Bearer {bearer}"},
    )
    body = response.get_data(as_text=True)
    # What the caller typed may be shown back to them; nothing else of rival.test may.
    echoed = body.lower()
    for typed in [value] if isinstance(value, str) else value:
        echoed = echoed.replace(typed.lower(), "")
    assert SECRET not in echoed, body
    outcome = swap.outcome.replace("{value}", str(value))
    if swap.outcome == FOREIGN_ID:
        assert response.status_code == 403, (response.status_code, body)
        assert response.get_json() == {"error": "record not found in your workspace"}
    else:
        assert response.status_code == 200, body
        check_response(path, response.get_json())
        assert outcome in texts(card_of(response.get_json())), body
    assert snapshot(db) == before


def test_other_workspace_member_reads_nothing_of_acme(
    app: Flask, tokens: TokenFactory, db: Session
) -> None:
    """The other direction, through the homepage and search: rival sees only its own."""
    world = build_world(db)
    spy = client_for(app, tokens, "spy@rival.test", hd="rival.test")
    home = json.dumps(spy.post("/homepage"))
    found = json.dumps(spy.action("search", form={"query": "acme"}))
    assert "Acme" not in home and "Acme" not in found
    assert world.acme.contact.title not in found
