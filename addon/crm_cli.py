"""`flask --app addon crm ...`: data commands (duplicates, reindex, CSV import and export)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.auth.roles import PermissionDenied, record_scope, require
from addon.crm.csvio import FULL_NAME_KEY, decode_csv_bytes, write_csv
from addon.crm.exports import ExportTable, export_rows
from addon.crm.hygiene import duplicate_clusters
from addon.crm.imports import (
    FULL_NAME_LABEL,
    ON_DUPLICATE,
    ImportMappingError,
    OnDuplicate,
    guess_import_mapping,
    import_csv,
    importable_fields,
    read_header,
)
from addon.crm.models import FieldDef, Folder, Member, Record, SavedView, Workspace
from addon.crm.records import reindex_record
from addon.crm.views import ViewError, visible_views
from addon.crm.workspaces import folder_fields, folders_by_key
from addon.db import session_scope
from addon.gmail.addresses import canonical_email

# Files of at least this many rows get a progress bar.
_PROGRESS_ROWS = 1000


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


# ------------------------------------------------------------------------ import / export


def _member(session: Session, workspace: Workspace, email: str, permission: str) -> Member:
    """The workspace's member with this email, refused unless their role allows `permission`."""
    found = session.execute(
        select(Member).where(
            Member.workspace_id == workspace.id,
            Member.email == (canonical_email(email) or email.strip().lower()),
        )
    ).scalar_one_or_none()
    if found is None:
        raise click.UsageError(f"{email!r} is not a member of {workspace.domain}")
    try:
        require(found, permission)
    except PermissionDenied as exc:
        raise click.ClickException(f"{found.email}: {exc}") from None
    return found


def _allowed(member: Member, permission: str, folder: Folder) -> None:
    """Refuse unless the folder's rules let the member do this there."""
    try:
        require(member, permission, folder)
    except PermissionDenied as exc:
        raise click.ClickException(f"{member.email}: {exc}") from None


def _folder(session: Session, workspace: Workspace, key: str) -> Folder:
    folders = folders_by_key(session, workspace.id)
    if key not in folders:
        raise click.UsageError(f"no folder {key!r} (folders: {', '.join(folders)})")
    return folders[key]


def _normal(name: str) -> str:
    return " ".join(name.split()).casefold()


def _apply_maps(
    header: list[str], fields: list[FieldDef], mapping: dict[int, str], maps: tuple[str, ...]
) -> dict[int, str]:
    """The guessed mapping with the --map "Column=field" overrides applied."""
    columns = {_normal(name): index for index, name in enumerate(header)}
    keys = {f.key.casefold(): f.key for f in importable_fields(fields)}
    keys.update({_normal(f.label): f.key for f in importable_fields(fields)})
    keys[FULL_NAME_KEY] = FULL_NAME_KEY
    result = dict(mapping)
    for item in maps:
        column_name, sep, field_name = item.rpartition("=")
        if not sep:
            raise click.UsageError(f'--map {item!r}: write it as "Column=field"')
        column = columns.get(_normal(column_name))
        if column is None:
            raise click.UsageError(
                f"--map {item!r}: the file has no column {column_name!r} "
                f"(columns: {', '.join(header)})"
            )
        if not field_name.strip():
            result.pop(column, None)  # "Column=" leaves the column out
            continue
        key = keys.get(_normal(field_name)) or keys.get(field_name.strip().casefold())
        if key is None:
            raise click.UsageError(
                f"--map {item!r}: no field {field_name!r} "
                f"(fields: {', '.join(f.key for f in importable_fields(fields))})"
            )
        result[column] = key
    return result


def _print_mapping(header: list[str], fields: list[FieldDef], mapping: dict[int, str]) -> None:
    labels = {f.key: f.label for f in fields}
    labels[FULL_NAME_KEY] = FULL_NAME_LABEL
    click.echo("Columns:")
    for index, name in enumerate(header):
        target = labels.get(mapping[index], mapping[index]) if index in mapping else None
        click.echo(f"  {name} -> {target or '(not imported)'}")


