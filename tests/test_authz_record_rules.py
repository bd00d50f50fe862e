"""Every action that names a record by id follows the record's folder rules and the
own-records option, not just the role table: a hidden record is refused and nothing
changes, whichever action names it."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from addon.crm.models import Record
from addon.crm.permissions import set_folder_permissions, set_own_records_only
from tests.authz_support import (  # noqa: F401 (app_with_fake_oauth, world_of_roles: fixtures)
    CASES,
    ROLE_USERS,
    World,
    app_with_fake_oauth,
    build_world,
    client_for,
    denied,
    snapshot,
    world_of_roles,
)
from tests.cardcheck import BASE_URL, check_response
from tests.cardread import card_of, texts
from tests.google_fakes import TokenFactory

# Every action whose request names a record in its record_id parameter.
RECORD_ACTIONS = [
    "open_record", "edit_record", "update_record", "link_thread", "unlink_thread", "new_note",
    "create_note", "find_duplicates", "merge_form", "merge_records", "confirm_delete_record",
    "delete_record", "record_timeline", "admin_audit", "admin_audit_export",
]  # fmt: skip


def test_the_list_names_every_record_action(app: Flask, db: Session) -> None:
    """A new action that takes a record_id fails here until it is listed above."""
    world = build_world(db)
    carrying = {name for name, case in CASES.items() if "record_id" in case(world)["parameters"]}
    assert carrying == set(RECORD_ACTIONS), carrying ^ set(RECORD_ACTIONS)


def _record_of(world: World, request: dict[str, dict[str, Any]]) -> Record:
    record = world.db.get(Record, int(request["parameters"]["record_id"]))
    assert record is not None
    return record


def _post(app: Flask, tokens: TokenFactory, role: str, name: str, request: Any) -> Any:
    client = client_for(app, tokens, ROLE_USERS[role])
    path = f"/actions/{name}"
    response = client.client.post(
        path,
        json=client.event(parameters=request["parameters"], form=request["form"]),
        headers={"Authorization": f"Bearer {tokens.system_token(BASE_URL + path)}"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    check_response(path, data)
    return data


@pytest.mark.parametrize("name", RECORD_ACTIONS)
def test_a_folder_hidden_from_a_role_is_hidden_from_every_action(
    app: Flask, tokens: TokenFactory, world: World, connection: Connection, name: str
) -> None:
    """Only admins may view the record's folder: managers and reps are refused, even for
    what their role would allow there (editing, deleting), and nothing is written."""
    request = CASES[name](world)
    folder = _record_of(world, request).folder
    set_folder_permissions(world.db, world.members["admin"], folder, {"view": []})
    for role in ("manager", "rep"):
        savepoint = connection.begin_nested()
        try:
            before = snapshot(world.db)
            data = _post(app, tokens, role, name, request)
            assert denied(data), (role, texts(card_of(data)))
            assert f"your role ({role}) does not allow you to" in texts(card_of(data)).lower()
            assert snapshot(world.db) == before, role
        finally:
            savepoint.rollback()
    # The admin still may.
    assert not denied(_post(app, tokens, "admin", name, request))


@pytest.mark.parametrize("name", RECORD_ACTIONS)
def test_a_restricted_rep_reaches_no_record_of_others_through_any_action(
    app: Flask, tokens: TokenFactory, world: World, name: str
) -> None:
    """With "reps see only their own records" on, a rep naming a record they neither own
    nor are assigned is refused, and nothing is written."""
    set_own_records_only(world.db, world.members["admin"], True)
    request = CASES[name](world)
    record = _record_of(world, request)
    assert record.owner_member_id != world.members["rep"].id
    before = snapshot(world.db)
    data = _post(app, tokens, "rep", name, request)
    assert denied(data), texts(card_of(data))
    assert snapshot(world.db) == before
