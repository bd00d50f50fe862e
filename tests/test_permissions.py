"""Per-folder permissions, locked fields, record owners and "reps see only their own"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from addon.auth.roles import PermissionDenied, can, record_scope, require
from addon.crm.models import AuditEntry, Record
from addon.crm.permissions import (
    PermissionsError,
    effective_permissions,
    set_field_locked,
    set_folder_permissions,
    set_own_records_only,
)
from addon.crm.records import save_record
from addon.crm.workspaces import folder_fields
from addon.gmail.fake_server import FakeGmail, FakeMessage
from tests.authz_support import ROLE_USERS, World, build_world, client_for, denied, snapshot
from tests.cardread import actions_in, card_of, cards_of, texts
from tests.google_fakes import AddonClient, TokenFactory


@pytest.fixture
def world(db: Session) -> World:
    """acme.test with a member of each role, and rival.test."""
    return build_world(db)


def as_role(app: Flask, tokens: TokenFactory, role: str) -> AddonClient:
    """A client posting as acme.test's member of this role."""
    return client_for(app, tokens, ROLE_USERS[role])


def text_of(data: dict[str, Any]) -> str:
    """All visible text of every card of an answer."""
    return "\n".join(texts(c) for c in cards_of(data))


# ------------------------------------------------------------------ folder permissions


def test_defaults_follow_the_role_table(world: World) -> None:
    assert effective_permissions(world.folder("deals")) == {
        "view": ["admin", "manager", "rep", "viewer"],
        "create": ["admin", "manager", "rep"],
        "edit": ["admin", "manager", "rep"],
        "delete": ["admin", "manager"],
    }


def test_folder_create_rule_refuses_reps_with_a_clear_card_and_writes_nothing(
    app: Flask, tokens: TokenFactory, world: World, db: Session
) -> None:
    set_folder_permissions(
        db, world.members["admin"], world.folder("deals"), {"create": ["manager"]}
    )
    rep = as_role(app, tokens, "rep")
    before = snapshot(db)
    data = rep.action("create_record", parameters={"folder": "deals"}, form={"name": "Big one"})
    assert denied(data)
    assert "does not allow you to create records in Deals" in text_of(data)
    assert snapshot(db) == before
    assert denied(rep.action("new_record", parameters={"folder": "deals"}))
    # Other folders keep the role table; managers and admins may still create deals.
    saved = rep.action("create_record", parameters={"folder": "companies"}, form={"name": "Ok Co"})
    assert not denied(saved)
    manager = as_role(app, tokens, "manager")
    assert not denied(
        manager.action("create_record", parameters={"folder": "deals"}, form={"name": "Big one"})
    )


def test_folder_view_rule_hides_the_folder_everywhere(
    app: Flask, tokens: TokenFactory, world: World, db: Session
) -> None:
    set_folder_permissions(
        db, world.members["admin"], world.folder("deals"), {"view": ["admin", "manager"]}
    )
    rep = as_role(app, tokens, "rep")
    data = rep.action("open_record", parameters={"record_id": str(world.acme.deal.id)})
    assert denied(data) and "in Deals" in text_of(data)
    found = text_of(rep.action("search", form={"query": "acme"}))
    assert "Acme Deal" not in found and "Acme Works" in found
    assert "Acme Deal" not in text_of(rep.post("/homepage"))
    manager = as_role(app, tokens, "manager")
    assert "Acme Deal" in text_of(manager.action("search", form={"query": "acme"}))


