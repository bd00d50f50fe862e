"""CLI commands and the migrations: the schema Alembic builds is the schema the models declare."""

from __future__ import annotations

import json
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from google.cloud.gsuiteaddons_v1 import Deployment
from sqlalchemy import Connection, func, select

from addon import create_app
from addon.crm.models import Record, Workspace
from addon.db import Base, session_scope


def test_migrations_match_models(connection: Connection) -> None:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_manifest_command_prints_a_valid_deployment(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["manifest", "--base-url", "https://crm.example.org/"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    Deployment.from_json(result.output, ignore_unknown_fields=False)
    assert (
        data["addOns"]["common"]["homepageTrigger"]["runFunction"]
        == "https://crm.example.org/homepage"
    )


def test_manifest_command_refuses_plain_http(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["manifest", "--base-url", "http://crm.example.org"])
    assert result.exit_code != 0
    assert "https" in result.output


def test_db_upgrade_and_demo_seed_on_a_fresh_database(tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.sqlite3'}"})
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0 and "created" in first.output
    again = runner.invoke(args=["demo", "seed"])
    assert "already present" in again.output
    with session_scope(app) as session:
        assert session.execute(select(func.count()).select_from(Workspace)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(Record)).scalar_one() >= 12


def test_dev_run_refuses_without_dev_mode(tmp_path: Path) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "DEV": False})
    result = app.test_cli_runner().invoke(args=["dev", "run"])
    assert result.exit_code != 0
    assert "ADDON_DEV=1" in result.output
