"""Database state for assertions that a refused request wrote nothing."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.db import Base


def row_counts(db: Session) -> dict[str, int]:
    """Row count of every table, read through the test's session."""
    return {
        table.name: db.execute(select(func.count()).select_from(table)).scalar_one()
        for table in Base.metadata.sorted_tables
    }
