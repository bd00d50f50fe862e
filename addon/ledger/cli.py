"""`flask --app addon crm recompute-stats`: rebuild email stats from the ledger."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select, union

from addon.crm.models import Folder, ThreadLink, Workspace
from addon.db import session_scope
from addon.ledger.models import RecordStats
from addon.ledger.stats import ensure_stats_fields, recompute_stats

STATS_FOLDERS = ("contacts", "companies", "deals")


@click.command("recompute-stats")
@click.option("--domain", default="", help="Only this workspace (default: all).")
@click.option(
    "--add-fields",
    is_flag=True,
    help="First give Contacts, Companies and Deals the email stats fields they lack.",
)
@with_appcontext
def recompute_stats_command(domain: str, add_fields: bool) -> None:
    """Rebuild every record's email stats (and stats fields) from the ledger."""
    with session_scope(current_app) as session:
        query = select(Workspace).order_by(Workspace.id)
        if domain:
            query = query.where(Workspace.domain == domain.strip().lower())
        workspaces = list(session.execute(query).scalars())
        if domain and not workspaces:
            raise click.UsageError(f"no workspace {domain!r}")
        for workspace in workspaces:
            if add_fields:
                folders = session.execute(
                    select(Folder).where(
                        Folder.workspace_id == workspace.id, Folder.key.in_(STATS_FOLDERS)
                    )
                ).scalars()
                added = sum(len(ensure_stats_fields(session, folder)) for folder in folders)
                click.echo(f"{workspace.domain}: {added} stats field(s) added")
            linked = select(ThreadLink.record_id).where(
                ThreadLink.workspace_id == workspace.id, ThreadLink.conversation_id.is_not(None)
            )
            stored = select(RecordStats.record_id).where(RecordStats.workspace_id == workspace.id)
            total = session.execute(
                select(func.count()).select_from(union(linked, stored).subquery())
            ).scalar_one()
            with click.progressbar(length=total, label=f"Recomputing {workspace.domain}") as bar:
                changed = recompute_stats(session, workspace.id, progress=bar.update)
            click.echo(f"{workspace.domain}: {total} record(s) recomputed, {changed} changed")
