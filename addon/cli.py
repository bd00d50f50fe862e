"""`flask --app addon ...` commands: manifest, db, demo, dev."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from werkzeug.serving import run_simple

from addon import migrations
from addon.manifest import render_deployment_json


def register(app: Flask) -> None:
    """Register the command groups on the app."""
    app.cli.add_command(manifest_command)
    app.cli.add_command(db_group)
    app.cli.add_command(demo_group)
    app.cli.add_command(dev_group)


@click.command("manifest")
@click.option("--base-url", required=True, help="Public https base URL of the service.")
def manifest_command(base_url: str) -> None:
    """Print the add-on deployment descriptor for a base URL."""
    try:
        click.echo(render_deployment_json(base_url), nl=False)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


@click.group("db", cls=AppGroup)
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply Alembic migrations to ADDON_DATABASE_URL."""
    engine = current_app.extensions["addon.engine"]
    with engine.begin() as connection:
        migrations.upgrade(current_app.config["DATABASE_URL"], connection, revision)
    click.echo(f"database at {revision}")


@click.group("demo", cls=AppGroup)
def demo_group() -> None:
    """Demo data for local use."""


@demo_group.command("seed")
@click.option("--domain", default="example.com", show_default=True)
def demo_seed(domain: str) -> None:
    """Create a demo workspace with companies, contacts, deals and links (idempotent)."""
    from addon.db import session_scope
    from addon.demo import seed_demo

    with session_scope(current_app) as session:
        created = seed_demo(session, domain)
    click.echo("demo data created" if created else "demo data already present")


@click.group("dev", cls=AppGroup)
def dev_group() -> None:
    """Local development."""


@dev_group.command("run")
@click.option("--port", default=8080, show_default=True)
def dev_run(port: int) -> None:
    """Migrate, seed demo data and serve on loopback only (development mode)."""
    if not current_app.config["DEV"]:
        raise click.UsageError("dev run needs ADDON_DEV=1")
    from addon.db import session_scope
    from addon.demo import seed_demo

    engine = current_app.extensions["addon.engine"]
    with engine.begin() as connection:
        migrations.upgrade(current_app.config["DATABASE_URL"], connection)
    with session_scope(current_app) as session:
        seed_demo(session, "example.com")
    click.echo(f"Inbox CRM (development) on http://127.0.0.1:{port}/healthz")
    # Loopback only: development mode must never be reachable from another machine.
    run_simple("127.0.0.1", port, current_app._get_current_object(), threaded=True)  # type: ignore[attr-defined]
