"""`flask --app addon mailing worker`: the long-running (or one-pass) mail-merge worker."""

from __future__ import annotations

from typing import Any, Protocol

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from addon.mailing.clock import Clock, SystemClock
from addon.mailing.sender import CredentialsFor, gmail_sender_factory
from addon.mailing.worker import RunReport, Worker, WorkerSettings

# Where the app keeps the grant store's hooks and the mail-merge clock (a fake in tests).
GRANTS_EXTENSION = "addon.mailing.grants"
CLOCK_EXTENSION = "addon.mailing.clock"


class NotConfigured(RuntimeError):
    """Sending cannot run on this server; the message says what is missing."""


class _Grants(Protocol):
    credentials_for: CredentialsFor


def worker_for(app: Flask, worker_id: str | None = None) -> Worker:
    """A worker wired to the app's database, Gmail endpoint, grant store and clock."""
    grants: _Grants | None = app.extensions.get(GRANTS_EXTENSION)
    if grants is None:
        raise NotConfigured(
            "mail merge sending is not set up: no Gmail sending grant store is installed"
        )
    if not app.config.get("SECRET_KEY"):
        raise NotConfigured("mail merge needs ADDON_SECRET_KEY (it signs unsubscribe links)")
    clock: Clock = app.extensions.get(CLOCK_EXTENSION) or SystemClock()
    options: dict[str, Any] = {
        "base_url": app.config["BASE_URL"],
        "secret": app.config["SECRET_KEY"],
    }
    if worker_id:
        options["worker_id"] = worker_id
    factory = gmail_sender_factory(
        app.config["GMAIL_API_URL"], grants.credentials_for, app.config["GMAIL_TIMEOUT_SECONDS"]
    )
    return Worker(app.extensions["addon.sessionmaker"], factory, clock, WorkerSettings(**options))


def describe(report: RunReport) -> str:
    """One line for logs and the terminal."""
    return (
        f"sent {report.sent}, found already sent {report.reconciled}, failed {report.failed}, "
        f"skipped {report.skipped}, retries {report.retried}, bounced {report.bounced}, "
        f"campaigns paused {report.paused_campaigns}"
    )


@click.group("mailing", cls=AppGroup)
def mailing_group() -> None:
    """Mail merge commands."""


@mailing_group.command("worker")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option(
    "--max-seconds", type=float, default=None, help="Stop after this many seconds of work."
)
@click.option("--worker-id", default=None, help="A name for this worker's leases.")
def worker_command(once: bool, max_seconds: float | None, worker_id: str | None) -> None:
    """Run the mail-merge queue worker (forever, unless --once or --max-seconds)."""
    try:
        worker = worker_for(current_app, worker_id)
    except NotConfigured as exc:
        raise click.ClickException(str(exc)) from exc
    report = worker.run(once=once, max_seconds=max_seconds)
    click.echo(describe(report))


def register(app: Flask) -> None:
    """Add the mailing command group."""
    app.cli.add_command(mailing_group)
