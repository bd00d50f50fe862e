"""Deleting a record, with an audit entry holding every value it had."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from addon.crm.audit import record_audit
from addon.crm.models import Member, Note, Record, ThreadLink
from addon.crm.records import every_value


def deletion_counts(session: Session, record: Record) -> tuple[int, int]:
    """How many notes and thread links go with the record."""
    notes = session.execute(
        select(func.count()).select_from(Note).where(Note.record_id == record.id)
    ).scalar_one()
    links = session.execute(
        select(func.count()).select_from(ThreadLink).where(ThreadLink.record_id == record.id)
    ).scalar_one()
    return notes, links


def delete_record(session: Session, member: Member, record: Record) -> None:
    """Delete a record with its values, notes and links; the audit entry keeps the values."""
    if record.workspace_id != member.workspace_id:
        raise ValueError("the record is not in the member's workspace")
    values = every_value(session, record)
    notes, links = deletion_counts(session, record)
    record_audit(
        session,
        member,
        "delete",
        workspace_id=record.workspace_id,
        record=record,
        summary=f"Deleted {record.title or f'#{record.id}'} ({record.folder.singular})",
        before={"title": record.title, **values, "_notes": notes, "_thread_links": links},
    )
    # Values, indexes, links, notes and stats go with it (ON DELETE CASCADE); the audit
    # log keeps the record's history, since its entries have no foreign key.
    session.delete(record)
    session.flush()
