"""Records that learn an address later pick up the past conversations of that address.

Automatic linking runs when a message is recorded; a contact created (or given another
email) afterwards would miss every earlier conversation. `link_addresses` links the
ledger's conversations that new addresses took part in exactly as ingest would have
(plan_links: the record, its company, the company of the domain, a single open deal;
unlinks respected), and `emails_changed` adds the stats refresh a person's stats need,
since they count only the messages the person's addresses are on.

Concurrency: the conversations are locked (PostgreSQL row locks, in id order, as ingest
and manual link/unlink take them) before links are read and written and stats are
recomputed, so a concurrent ingest either sees these links or is counted by the
recompute. A message recorded by a concurrent request in a conversation that request
creates is not seen here; its ingest cannot see the uncommitted address either. Both
commit and that one conversation stays unlinked until the next message of it is recorded
or a stats recompute and relink runs; `recompute-stats` stays exact for what is linked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from addon.crm.models import Record, ThreadLink, Workspace, utcnow
from addon.ledger.linking import WorkspaceShape, lock_conversations, plan_links
from addon.ledger.models import (
    Conversation,
    LedgerMessage,
    LedgerParticipant,
    LinkSuppression,
    ThreadMap,
)
from addon.ledger.policy import LinkPolicy
from addon.ledger.sql import in_values, insert_many, rows_in
from addon.ledger.stats import refresh_record_stats

_CONVERSATIONS_OF = (
    select(LedgerMessage.conversation_id, LedgerParticipant.email)
    .join(LedgerMessage, LedgerMessage.id == LedgerParticipant.message_id)
    .where(
        LedgerParticipant.workspace_id == bindparam("workspace_id"),
        in_values(LedgerParticipant.email),
    )
    .distinct()
)
_LINKED = select(ThreadLink.conversation_id, ThreadLink.record_id).where(
    in_values(ThreadLink.conversation_id)
)
_SUPPRESSED = select(LinkSuppression.conversation_id, LinkSuppression.record_id).where(
    in_values(LinkSuppression.conversation_id)
)
_SUBJECTS = select(Conversation.id, Conversation.subject).where(in_values(Conversation.id))
_THREADS = (
    select(ThreadMap.conversation_id, ThreadMap.gmail_thread_id)
    .where(in_values(ThreadMap.conversation_id))
    .order_by(ThreadMap.member_id)
)


def link_addresses(session: Session, workspace: Workspace, emails: Iterable[str]) -> set[int]:
    """Link past conversations of these addresses as ingest would have; flushes only.

    Returns the ids of the records that got links (their stats are refreshed).
    """
    policy = LinkPolicy.for_workspace(session, workspace)
    wanted = sorted({e for e in emails if e and policy.linkable_person(e)})
    if not wanted:
        return set()
    ws = workspace.id
    people: dict[int, list[str]] = {}
    for conv, email in rows_in(session, _CONVERSATIONS_OF, wanted, workspace_id=ws):
        people.setdefault(conv, []).append(email)
    if not people:
        return set()
    convs = sorted(people)
    lock_conversations(session, convs)
    linked = {(conv, rid) for conv, rid in rows_in(session, _LINKED, convs)}
    suppressed = {(conv, rid) for conv, rid in rows_in(session, _SUPPRESSED, convs)}
    shape = WorkspaceShape.load(session, ws)
    plan = plan_links(session, ws, shape, policy, people, linked, suppressed)
    if not plan.links:
        return set()
    subjects = dict(rows_in(session, _SUBJECTS, plan.links))
    threads: dict[int, str] = {}
    for conv, thread in rows_in(session, _THREADS, plan.links):
        threads.setdefault(conv, thread)
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "workspace_id": ws,
            "record_id": record_id,
            # As ingest does: a teammate's Gmail thread id, else the conversation's.
            "thread_id": threads.get(conv) or f"conversation:{conv}",
            "conversation_id": conv,
            "subject": subjects.get(conv, ""),
            "reason": reason,
            "linked_by_id": None,
            "linked_at": now,
        }
        for conv in sorted(plan.links)
        for record_id, reason in sorted(plan.links[conv].items())
    ]
    created = {
        record_id
        for (record_id,) in insert_many(
            session,
            ThreadLink,
            rows,
            lambda stmt: stmt.on_conflict_do_nothing(),
            returning=(ThreadLink.record_id,),
        )
    }
    refresh_record_stats(session, ws, sorted(created))
    return created


def emails_changed(
    session: Session, record: Record, before: Iterable[str], after: Iterable[str]
) -> None:
    """After a record's addresses changed: link its new addresses' past mail, refresh stats.

    A person's stats count the messages their addresses are on, so a removed address
    changes them too; a new record without links has nothing to refresh.
    """
    old = set(before)
    added = [e for e in after if e not in old]
    workspace = session.get(Workspace, record.workspace_id)
    assert workspace is not None
    linked = link_addresses(session, workspace, added) if added else set()
    if old and record.id not in linked:
        refresh_record_stats(session, record.workspace_id, [record.id])