def test_hidden_folders_are_read_once_per_session_and_again_after_a_permission_change(
    world: World, db: Session
) -> None:
    rep, deals = world.members["rep"], world.folder("deals")
    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", listen)
    try:
        assert record_scope(db, rep) is None
        assert record_scope(db, rep) is None
        assert len([s for s in statements if "FROM folders" in s]) == 1
        set_folder_permissions(db, world.members["admin"], deals, {"view": ["admin"]})
        scope = record_scope(db, rep)
        assert scope is not None
        assert str(deals.id) in str(scope.compile(compile_kwargs={"literal_binds": True}))
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def test_folder_rules_cannot_exceed_the_role_table_or_lock_out_admins(
    world: World, db: Session
) -> None:
    admin, deals = world.members["admin"], world.folder("deals")
    with pytest.raises(PermissionsError, match="viewer role cannot edit records anywhere"):
        set_folder_permissions(db, admin, deals, {"edit": ["viewer"]})
    with pytest.raises(PermissionsError, match="not a folder permission"):
        set_folder_permissions(db, admin, deals, {"merge": ["rep"]})
    with pytest.raises(PermissionsError, match="“owner” is not a role"):
        set_folder_permissions(db, admin, deals, {"view": ["owner"]})
    assert deals.permissions is None
    assert set_folder_permissions(db, admin, deals, {"edit": []})["edit"] == ["admin"]
    assert can(admin, "edit", deals) and not can(world.members["manager"], "edit", deals)
    with pytest.raises(PermissionDenied):
        set_folder_permissions(db, world.members["manager"], deals, {"edit": ["manager"]})
    entry = db.execute(
        select(AuditEntry).where(AuditEntry.action == "permission_change")
    ).scalar_one()
    assert entry.before is not None and entry.after is not None
    assert entry.before["edit"] == ["admin", "manager", "rep"] and entry.after["edit"] == ["admin"]


def test_merge_needs_delete_in_the_folder(world: World, db: Session) -> None:
    contacts = world.folder("contacts")
    set_folder_permissions(db, world.members["admin"], contacts, {"delete": []})
    with pytest.raises(PermissionDenied, match="delete records in Contacts"):
        require(world.members["manager"], "merge", contacts)


# ------------------------------------------------------------------------ locked fields


def _lock_stage(world: World, db: Session) -> None:
    fields = folder_fields(db, world.folder("contacts").id)
    stage = next(f for f in fields if f.key == "lifecycle_stage")
    set_field_locked(db, world.members["admin"], stage, True)


def test_locked_field_is_read_only_for_others_and_forgery_is_refused(
    app: Flask, tokens: TokenFactory, world: World, db: Session
) -> None:
    contact = world.acme.contact
    save_record(
        db, world.members["admin"], world.folder("contacts"), {"lifecycle_stage": ["lead"]}, contact
    )
    _lock_stage(world, db)
    manager = as_role(app, tokens, "manager")
    form = card_of(manager.action("edit_record", parameters={"record_id": str(contact.id)}))
    assert "Locked: admins only" in texts(form)
    assert '"name": "lifecycle_stage"' not in json.dumps(form)
    before = snapshot(db)
    forged = manager.action(
        "update_record",
        parameters={"record_id": str(contact.id)},
        form={"lifecycle_stage": "customer", "job_title": "CEO"},
    )
    assert "is locked: only admins can change it" in text_of(forged)
    assert snapshot(db) == before
    # Without the forged input the rest of the form saves and the locked value stays.
    manager.action(
        "update_record", parameters={"record_id": str(contact.id)}, form={"job_title": "CEO"}
    )
    admin = as_role(app, tokens, "admin")
    shown = text_of(admin.action("open_record", parameters={"record_id": str(contact.id)}))
    assert "CEO" in shown and "lead" in shown
    created = manager.action(
        "create_record",
        parameters={"folder": "contacts"},
        form={"first_name": "Newt", "lifecycle_stage": "customer"},
    )
    assert "is locked" in text_of(created)
    admin_form = card_of(admin.action("edit_record", parameters={"record_id": str(contact.id)}))
    assert '"name": "lifecycle_stage"' in json.dumps(admin_form)
    admin.action(
        "update_record",
        parameters={"record_id": str(contact.id)},
        form={"lifecycle_stage": "customer"},
    )
    assert "customer" in text_of(
        admin.action("open_record", parameters={"record_id": str(contact.id)})
    )


# ---------------------------------------------------------------------- record owners


def test_owner_is_the_creator_or_the_owner_field(world: World, db: Session) -> None:
    rep, manager = world.members["rep"], world.members["manager"]
    contacts = world.folder("contacts")
    mine = save_record(db, rep, contacts, {"first_name": ["Mine"]})
    assert mine.owner_member_id == rep.id
    given = save_record(db, rep, contacts, {"first_name": ["Given"], "owner": [manager.email]})
    assert given.owner_member_id == manager.id
    save_record(db, rep, contacts, {"owner": [f"#{rep.id}"]}, given)
    assert given.owner_member_id == rep.id
    save_record(db, rep, contacts, {"owner": [""]}, given)
    assert given.owner_member_id == rep.id  # no owner named: the creator's
    project = save_record(db, manager, world.acme.folder, {"name": ["Launch"]})
    assert project.owner_member_id == manager.id  # a folder without an owner field


