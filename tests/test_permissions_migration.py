"""Migration 0009_permissions fills record owners from the Owner field, else the creator."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from addon.db import make_engine
from addon.migrations import alembic_config, upgrade

# A workspace with two members and a contacts folder, in the columns every revision has.
WORKSPACE_ROWS = (
    "INSERT INTO workspaces (id, domain, is_consumer, settings, created_at)"
    " VALUES (1, 'acme.test', 0, '{}', '2026-01-01')",
    "INSERT INTO members (id, workspace_id, email, name, role, created_at)"
    " VALUES (1, 1, 'a@acme.test', '', 'admin', '2026-01-01'),"
    " (2, 1, 'b@acme.test', '', 'rep', '2026-01-01')",
    "INSERT INTO folders (id, workspace_id, key, name, singular, position, active)"
    " VALUES (1, 1, 'contacts', 'Contacts', 'Contact', 0, 1)",
)


def test_owners_are_backfilled(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        upgrade(url, connection, "0004")
        for statement in [
            *WORKSPACE_ROWS,
            "INSERT INTO field_defs (id, workspace_id, folder_id, key, label, type, options,"
            " required, active, position, next_number)"
            " VALUES (1, 1, 1, 'owner', 'Owner', 'user', '{}', 0, 1, 0, 1)",
            "INSERT INTO records (id, workspace_id, folder_id, title, search_key,"
            " created_by_id, created_at, updated_at)"
            " VALUES (1, 1, 1, 'Owned', 'owned', 1, '2026-01-01', '2026-01-01'),"
            " (2, 1, 1, 'Plain', 'plain', 1, '2026-01-01', '2026-01-01')",
            "INSERT INTO field_values (id, workspace_id, record_id, field_id, value,"
            " text_key, num_key) VALUES (1, 1, 1, 1, '2', '2', 2.0)",
        ]:
            connection.execute(text(statement))
        upgrade(url, connection)
        owners = dict(connection.execute(text("SELECT id, owner_member_id FROM records")).all())
        locked = connection.execute(text("SELECT locked FROM field_defs")).scalar_one()
        permissions = connection.execute(text("SELECT permissions FROM folders")).scalar_one()
    engine.dispose()
    assert owners == {1: 2, 2: 1}
    assert not locked and permissions is None


def test_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        upgrade(url, connection)
        command.downgrade(alembic_config(url, connection), "0004")
        columns = {c["name"] for c in inspect(connection).get_columns("records")}
        assert "owner_member_id" not in columns
        upgrade(url, connection)
        columns = {c["name"] for c in inspect(connection).get_columns("records")}
        assert "owner_member_id" in columns
    engine.dispose()
