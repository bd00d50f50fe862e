"""Alembic migrations; run with `flask --app addon db upgrade`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

MIGRATIONS_DIR = Path(__file__).parent


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    """An Alembic config pointing at this package, for a URL or an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str, connection: Connection | None = None, revision: str = "head") -> None:
    """Bring the schema up to a revision."""
    command.upgrade(alembic_config(url, connection), revision)