# ------------------------------------------------------------ reps see only their own


def test_restricted_reps_see_only_records_they_own_or_are_named_in(
    app: Flask, tokens: TokenFactory, world: World, db: Session, gmail: FakeGmail
) -> None:
    admin, rep_member = world.members["admin"], world.members["rep"]
    contacts = world.folder("contacts")
    own = save_record(db, rep_member, contacts, {"first_name": ["Acme Own"]})
    assigned = save_record(
        db, admin, world.folder("deals"), {"name": ["Acme Assigned"], "owner": [rep_member.email]}
    )
    set_own_records_only(db, admin, True)
    rep = as_role(app, tokens, "rep")
    hidden = world.acme.contact

    before = snapshot(db)
    refused = rep.action("open_record", parameters={"record_id": str(hidden.id)})
    assert denied(refused) and "only the records they own or are assigned" in text_of(refused)
    assert denied(
        rep.action(
            "update_record", parameters={"record_id": str(hidden.id)}, form={"job_title": "X"}
        )
    )
    assert snapshot(db) == before
    assert not denied(rep.action("open_record", parameters={"record_id": str(own.id)}))
    assert not denied(rep.action("open_record", parameters={"record_id": str(assigned.id)}))

    found = text_of(rep.action("search", form={"query": "acme"}))
    assert "Acme Own" in found and "Acme Assigned" in found
    assert hidden.title not in found and "Acme Works" not in found
    home = text_of(rep.post("/homepage"))
    assert "Acme Own" in home and hidden.title not in home
    view = text_of(rep.action("open_view", parameters={"view_id": str(world.acme.view.id)}))
    assert "Acme Own" not in view and hidden.title not in view  # "Acme Own" has no "ada"
    assert "1 record" not in view and "No records match this view." in view

    # The contextual card does not show the hidden contact or its deal.
    gmail.add(FakeMessage("msg-1", "thr-1", headers=[("From", "ada@acmeworks.test")]))
    contextual = rep.post(
        "/gmail/message",
        gmail={"messageId": "msg-1", "threadId": "thr-1", "accessToken": "t"},
    )
    assert hidden.title not in text_of(contextual) and "Acme Deal" not in text_of(contextual)

    # Managers are not restricted; and the option off shows reps everything again.
    manager = as_role(app, tokens, "manager")
    assert hidden.title in text_of(manager.action("search", form={"query": "acme"}))
    set_own_records_only(db, admin, False)
    assert hidden.title in text_of(rep.action("search", form={"query": "acme"}))


def test_restricted_rep_exports_only_their_records(
    app: Flask, tokens: TokenFactory, world: World, db: Session
) -> None:
    admin, rep_member = world.members["admin"], world.members["rep"]
    save_record(db, rep_member, world.folder("contacts"), {"first_name": ["Acme Own"]})
    set_own_records_only(db, admin, True)
    rep = as_role(app, tokens, "rep")
    answer = rep.action("export_view", parameters={"folder": "contacts"})
    url = answer["renderActions"]["action"]["link"]["url"]
    body = rep.client.get(url.split("addon.test", 1)[1]).get_data(as_text=True)
    assert "Acme Own" in body and world.acme.contact.title.split()[-1] not in body.split("\n", 1)[1]
    assert len(body.strip().splitlines()) == 2  # the header and the rep's one contact


def test_option_change_is_admin_only_and_audited(world: World, db: Session) -> None:
    with pytest.raises(PermissionDenied):
        set_own_records_only(db, world.members["manager"], True)
    set_own_records_only(db, world.members["admin"], True)
    entry = db.execute(
        select(AuditEntry).where(AuditEntry.action == "settings_change")
    ).scalar_one()
    assert entry.after == {"reps_see_own_records_only": True}


def test_hidden_records_are_counted_in_no_list(world: World, db: Session) -> None:
    set_own_records_only(db, world.members["admin"], True)
    scope = record_scope(db, world.members["rep"])
    assert scope is not None
    visible = db.execute(
        select(Record.id).where(Record.workspace_id == world.members["rep"].workspace_id, scope)
    ).all()
    assert visible == []
    assert record_scope(db, world.members["manager"]) is None


