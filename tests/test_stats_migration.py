"""Migration 0011: stats fields' copies in field_values go; other values stay."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import inspect, text

from addon.db import make_engine
from addon.migrations import alembic_config, upgrade
from tests.test_permissions_migration import WORKSPACE_ROWS


def test_stats_copies_go_and_other_values_stay(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    engine = make_engine(url)
    with engine.begin() as connection:
        upgrade(url, connection, "0010_admin_audit")
        for statement in [
            *WORKSPACE_ROWS,
            "INSERT INTO field_defs (id, workspace_id, folder_id, key, label, type, options,"
            " required, active, position, next_number, locked)"
            " VALUES (1, 1, 1, 'job_title', 'Job title', 'text', '{}', 0, 1, 0, 1, 0),"
            " (2, 1, 1, 'email_threads', 'Email threads', 'stats',"
            ' \'{"metric": "threads"}\', 0, 1, 1, 1, 0)',
            "INSERT INTO records (id, workspace_id, folder_id, title, search_key,"
            " created_by_id, created_at, updated_at)"
            " VALUES (1, 1, 1, 'Ann', 'ann', 1, '2026-01-01', '2026-01-01')",
            "INSERT INTO field_values (id, workspace_id, record_id, field_id, value,"
            " text_key, num_key) VALUES (1, 1, 1, 1, '\"CTO\"', 'cto', NULL),"
            " (2, 1, 1, 2, '3', '3', 3.0)",
        ]:
            connection.execute(text(statement))
        upgrade(url, connection)
        kept = connection.execute(text("SELECT field_id FROM field_values")).scalars().all()
        indexes = {i["name"] for i in inspect(connection).get_indexes("record_stats")}
        command.downgrade(alembic_config(url, connection), "0010_admin_audit")
        after_downgrade = {i["name"] for i in inspect(connection).get_indexes("record_stats")}
    engine.dispose()
    assert kept == [1]
    assert {"ix_record_stats_last_contacted", "ix_record_stats_last_received"} <= indexes
    assert "ix_record_stats_last_contacted" not in after_downgrade
