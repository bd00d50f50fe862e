"""`flask --app addon ...` commands: manifest, db, demo, dev, crm."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from werkzeug.serving import run_simple

from addon import migrations
from addon.crm_cli import crm_group
from addon.ledger.cli import recompute_stats_command
from addon.ledger.sync_cli import gmail_group
from addon.mailing.cli import mailing_group
from addon.manifest import render_deployment_json


def register(app: Flask) -> None:
    """Register the command groups on the app."""
    app.cli.add_command(manifest_command)
    app.cli.add_command(db_group)
    app.cli.add_command(demo_group)
    app.cli.add_command(dev_group)
    app.cli.add_command(crm_group)
    crm_group.add_command(recompute_stats_command)
    app.cli.add_command(gmail_group)
    app.cli.add_command(mailing_group)


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
@click.option("--host", default="127.0.0.1", show_default=True, help="Must be a loopback address.")
def dev_run(port: int, host: str) -> None:
    """Serve the service and the sidebar simulator with demo data (development mode)."""
    from addon.web.dev import build_dev_app, is_loopback

    if not current_app.config["DEV"]:
        raise click.UsageError("dev run needs ADDON_DEV=1")
    if not is_loopback(host):
        raise click.UsageError(f"development mode binds to loopback only, not {host!r}")
    base_url = f"http://{host}:{port}"
    app, env = build_dev_app(base_url, current_app.config["DATABASE_URL"])
    click.echo(f"Inbox CRM simulator: open {base_url}/dev/  (fake Gmail on {env.gmail.url})")
    try:
        run_simple(host, port, app, threaded=True)
    finally:
        env.gmail.stop()