def test_record_card_shows_the_owner_when_no_owner_field_does(
    app: Flask, tokens: TokenFactory, world: World, db: Session
) -> None:
    manager = world.members["manager"]
    project = save_record(db, manager, world.acme.folder, {"name": ["Launch"]})
    admin = as_role(app, tokens, "admin")
    card = card_of(admin.action("open_record", parameters={"record_id": str(project.id)}))
    owner_line = [w for w in walk_decorated(card) if w.get("topLabel") == "Owner"]
    assert [w["text"] for w in owner_line] == ["manager@acme.test"]
    # A contact's owner field is shown once, as the field.
    contact = save_record(
        db, manager, world.folder("contacts"), {"first_name": ["Olga"], "owner": [manager.email]}
    )
    shown = texts(card_of(admin.action("open_record", parameters={"record_id": str(contact.id)})))
    assert shown.count("manager@acme.test") == 1


def walk_decorated(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every decoratedText widget of a card."""
    return [
        widget["decoratedText"]
        for section in card.get("sections", [])
        for widget in section.get("widgets", [])
        if "decoratedText" in widget
    ]


def test_mass_update_leaves_locked_fields_to_admins(
    app: Flask, tokens: TokenFactory, world: World, db: Session
) -> None:
    _lock_stage(world, db)
    manager = as_role(app, tokens, "manager")
    view_id = str(world.acme.view.id)
    form = json.dumps(card_of(manager.action("mass_update_form", parameters={"view_id": view_id})))
    assert '"value": "lifecycle_stage"' not in form
    before = snapshot(db)
    preview = manager.action(
        "mass_update_preview",
        parameters={"view_id": view_id},
        form={"field": "lifecycle_stage", "mode": "set", "value": "customer"},
    )
    assert "Lifecycle stage is locked: only admins can change it" in text_of(preview)
    assert snapshot(db) == before
    admin = as_role(app, tokens, "admin")
    allowed = admin.action(
        "mass_update_preview",
        parameters={"view_id": view_id},
        form={"field": "lifecycle_stage", "mode": "set", "value": "customer"},
    )
    assert "locked" not in text_of(allowed)


def test_cli_import_and_export_follow_folder_rules(
    app: Flask, world: World, db: Session, tmp_path: Path
) -> None:
    contacts = world.folder("contacts")
    set_folder_permissions(db, world.members["admin"], contacts, {"create": ["admin"]})
    path = tmp_path / "people.csv"
    path.write_text("Name,Email\nAnn Lee,ann@x.com\n")
    before = snapshot(db)
    result = app.test_cli_runner().invoke(
        args=["crm", "import", str(path), "--domain", "acme.test", "--as", ROLE_USERS["manager"]]
    )
    assert result.exit_code != 0
    assert "does not allow you to create records in Contacts" in result.output
    assert snapshot(db) == before

    set_own_records_only(db, world.members["admin"], True)
    save_record(db, world.members["rep"], contacts, {"first_name": ["Acme Own"]})
    out = tmp_path / "out.csv"
    result = app.test_cli_runner().invoke(
        args=[
            "crm", "export", "--domain", "acme.test", "--folder", "contacts",
            "--as", ROLE_USERS["rep"], "-o", str(out),
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = out.read_text(encoding="utf-8-sig").strip().splitlines()
    assert len(rows) == 2 and "Acme Own" in rows[1]


def test_record_card_offers_only_what_the_viewer_may_do(
    app: Flask, tokens: TokenFactory, world: World
) -> None:
    record_id = str(world.acme.contact.id)
    names = {
        role: {
            a["name"]
            for a in actions_in(
                card_of(
                    as_role(app, tokens, role).action(
                        "open_record", parameters={"record_id": record_id, "thread_id": "t-9"}
                    )
                )
            )
        }
        for role in ("viewer", "rep", "manager")
    }
    offered = {"edit_record", "link_thread", "unlink_thread", "new_note", "new_record"}
    assert not names["viewer"] & (offered | {"find_duplicates"})
    assert offered <= names["rep"] and "find_duplicates" not in names["rep"]
    assert offered | {"find_duplicates"} <= names["manager"]
