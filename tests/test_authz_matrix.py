"""Every registered action for every role: allowed or refused as the permission table says,
and a refused call changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Connection

from addon.crm.models import ROLES
from addon.web.registry import ACTIONS
from tests.authz_support import (  # noqa: F401 (app_with_fake_oauth, world_of_roles: fixtures)
    CASES,
    ROLE_USERS,
    World,
    app_with_fake_oauth,
    client_for,
    denied,
    snapshot,
    world_of_roles,
)
from tests.cardcheck import BASE_URL, check_response
from tests.cardread import card_of, texts
from tests.google_fakes import TokenFactory
from tests.mailing_authz_support import install_grants
from tests.mailing_support import FakeGrants

ALL = frozenset(ROLES)
WRITERS = frozenset({"admin", "manager", "rep"})
MANAGERS = frozenset({"admin", "manager"})
ADMINS = frozenset({"admin"})

# Who may call each action, written out from the permission table of issue 7 (not read
# from the code): viewers only read; reps also create, edit, link, note and export;
# managers also merge, mass update and manage shared views; admins shape the workspace.
EXPECTED: dict[str, frozenset[str]] = {
    **{name: ADMINS for name in CASES if name.startswith("admin_")},
    "settings": ALL,
    "search": ALL,
    "open_record": ALL,
    "open_view": ALL,
    "all_views": ALL,
    "new_view": ALL,
    "new_record": WRITERS,
    "new_contact": WRITERS,
    "create_record": WRITERS,
    "duplicate_edit": WRITERS,
    "edit_record": WRITERS,
    "update_record": WRITERS,
    "link_search": WRITERS,
    "link_thread": WRITERS,
    "unlink_thread": WRITERS,
    "new_note": WRITERS,
    "create_note": WRITERS,
    "export_view": WRITERS,
    # The view in the cases is shared with the workspace: changing it needs share_view.
    "edit_view": MANAGERS,
    "view_form": MANAGERS,
    "save_view": MANAGERS,
    "confirm_delete_view": MANAGERS,
    "delete_view": MANAGERS,
    "find_duplicates": MANAGERS,
    "merge_form": MANAGERS,
    "merge_records": MANAGERS,
    "mass_update_form": MANAGERS,
    "mass_update_preview": MANAGERS,
    "mass_update_apply": MANAGERS,
    "confirm_delete_record": MANAGERS,
    "delete_record": MANAGERS,
    # Every member reads a record's timeline, and sees and revokes their own Gmail access;
    # connecting it (sending, syncing) needs the permissions of what it is for.
    "record_timeline": ALL,
    "gmail_access": ALL,
    "gmail_revoke": ALL,
    "gmail_connect": WRITERS,
    # Web forms write into the workspace from outside: only admins define them.
    **{name: ADMINS for name in CASES if name.startswith("webform")},
    # Mail merge: send_campaigns is for managers and admins. The cases' campaigns are sent
    # by the admin, and only their sender may act on them (an admin may also manage other
    # members' campaigns: tests/test_mailing_authz.py), so the manager is refused those.
    "mailing_home": MANAGERS,
    "mailing_templates": MANAGERS,
    "mailing_new_template": MANAGERS,
    "mailing_edit_template": MANAGERS,
    "mailing_save_template": MANAGERS,
    "mailing_new_campaign": MANAGERS,
    "mailing_save_campaign": MANAGERS,
    "mailing_edit_campaign": ADMINS,
    "mailing_preview": ADMINS,
    "mailing_send_test": ADMINS,
    "mailing_start": ADMINS,
    "mailing_progress": ADMINS,
    "mailing_pause": ADMINS,
    "mailing_resume": ADMINS,
    "mailing_confirm_cancel": ADMINS,
    "mailing_cancel": ADMINS,
}


# Mail merge
@pytest.fixture(autouse=True)
def mail_merge_grants(app: Flask) -> FakeGrants:
    """Every member may send, so the sending actions run in full (to the fake Gmail)."""
    return install_grants(app)


def test_every_registered_action_has_a_case_and_an_expectation(app: Flask) -> None:
    """A new action fails here until the matrix covers it."""
    assert set(ACTIONS) == set(CASES), set(ACTIONS) ^ set(CASES)
    assert set(ACTIONS) == set(EXPECTED), set(ACTIONS) ^ set(EXPECTED)


def _call(app: Flask, tokens: TokenFactory, world: World, name: str, role: str) -> tuple[int, Any]:
    client = client_for(app, tokens, ROLE_USERS[role])
    request = CASES[name](world)
    path = f"/actions/{name}"
    bearer = tokens.system_token(BASE_URL + path)
    response = client.client.post(
        path,
        json=client.event(parameters=request["parameters"], form=request["form"]),
        headers={"Authorization": f"Bearer {bearer}"},
    )
    data = response.get_json()
    if response.status_code == 200:
        check_response(path, data)
    return response.status_code, data


@pytest.mark.parametrize("name", sorted(CASES))
def test_role_matrix(
    app: Flask, tokens: TokenFactory, world: World, connection: Connection, name: str
) -> None:
    """Each role gets the action exactly when the table says; a refusal writes nothing."""
    for role in ROLES:
        # Each role starts from the same world: what an allowed call wrote is undone.
        savepoint = connection.begin_nested()
        try:
            before = snapshot(world.db)
            status, data = _call(app, tokens, world, name, role)
            if role in EXPECTED[name]:
                assert status == 200, (role, status, data)
                assert not denied(data), (role, texts(card_of(data)))
            else:
                assert status == 200 and denied(data), (role, status, data)
                message = texts(card_of(data))
                assert f"your role ({role}) does not allow you to" in message.lower()
                assert snapshot(world.db) == before, role
        finally:
            savepoint.rollback()
