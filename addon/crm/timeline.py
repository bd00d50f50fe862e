"""A record's timeline: linked threads, notes and changes, newest first, a page at a time.

One service call (three statements, whatever the page) feeds the pure card builder
addon.cards.timeline. Each source is read newest first up to the end of the asked page
(plus one, to know whether there is more), and the three are merged by moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import desc, func, select
from sqlalchemy.orm import Session

from addon.crm.audit import record_history
from addon.crm.models import Member, Note, ThreadLink
from addon.ledger.models import LedgerMessage
from addon.ledger.parse import as_utc

PAGE_SIZE = 10
MAX_PAGE = 500
THREAD, NOTE, CHANGE = "thread", "note", "change"


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a timeline."""

    kind: str  # thread, note or change
    at: datetime  # aware UTC: a thread's latest message (or when it was linked)
    text: str  # the subject, the note, or the change's summary
    # Threads: messages recorded, the latest one's direction (None while not recorded),
    # the link's reason and Gmail thread id.
    emails: int = 0
    direction: str | None = None
    reason: str = ""
    thread_id: str = ""
    # Notes: the author's address.
    author: str = ""


@dataclass(frozen=True)
class TimelinePage:
    """One page of a record's timeline."""

    record_id: int
    page: int
    entries: list[TimelineEntry]
    has_more: bool


def _thread_entries(session: Session, record_id: int, limit: int) -> list[TimelineEntry]:
    # Per link, subqueries on the (conversation, sent_at) index of the ledger's messages.
    messages = LedgerMessage.conversation_id == ThreadLink.conversation_id
    last_at = select(func.max(LedgerMessage.sent_at)).where(messages).scalar_subquery()
    emails = select(func.count()).select_from(LedgerMessage).where(messages).scalar_subquery()
    last_direction = (
        select(LedgerMessage.direction)
        .where(messages)
        .order_by(LedgerMessage.sent_at.desc(), LedgerMessage.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    moment = func.coalesce(last_at, ThreadLink.linked_at)
    rows = session.execute(
        select(
            ThreadLink.subject,
            ThreadLink.reason,
            ThreadLink.thread_id,
            moment,
            emails,
            last_direction,
        )
        .where(ThreadLink.record_id == record_id)
        .order_by(desc(moment), ThreadLink.id.desc())
        .limit(limit)
    ).all()
    return [
        TimelineEntry(
            THREAD,
            as_utc(_moment(at)),
            subject or "",
            emails=int(count or 0),
            direction=direction,
            reason=reason,
            thread_id=thread_id,
        )
        for subject, reason, thread_id, at, count, direction in rows
    ]


def _moment(value: object) -> datetime:
    # COALESCE hands SQLite's stored text back untyped.
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _note_entries(session: Session, record_id: int, limit: int) -> list[TimelineEntry]:
    rows = session.execute(
        select(Note.body, Note.created_at, Member.email)
        .outerjoin(Member, Member.id == Note.author_id)
        .where(Note.record_id == record_id)
        .order_by(Note.created_at.desc(), Note.id.desc())
        .limit(limit)
    ).all()
    return [TimelineEntry(NOTE, as_utc(at), body, author=author or "") for body, at, author in rows]


def record_timeline(
    session: Session,
    workspace_id: int,
    record_id: int,
    page: int = 0,
    page_size: int = PAGE_SIZE,
) -> TimelinePage:
    """Page `page` (from 0) of the record's timeline; the caller checked the record's workspace."""
    page = min(max(page, 0), MAX_PAGE)
    wanted = (page + 1) * page_size + 1
    entries = _thread_entries(session, record_id, wanted) + _note_entries(
        session, record_id, wanted
    )
    entries += [
        TimelineEntry(CHANGE, as_utc(entry.created_at), entry.summary)
        # A note's audit entry would repeat the note the timeline shows itself.
        for entry in record_history(
            session, workspace_id, record_id, limit=wanted, exclude=("note",)
        )
    ]
    # Stable: at equal moments threads come before notes before changes.
    entries.sort(key=lambda e: e.at, reverse=True)
    start = page * page_size
    return TimelinePage(
        record_id,
        page,
        entries[start : start + page_size],
        has_more=len(entries) > start + page_size,
    )
