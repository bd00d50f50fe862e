"""CSV export of a folder or a saved view: one column per field, values as a CSV user reads them.

Cells are written so that importing the file again gives the same values: emails and
phones joined with ", ", currencies as "12.50 EUR", dates and date-times in ISO 8601,
checkboxes as Yes/No, user fields as the member's email, links as the linked records'
titles. Cells a spreadsheet would run as a formula are escaped by csvio.write_csv (and
unescaped by the importer). Rows are read page by page, so an export of any size streams
in constant memory. Every export leaves an audit entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from addon.crm.audit import record_audit
from addon.crm.csvio import write_csv
from addon.crm.fields import field_type
from addon.crm.models import (
    FieldDef,
    FieldValue,
    Folder,
    Member,
    Record,
    RecordRelation,
    SavedView,
)
from addon.crm.views import count_view, list_view, load_definition
from addon.crm.workspaces import folder_fields
from addon.ledger.stats import stats_field_values

PAGE_SIZE = 1000


@dataclass
class ExportTable:
    """An export: the header (field labels), how many rows, and the rows as they stream."""

    header: list[str]
    count: int
    rows: Iterator[list[str]]
    filename: str


def cell_text(fdef: FieldDef, value: Any, members: dict[int, str]) -> str:
    """A stored value as a CSV cell the importer reads back to the same value."""
    if value is None or value == "" or value == [] or value == {}:
        return ""
    kind = fdef.type
    if kind == "user":
        return members.get(value, "") if isinstance(value, int) else str(value)
    if kind == "checkbox":
        return ("Yes" if value else "No") if isinstance(value, bool) else ""
    if kind == "percent":
        return f"{value}%"
    if kind == "autonumber":
        # The number with its prefix, as the cards show it ("T-12").
        return field_type(kind).display(value, fdef.options)
    try:
        parts = field_type(kind).to_input(value)
    except (ValueError, TypeError, KeyError):
        # A value of an old shape (kept through a type change) still exports as text.
        return str(value)
    return ", ".join(parts)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "export"


def _record_ids(
    session: Session,
    folder: Folder,
    view: SavedView | None,
    visible: ColumnElement[bool] | None = None,
) -> tuple[int, Iterator[list[Record]]]:
    """How many records, and the records page by page (the view's order, or creation order)."""
    if view is not None:
        definition = load_definition(session, view)
        total = count_view(session, folder, definition, visible=visible)

        def view_pages() -> Iterator[list[Record]]:
            page = 0
            while True:
                records = list_view(
                    session, folder, definition, page=page, page_size=PAGE_SIZE, visible=visible
                )
                if records:
                    yield records
                if len(records) < PAGE_SIZE:
                    return
                page += 1

        return total, view_pages()

    scope = (
        Record.workspace_id == folder.workspace_id,
        Record.folder_id == folder.id,
        *([visible] if visible is not None else []),
    )
    total = int(
        session.execute(select(func.count()).select_from(Record).where(*scope)).scalar_one()
    )

    def folder_pages() -> Iterator[list[Record]]:
        after = 0
        while True:
            records = list(
                session.execute(
                    select(Record)
                    .where(*scope, Record.id > after)
                    .order_by(Record.id)
                    .limit(PAGE_SIZE)
                ).scalars()
            )
            if records:
                yield records
            if len(records) < PAGE_SIZE:
                return
            after = records[-1].id

    return total, folder_pages()


def _rows(
    session: Session, workspace_id: int, fields: Sequence[FieldDef], pages: Iterator[list[Record]]
) -> Iterator[list[str]]:
    members = {
        member_id: email
        for member_id, email in session.execute(
            select(Member.id, Member.email).where(Member.workspace_id == workspace_id)
        )
    }
    for records in pages:
        ids = [r.id for r in records]
        values: dict[tuple[int, int], Any] = {}
        for record_id, field_id, value in session.execute(
            select(FieldValue.record_id, FieldValue.field_id, FieldValue.value).where(
                FieldValue.record_id.in_(ids)
            )
        ):
            values[(record_id, field_id)] = value
        for record_id, stats in stats_field_values(session, fields, ids).items():
            values.update(((record_id, field_id), value) for field_id, value in stats.items())
        links: dict[tuple[int, int], list[str]] = {}
        for record_id, field_id, title in session.execute(
            select(RecordRelation.from_record_id, RecordRelation.field_id, Record.title)
            .join(Record, Record.id == RecordRelation.to_record_id)
            .where(RecordRelation.from_record_id.in_(ids))
            .order_by(Record.title, Record.id)
        ):
            links.setdefault((record_id, field_id), []).append(title)
        for record in records:
            row: list[str] = []
            for fdef in fields:
                if fdef.type == "link":
                    row.append(", ".join(links.get((record.id, fdef.id), [])))
                else:
                    value = values.get((record.id, fdef.id))
                    row.append(cell_text(fdef, value, members))
            yield row
        # The page's records are done with: keep the identity map small on big exports.
        for record in records:
            session.expunge(record)


def export_rows(
    session: Session,
    member: Member | None,
    folder: Folder,
    view: SavedView | None = None,
    *,
    visible: ColumnElement[bool] | None = None,
) -> ExportTable:
    """The header and streamed rows of a folder or saved view, with an audit entry.

    `member` is who exports (None for the command line without --as); the caller checks
    that the member may export and may see the view, and passes `visible`
    (addon.auth.roles.record_scope) to leave out records hidden from them. Flushes only.
    """
    if view is not None and view.folder_id != folder.id:
        raise ValueError("the view belongs to another folder")
    if member is not None and member.workspace_id != folder.workspace_id:
        raise ValueError("the folder belongs to another workspace")
    fields = folder_fields(session, folder.id)
    total, pages = _record_ids(session, folder, view, visible)
    what = f"{folder.name} ({view.name})" if view is not None else folder.name
    record_audit(
        session,
        member,
        "export",
        workspace_id=folder.workspace_id,
        folder_id=folder.id,
        summary=f"Exported {total:,} {what} to CSV",
        after={"view": view.id if view is not None else None, "rows": total},
    )
    day = datetime.now(UTC).date().isoformat()
    name = _slug(folder.name) + (f"-{_slug(view.name)}" if view is not None else "")
    return ExportTable(
        header=[f.label for f in fields],
        count=total,
        rows=_rows(session, folder.workspace_id, fields, pages),
        filename=f"{name}-{day}.csv",
    )


def export_csv(
    session: Session, member: Member | None, folder: Folder, view: SavedView | None = None
) -> Iterator[str]:
    """The CSV text of a folder or saved view, in chunks (see csvio.write_csv)."""
    table = export_rows(session, member, folder, view)
    return write_csv(table.header, table.rows)