@crm_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--domain", required=True, help="The workspace (its Google Workspace domain).")
@click.option("--folder", "folder_key", default="contacts", show_default=True)
@click.option("--as", "as_email", required=True, help="Import as this member (role: import).")
@click.option(
    "--on-duplicate",
    type=click.Choice(ON_DUPLICATE),
    default="skip",
    show_default=True,
    help="What to do with a row matching an existing record (email, phone, domain, name).",
)
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="COLUMN=FIELD",
    help='Map a column to a field key or label ("Column=" leaves it out). Repeatable.',
)
@click.option("--dry-run", is_flag=True, help="Check every row and report; save nothing.")
def import_command(
    file: Path,
    domain: str,
    folder_key: str,
    as_email: str,
    on_duplicate: OnDuplicate,
    maps: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Import a CSV file into a folder, with a report of every row not imported."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.strerror}") from None
    session: Session = current_app.extensions["addon.sessionmaker"]()
    try:
        workspace = _workspace(session, domain)
        member = _member(session, workspace, as_email, "import")
        folder = _folder(session, workspace, folder_key)
        _allowed(member, "import", folder)
        fields = folder_fields(session, folder.id)
        header = read_header(data)
        mapping: dict[int, str] | None = None
        if header:
            mapping = _apply_maps(header, fields, guess_import_mapping(fields, header), maps)
            _print_mapping(header, fields, mapping)
        # Lines, not rows (a cell may span lines): close enough for a progress bar.
        lines = max(0, decode_csv_bytes(data).text.count("\n") - 1)
        try:
            if lines >= _PROGRESS_ROWS:
                bar = click.progressbar(length=lines, label="Importing", file=_stderr())
                with bar:
                    report = import_csv(
                        session,
                        member,
                        folder,
                        data,
                        mapping=mapping,
                        on_duplicate=on_duplicate,
                        progress=bar.update,
                    )
            else:
                report = import_csv(
                    session, member, folder, data, mapping=mapping, on_duplicate=on_duplicate
                )
        except ImportMappingError as exc:
            raise click.UsageError(str(exc)) from None
        for note in report.notes:
            click.echo(f"note: {note}")
        for line in report.lines:
            click.echo(str(line))
        if report.error:
            session.rollback()
            raise click.ClickException(report.summary())
        click.echo(report.summary())
        if dry_run:
            session.rollback()
            click.echo("Dry run: nothing was saved.")
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _find_view(
    session: Session, workspace: Workspace, member: Member | None, folder: Folder, ref: str
) -> SavedView:
    """A view of the folder by id or name: the member's visible ones, or the shared ones."""
    if member is not None:
        views = visible_views(session, member, folder)
    else:
        views = list(
            session.execute(
                select(SavedView)
                .where(
                    SavedView.workspace_id == workspace.id,
                    SavedView.folder_id == folder.id,
                    SavedView.owner_id.is_(None),
                )
                .order_by(SavedView.name, SavedView.id)
            ).scalars()
        )
    if ref.strip().isdigit():
        by_id = [v for v in views if v.id == int(ref)]
        if by_id:
            return by_id[0]
    named = [v for v in views if _normal(v.name) == _normal(ref)]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        ids = ", ".join(str(v.id) for v in named)
        raise click.UsageError(f"several views are named {ref!r}; give the id ({ids})")
    known = ", ".join(f"{v.name} (#{v.id})" for v in views) or "none"
    raise click.UsageError(f"no view {ref!r} of {folder.name} (views: {known})")


@crm_group.command("export")
@click.option("--domain", required=True, help="The workspace (its Google Workspace domain).")
@click.option("--folder", "folder_key", default="contacts", show_default=True)
@click.option("--view", "view_ref", default="", help="A saved view of the folder (name or id).")
@click.option("--as", "as_email", default="", help="Export as this member (role: export).")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help='The CSV file to write ("-" for standard output).',
)
def export_command(domain: str, folder_key: str, view_ref: str, as_email: str, output: str) -> None:
    """Export a folder or a saved view to CSV (UTF-8 with BOM, formula cells escaped)."""
    session: Session = current_app.extensions["addon.sessionmaker"]()
    try:
        workspace = _workspace(session, domain)
        member = _member(session, workspace, as_email, "export") if as_email else None
        folder = _folder(session, workspace, folder_key)
        visible = None
        if member is not None:
            _allowed(member, "export", folder)
            visible = record_scope(session, member)
        view = _find_view(session, workspace, member, folder, view_ref) if view_ref else None
        try:
            table = export_rows(session, member, folder, view, visible=visible)
        except ViewError as exc:
            raise click.ClickException(f"cannot export this view: {exc}") from None
        if output == "-":
            _write(sys.stdout, table)
        else:
            # newline="": the chunks carry the CSV's own CRLF line ends.
            with open(output, "w", encoding="utf-8", newline="") as out:
                _write(out, table)
        session.commit()
        where = "standard output" if output == "-" else output
        click.echo(f"Exported {table.count:,} row(s) to {where}", err=True)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _stderr() -> TextIO:
    return sys.stderr


def _write(out: TextIO, table: ExportTable) -> None:
    if table.count < _PROGRESS_ROWS:
        for chunk in write_csv(table.header, table.rows):
            out.write(chunk)
        return
    bar = click.progressbar(table.rows, length=table.count, label="Exporting", file=_stderr())
    with bar as rows:
        for chunk in write_csv(table.header, rows):
            out.write(chunk)
