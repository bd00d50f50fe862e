"""Database state for assertions: what a refused request wrote, which statements ran."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, event, func, select
from sqlalchemy.orm import Session

from addon.db import Base


def row_counts(db: Session) -> dict[str, int]:
    """Row count of every table, read through the test's session."""
    return {
        table.name: db.execute(select(func.count()).select_from(table)).scalar_one()
        for table in Base.metadata.sorted_tables
    }


class StatementCounter:
    """Collects the SQL of every statement run on a connection inside a `with` block."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.statements: list[str] = []

    def _count(self, *args: Any) -> None:
        self.statements.append(args[2])

    def __enter__(self) -> StatementCounter:
        event.listen(self.connection, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.connection, "before_cursor_execute", self._count)
