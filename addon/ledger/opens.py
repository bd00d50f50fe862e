"""Opening a message in the sidebar records it, and the rest of its thread, in the ledger.

The contextual trigger is a hot path, so an open costs one statement when there is
nothing new: the opened message's key is already in the workspace's ledger and the
member's Gmail thread is mapped to its conversation. Otherwise the thread is read
(users.threads.get, metadata only) and every message of it is recorded with
record_messages, which links automatically and adds the stats. A Gmail failure reading the
thread is logged and the opened message alone (whose metadata the trigger already has) is
recorded: the card never depends on the thread read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from addon.crm.models import Member
from addon.deferred import Work
from addon.gmail.client import GmailError, MessageMeta
from addon.ledger.ingest import IngestResult, record_messages
from addon.ledger.models import LedgerMessage, ThreadMap
from addon.ledger.parse import SKIPPED_LABELS, THREAD_ID_CHARS, LedgerInput, message_key
from addon.ledger.stats import Clock, system_clock

log = logging.getLogger(__name__)

ThreadReader = Callable[[str], list[MessageMeta]]

# Both answers in one round trip: is the message known, is the member's thread mapped.
_KNOWN = select(
    select(LedgerMessage.conversation_id)
    .where(
        LedgerMessage.workspace_id == bindparam("workspace_id"),
        LedgerMessage.message_key == bindparam("key"),
    )
    .scalar_subquery(),
    select(ThreadMap.conversation_id)
    .where(
        ThreadMap.member_id == bindparam("member_id"),
        ThreadMap.gmail_thread_id == bindparam("thread_id"),
    )
    .scalar_subquery(),
)


@dataclass
class OpenResult:
    """What recording an open did."""

    # The conversation of the open thread (None when nothing could be recorded).
    conversation_id: int | None = None
    # Whether the thread was read from Gmail (False on the fast path).
    thread_read: bool = False
    # Gmail's failure reading the thread, if any (the open message was still recorded).
    thread_error: str | None = None
    ingest: IngestResult = field(default_factory=IngestResult)


@dataclass(frozen=True)
class OpenCheck:
    """What the ledger already knows of an opened message (one statement)."""

    # The conversation of the open thread as far as the ledger knows it, or None.
    conversation_id: int | None
    # False when the message and the member's thread are recorded: nothing to do.
    needs_recording: bool


def check_open(session: Session, member: Member, meta: MessageMeta) -> OpenCheck:
    """Whether recording this open would add anything, and the thread's known conversation."""
    if any(label in SKIPPED_LABELS for label in meta.label_ids):
        return OpenCheck(None, False)  # drafts and spam are never recorded
    thread_id = meta.thread_id if len(meta.thread_id) <= THREAD_ID_CHARS else ""
    known_conversation, mapped = session.execute(
        _KNOWN,
        {
            "workspace_id": member.workspace_id,
            "key": message_key(LedgerInput.from_meta(meta)),
            "member_id": member.id,
            "thread_id": thread_id,
        },
    ).one()
    done = known_conversation is not None and (mapped is not None or not thread_id)
    return OpenCheck(mapped or known_conversation, not done)


def record_open(
    session: Session,
    member: Member,
    meta: MessageMeta,
    read_thread: ThreadReader,
    *,
    clock: Clock = system_clock,
) -> OpenResult:
    """Record the open message and its thread unless the ledger has them; flushes only."""
    checked = check_open(session, member, meta)
    if not checked.needs_recording:
        return OpenResult(conversation_id=checked.conversation_id)
    known_conversation = checked.conversation_id
    opened = LedgerInput.from_meta(meta)
    thread_id = meta.thread_id if len(meta.thread_id) <= THREAD_ID_CHARS else ""
    result = OpenResult()
    inputs = [opened]
    if thread_id:
        result.thread_read = True
        try:
            thread = read_thread(thread_id)
        except GmailError as exc:
            log.warning("reading Gmail thread %s failed: %s", thread_id, exc)
            result.thread_error = str(exc)
        else:
            # In the thread's order (oldest first), so replies follow what they answer.
            inputs = [opened if m.id == meta.id else LedgerInput.from_meta(m) for m in thread]
            if all(m.id != meta.id for m in thread):
                inputs.append(opened)
    result.ingest = record_messages(session, member, inputs, clock=clock)
    result.conversation_id = result.ingest.conversations.get(thread_id) or known_conversation
    return result


def record_open_later(member_id: int, meta: MessageMeta, read_thread: ThreadReader) -> Work:
    """The deferred form of record_open: runs with its own session after the request."""

    def work(session: Session) -> None:
        member = session.get(Member, member_id)
        if member is not None:
            record_open(session, member, meta, read_thread)

    return work
