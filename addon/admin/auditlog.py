"""Reading the audit log: filtered pages for the admin card, and CSV / JSON lines exports.

A record's own history (the record timeline) is `addon.crm.audit.record_history`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from addon.crm.audit import record_audit
from addon.crm.models import AuditEntry, Member, Record
from addon.digits import bounded_int
from addon.gmail.addresses import canonical_email

PAGE_SIZE = 20
EXPORT_BATCH = 1000
COLUMNS = ("id", "time", "actor", "action", "record_id", "folder_id", "summary", "before", "after")


class FilterError(ValueError):
    """A filter the audit log cannot apply; the message names it."""


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to show: by actor, record and action (None: any)."""

    actor_id: int | None = None
    record_id: int | None = None
    action: str | None = None

    def params(self) -> dict[str, str]:
        """The filter as action parameters (strings), for paging buttons and download links."""
        found = {"actor_id": self.actor_id, "record_id": self.record_id, "action": self.action}
        return {k: str(v) for k, v in found.items() if v is not None}


def parse_filter(
    session: Session, workspace_id: int, actor: str, record: str, action: str
) -> AuditFilter:
    """A filter from typed text: actor by address or member id, record by id, action by name."""
    actor_id: int | None = None
    actor = actor.strip()
    if actor:
        member_number = bounded_int(actor, 11)
        if member_number is not None:
            found = session.get(Member, member_number)
        else:
            email = canonical_email(actor)
            found = (
                session.execute(
                    select(Member).where(Member.workspace_id == workspace_id, Member.email == email)
                ).scalar_one_or_none()
                if email
                else None
            )
        if found is None or found.workspace_id != workspace_id:
            raise FilterError(f"“{actor[:80]}” is not a member of this workspace")
        actor_id = found.id
    record = record.strip().lstrip("#")
    record_id = bounded_int(record, 11) if record else None
    if record and record_id is None:
        raise FilterError(f"“{record[:40]}” is not a record number")
    if record_id is not None and not _workspace_record(session, workspace_id, record_id):
        raise FilterError(f"“#{record}” is not a record of this workspace")
    action = action.strip()
    if action and action not in known_actions(session, workspace_id):
        raise FilterError(f"“{action[:40]}” is not an action in this log")
    return AuditFilter(actor_id, record_id, action or None)


def _workspace_record(session: Session, workspace_id: int, record_id: int) -> bool:
    # A deleted or merged-away record is gone from records but its entries stay: its id
    # still filters the log. Another workspace's record is refused, not shown as empty.
    if record_id >= 2**31:
        return False
    found = session.get(Record, record_id)
    if found is not None and found.workspace_id == workspace_id:
        return True
    named = session.execute(
        select(AuditEntry.id)
        .where(AuditEntry.workspace_id == workspace_id, AuditEntry.record_id == record_id)
        .limit(1)
    ).first()
    return named is not None


def _statement(workspace_id: int, flt: AuditFilter) -> Select[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.workspace_id == workspace_id)
    if flt.actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == flt.actor_id)
    if flt.record_id is not None:
        stmt = stmt.where(AuditEntry.record_id == flt.record_id)
    if flt.action is not None:
        stmt = stmt.where(AuditEntry.action == flt.action)
    return stmt.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())


def get_entry(session: Session, workspace_id: int, entry_id: str) -> AuditEntry | None:
    """One entry of this workspace by id; None for any other id."""
    number = bounded_int(entry_id, 11)
    entry = session.get(AuditEntry, number) if number is not None else None
    return entry if entry is not None and entry.workspace_id == workspace_id else None


def known_actions(session: Session, workspace_id: int) -> list[str]:
    """The actions that occur in the workspace's log, sorted."""
    return sorted(
        session.execute(
            select(AuditEntry.action).where(AuditEntry.workspace_id == workspace_id).distinct()
        ).scalars()
    )


def entries_page(
    session: Session, workspace_id: int, flt: AuditFilter, page: int = 0
) -> tuple[list[AuditEntry], bool]:
    """One page of entries, newest first, and whether another page follows."""
    rows = list(
        session.execute(
            _statement(workspace_id, flt).limit(PAGE_SIZE + 1).offset(max(page, 0) * PAGE_SIZE)
        ).scalars()
    )
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def actor_emails(session: Session, workspace_id: int) -> dict[int, str]:
    """Member id -> address, to name actors."""
    rows = session.execute(
        select(Member.id, Member.email).where(Member.workspace_id == workspace_id)
    ).all()
    return {member_id: email for member_id, email in rows}


def entry_row(entry: AuditEntry, actors: dict[int, str]) -> dict[str, Any]:
    """One entry as a plain dict (the export's row)."""
    return {
        "id": entry.id,
        "time": entry.created_at.isoformat(),
        "actor": actors.get(entry.actor_id, "") if entry.actor_id is not None else "",
        "action": entry.action,
        "record_id": entry.record_id,
        "folder_id": entry.folder_id,
        "summary": entry.summary,
        "before": entry.before,
        "after": entry.after,
    }


def _rows(session: Session, workspace_id: int, flt: AuditFilter) -> Iterator[dict[str, Any]]:
    actors = actor_emails(session, workspace_id)
    stmt = _statement(workspace_id, flt).execution_options(yield_per=EXPORT_BATCH)
    for entry in session.execute(stmt).scalars():
        yield entry_row(entry, actors)


def _csv_cell(value: Any) -> str:
    text = "" if value is None else json.dumps(value) if isinstance(value, dict) else str(value)
    # Spreadsheets run cells starting with these as formulas.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def export_lines(session: Session, actor: Member, flt: AuditFilter, fmt: str) -> Iterator[str]:
    """Write the export's audit entry (flushes), then yield the log as CSV or JSON lines."""
    if fmt not in ("csv", "jsonl"):
        raise FilterError(f"“{fmt[:20]}” is not an export format (csv or jsonl)")
    record_audit(
        session,
        actor,
        "export",
        workspace_id=actor.workspace_id,
        summary=f"Exported the audit log as {fmt.upper()}",
        after={"audit_log": True, "format": fmt, **flt.params()},
    )
    return _lines(session, actor.workspace_id, flt, fmt)


def _lines(session: Session, workspace_id: int, flt: AuditFilter, fmt: str) -> Iterator[str]:
    if fmt == "jsonl":
        for row in _rows(session, workspace_id, flt):
            yield json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in _rows(session, workspace_id, flt):
        writer.writerow([_csv_cell(row[c]) for c in COLUMNS])
        if buffer.tell() > 64_000:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
