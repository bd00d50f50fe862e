"""`flask --app addon crm ...`: data hygiene commands (duplicates, reindex)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.crm.hygiene import duplicate_clusters
from addon.crm.models import Record, Workspace
from addon.crm.records import reindex_record
from addon.db import session_scope


@click.group("crm", cls=AppGroup)
def crm_group() -> None:
    """CRM data commands."""


def _workspace(session: Session, domain: str) -> Workspace:
    found = session.execute(
        select(Workspace).where(Workspace.domain == domain.lower())
    ).scalar_one_or_none()
    if found is None:
        raise click.UsageError(f"no workspace {domain!r}")
    return found


@crm_group.command("duplicates")
@click.option("--domain", required=True, help="The workspace (its Google Workspace domain).")
def duplicates(domain: str) -> None:
    """List clusters of records sharing an email, phone, company domain or company name."""
    with session_scope(current_app) as session:
        workspace = _workspace(session, domain)
        clusters = duplicate_clusters(session, workspace.id)
        rows = session.execute(
            select(Record.id, Record.title).where(
                Record.id.in_([i for c in clusters for i in c.record_ids])
            )
        )
        titles = {record_id: title for record_id, title in rows}
        for cluster in clusters:
            names = ", ".join(f"#{i} {titles.get(i, '')}" for i in cluster.record_ids)
            click.echo(f"{' + '.join(cluster.reasons)}: {names}")
        click.echo(f"{len(clusters)} duplicate cluster(s)")


@crm_group.command("reindex")
@click.option("--domain", default="", help="Only this workspace (default: all).")
def reindex(domain: str) -> None:
    """Recompute titles, lookup indexes and view keys of every record from its values."""
    with session_scope(current_app) as session:
        query = select(Record.id).order_by(Record.id)
        if domain:
            query = query.where(Record.workspace_id == _workspace(session, domain).id)
        ids = list(session.execute(query).scalars())
        with click.progressbar(ids, label="Reindexing records") as bar:
            for number, record_id in enumerate(bar, start=1):
                record = session.get(Record, record_id)
                if record is not None:
                    reindex_record(session, record)
                if number % 1000 == 0:
                    session.expunge_all()
        click.echo(f"{len(ids)} record(s) reindexed")
