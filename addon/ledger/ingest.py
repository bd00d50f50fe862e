"""Recording messages in the ledger: once per workspace, in batches, safe under concurrency.

record_messages takes LedgerInput from any source (the sidebar, mail merge, mailbox sync).
Per batch (4,000 inputs) it runs a few set-based statements, never one per message: look
up known messages, the member's thread maps and conversations by key; insert new
conversations, messages (INSERT ... ON CONFLICT DO NOTHING RETURNING: a Message-ID another
request recorded first is a duplicate, never a second row), participants and thread maps;
then link automatically and add the stats deltas. The ORM flushes nothing per message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from addon.collector import fewer_collections
from addon.crm.models import Member, Record, RecordEmail, ThreadLink
from addon.ledger.linking import WorkspaceShape, attach_threads, lock_conversations, plan_links
from addon.ledger.models import (
    Conversation,
    LedgerMessage,
    LedgerParticipant,
    LinkSuppression,
    ThreadMap,
)
from addon.ledger.parse import LedgerInput, ParsedMessage, parse_input
from addon.ledger.policy import LinkPolicy
from addon.ledger.sql import chunks, in_values, insert_many, rows_in
from addon.ledger.stats import (
    Clock,
    Stats,
    apply_deltas,
    link_stats,
    system_clock,
)

BATCH_SIZE = 4000

# The statements of a batch, built once (run by addon.ledger.sql.rows_in).
_KNOWN_MESSAGES = select(
    LedgerMessage.message_key, LedgerMessage.id, LedgerMessage.conversation_id
).where(
    LedgerMessage.workspace_id == bindparam("workspace_id"),
    in_values(LedgerMessage.message_key),
)
_MEMBER_THREADS = select(ThreadMap.gmail_thread_id, ThreadMap.conversation_id).where(
    ThreadMap.member_id == bindparam("member_id"), in_values(ThreadMap.gmail_thread_id)
)
_CONVERSATIONS_BY_KEY = select(Conversation.key, Conversation.id).where(
    Conversation.workspace_id == bindparam("workspace_id"), in_values(Conversation.key)
)
_LINKED = select(ThreadLink.conversation_id, ThreadLink.record_id).where(
    in_values(ThreadLink.conversation_id)
)
_SUPPRESSED = select(LinkSuppression.conversation_id, LinkSuppression.record_id).where(
    in_values(LinkSuppression.conversation_id)
)
_LINKS_WITH_FOLDER = (
    select(ThreadLink.id, ThreadLink.conversation_id, ThreadLink.record_id, Record.folder_id)
    .join(Record, Record.id == ThreadLink.record_id)
    .where(in_values(ThreadLink.conversation_id))
)
_EMAILS_OF_RECORDS = select(RecordEmail.record_id, RecordEmail.email).where(
    in_values(RecordEmail.record_id)
)
# The columns of the message and participant rows, written as tuples.
_MESSAGE_COLUMNS = (
    "workspace_id",
    "conversation_id",
    "message_key",
    "sent_at",
    "direction",
    "subject",
    "from_email",
    "recorded_at",
)
_PARTICIPANT_COLUMNS = ("message_id", "role", "email", "workspace_id")
_LINK_COLUMNS = (
    "workspace_id",
    "record_id",
    "thread_id",
    "conversation_id",
    "subject",
    "reason",
    "linked_by_id",
    "linked_at",
)


@dataclass(frozen=True)
class Skipped:
    """An input that was not recorded: its Gmail id (or Message-ID) and why."""

    reference: str
    reason: str


@dataclass
class IngestResult:
    """What recording a set of messages did."""

    recorded: int = 0  # new ledger messages
    duplicates: int = 0  # already known: a re-open, a teammate's copy, a repeat in the input
    skipped: list[Skipped] = field(default_factory=list)
    # Gmail thread id (of the member's mailbox) -> conversation id.
    conversations: dict[str, int] = field(default_factory=dict)
    # Links made automatically: (conversation id, record id, reason).
    links: list[tuple[int, int, str]] = field(default_factory=list)
    # Links made before their thread was recorded, now attached to its conversation.
    attached: int = 0
    # Conversation id -> open deals to suggest (a matched record has several).
    candidates: dict[int, list[int]] = field(default_factory=dict)


@dataclass
class _Context:
    session: Session
    member: Member
    workspace_id: int
    policy: LinkPolicy
    shape: WorkspaceShape
    now: datetime
    # Stats deltas of every batch, written once at the end (a record in several batches
    # is upserted once).
    deltas: dict[int, Stats] = field(default_factory=dict)


# A conversation known by id, or a new one by its key until it is inserted.
_Ref = int | str


def record_messages(
    session: Session,
    member: Member,
    messages: Iterable[LedgerInput],
    *,
    clock: Clock = system_clock,
    batch_size: int = BATCH_SIZE,
) -> IngestResult:
    """Record messages a member's mailbox holds; flushes only, never commits.

    Idempotent: a Message-ID already recorded (by anyone in the workspace, in this call or
    a concurrent one) counts once. Unusable inputs are listed in `skipped`.
    """
    workspace = member.workspace
    context = _Context(
        session=session,
        member=member,
        workspace_id=workspace.id,
        policy=LinkPolicy.for_workspace(session, workspace),
        shape=WorkspaceShape.load(session, workspace.id),
        now=clock(),
    )
    session.flush()
    result = IngestResult()
    # A batch holds thousands of parsed messages, rows and deltas until its statements
    # ran: with the default threshold they set off full collections again and again.
    with fewer_collections():
        for batch in chunks(messages, max(1, batch_size)):
            _record_batch(context, batch, result)
        nothing = Stats()
        deltas = {rid: d for rid, d in context.deltas.items() if d != nothing}
        apply_deltas(session, context.workspace_id, deltas)
    return result


def _record_batch(ctx: _Context, items: list[LedgerInput], result: IngestResult) -> None:
    unique: dict[str, ParsedMessage] = {}
    for item in items:
        parsed = parse_input(item, ctx.policy)
        if isinstance(parsed, str):
            result.skipped.append(Skipped(item.gmail_id or item.message_id or "?", parsed))
        elif parsed.key in unique:
            result.duplicates += 1
        else:
            unique[parsed.key] = parsed
    if not unique:
        return
    batch = list(unique.values())
    known, thread_conv, conv_by_key = _lookups(ctx, batch)

    # Which conversation each message belongs to, in input order so a reply later in the
    # batch follows the message it answers: the member's Gmail thread first, then the
    # message it replies to, then the conversation root.
    by_message: dict[str, _Ref] = {key: conv for key, (_mid, conv) in known.items()}
    by_thread: dict[str, _Ref] = dict(thread_conv)
    new_conversations: dict[str, str] = {}
    new_maps: dict[str, _Ref] = {}
    fresh: list[tuple[ParsedMessage, _Ref]] = []
    for msg in batch:
        if msg.key in known:
            ref: _Ref = known[msg.key][1]
            result.duplicates += 1
        else:
            ref = _resolve(msg, by_thread, by_message, conv_by_key, new_conversations)
            by_message[msg.key] = ref
            fresh.append((msg, ref))
        if msg.gmail_thread_id and msg.gmail_thread_id not in by_thread:
            by_thread[msg.gmail_thread_id] = new_maps[msg.gmail_thread_id] = ref

    conversation_ids, new_convs = _insert_conversations(ctx, new_conversations)

    def conv_id(ref: _Ref) -> int:
        return ref if isinstance(ref, int) else conversation_ids[ref]

    inserted = _insert_messages(ctx, [(msg, conv_id(ref)) for msg, ref in fresh])
    result.recorded += len(inserted)
    result.duplicates += len(fresh) - len(inserted)
    maps = {thread: conv_id(ref) for thread, ref in new_maps.items()}
    _insert_maps(ctx, maps)
    for msg in batch:
        if msg.gmail_thread_id:
            result.conversations[msg.gmail_thread_id] = conv_id(by_thread[msg.gmail_thread_id])

    attached = attach_threads(ctx.session, ctx.workspace_id, maps)
    result.attached += len(attached)
    new_by_conv: dict[int, list[ParsedMessage]] = {}
    for msg, ref in fresh:
        if msg.key in inserted:
            new_by_conv.setdefault(conv_id(ref), []).append(msg)
    created = _link(ctx, new_by_conv, result)
    _add_stats(ctx, new_by_conv, attached, created, new_convs)


def _resolve(
    msg: ParsedMessage,
    by_thread: dict[str, _Ref],
    by_message: dict[str, _Ref],
    conv_by_key: dict[str, int],
    new_conversations: dict[str, str],
) -> _Ref:
    """The conversation of a new message (a new one is registered by its key)."""
    found = by_thread.get(msg.gmail_thread_id) if msg.gmail_thread_id else None
    if found is None and msg.parent_key:
        found = by_message.get(msg.parent_key)
    if found is None:
        found = by_message.get(msg.conversation_key)
    if found is None:
        found = conv_by_key.get(msg.conversation_key)
    if found is None:
        new_conversations.setdefault(msg.conversation_key, msg.subject)
        found = msg.conversation_key
    return found


def _lookups(
    ctx: _Context, batch: list[ParsedMessage]
) -> tuple[dict[str, tuple[int, int]], dict[str, int], dict[str, int]]:
    """Known messages (key -> (id, conversation)), the member's threads, conversations by key."""
    session, ws = ctx.session, ctx.workspace_id
    wanted = {m.key for m in batch} | {m.conversation_key for m in batch}
    wanted |= {m.parent_key for m in batch if m.parent_key}
    known = {
        key: (mid, conv)
        for key, mid, conv in rows_in(session, _KNOWN_MESSAGES, wanted, workspace_id=ws)
    }
    threads = {m.gmail_thread_id for m in batch if m.gmail_thread_id}
    thread_conv = dict(rows_in(session, _MEMBER_THREADS, threads, member_id=ctx.member.id))
    roots = {m.conversation_key for m in batch}
    conv_by_key = dict(rows_in(session, _CONVERSATIONS_BY_KEY, roots, workspace_id=ws))
    return known, thread_conv, conv_by_key


def _insert_conversations(ctx: _Context, new: dict[str, str]) -> tuple[dict[str, int], set[int]]:
    """Ids of new conversations by key, and which of them this request created.

    A conversation a concurrent request created first (same root) is reused.
    """
    if not new:
        return {}, set()
    session = ctx.session
    rows = [
        {"workspace_id": ctx.workspace_id, "key": key, "subject": new[key], "created_at": ctx.now}
        for key in sorted(new)
    ]
    ids: dict[str, int] = dict(
        insert_many(
            session,
            Conversation,
            rows,
            lambda stmt: stmt.on_conflict_do_nothing(index_elements=["workspace_id", "key"]),
            returning=(Conversation.key, Conversation.id),
        )
    )
    created = set(ids.values())
    missing = set(new) - set(ids)
    ids.update(rows_in(session, _CONVERSATIONS_BY_KEY, missing, workspace_id=ctx.workspace_id))
    return ids, created


def _insert_messages(ctx: _Context, fresh: list[tuple[ParsedMessage, int]]) -> dict[str, int]:
    """Insert messages and their participants; the ids of those this request recorded."""
    if not fresh:
        return {}
    session, ws = ctx.session, ctx.workspace_id
    # In key order, so concurrent requests wait on each other's rows in one order.
    ordered = sorted(fresh, key=lambda pair: pair[0].key)
    now = ctx.now
    inserted: dict[str, int] = dict(
        insert_many(
            session,
            LedgerMessage,
            [
                (ws, conv, m.key, m.sent_at, m.direction, m.subject, m.from_email, now)
                for m, conv in ordered
            ],
            lambda stmt: stmt.on_conflict_do_nothing(
                index_elements=["workspace_id", "message_key"]
            ),
            returning=(LedgerMessage.message_key, LedgerMessage.id),
            columns=_MESSAGE_COLUMNS,
        )
    )
    participants = [
        (message_id, role, email, ws)
        for msg, _conv in ordered
        if (message_id := inserted.get(msg.key)) is not None
        for role, email in msg.participants
    ]
    insert_many(session, LedgerParticipant, participants, columns=_PARTICIPANT_COLUMNS)
    return inserted


def _insert_maps(ctx: _Context, maps: dict[str, int]) -> None:
    if not maps:
        return
    insert_many(
        ctx.session,
        ThreadMap,
        [
            {
                "member_id": ctx.member.id,
                "gmail_thread_id": thread,
                "workspace_id": ctx.workspace_id,
                "conversation_id": conv,
            }
            for thread, conv in sorted(maps.items())
        ],
        lambda stmt: stmt.on_conflict_do_nothing(index_elements=["member_id", "gmail_thread_id"]),
    )


# A thread link as stats need it: (link id, conversation id, record id, record's folder).
_LinkRow = tuple[int, int, int, int]


def _link(
    ctx: _Context, new_by_conv: dict[int, list[ParsedMessage]], result: IngestResult
) -> list[_LinkRow]:
    """Link conversations with new messages automatically; the links created."""
    if not new_by_conv:
        return []
    session = ctx.session
    convs = sorted(new_by_conv)
    # Conversations are locked (PostgreSQL; SQLite has one writer anyway) so a concurrent
    # ingest adding a message to one of them sees the links made here before it counts
    # the message, and these links count every message committed before them.
    lock_conversations(session, convs)
    linked = {(conv, rid) for conv, rid in rows_in(session, _LINKED, convs)}
    suppressed = {(conv, rid) for conv, rid in rows_in(session, _SUPPRESSED, convs)}
    people = {
        conv: [email for msg in msgs for _role, email in msg.participants]
        for conv, msgs in new_by_conv.items()
    }
    plan = plan_links(session, ctx.workspace_id, ctx.shape, ctx.policy, people, linked, suppressed)
    result.candidates.update(plan.candidates)
    rows: list[tuple[Any, ...]] = []
    ws, now = ctx.workspace_id, ctx.now
    for conv in sorted(plan.links):
        msgs = new_by_conv[conv]
        # Without a Gmail thread (a source that has none) the conversation stands in, so
        # the link can still be shown and unlinked by id.
        thread = next((m.gmail_thread_id for m in msgs if m.gmail_thread_id), "")
        thread = thread or f"conversation:{conv}"
        subject = msgs[0].subject
        for record_id, reason in sorted(plan.links[conv].items()):
            rows.append((ws, record_id, thread, conv, subject, reason, None, now))
    if not rows:
        return []
    created: list[_LinkRow] = []
    for link_id, conv, record_id in insert_many(
        session,
        ThreadLink,
        rows,
        lambda stmt: stmt.on_conflict_do_nothing(),
        returning=(ThreadLink.id, ThreadLink.conversation_id, ThreadLink.record_id),
        columns=_LINK_COLUMNS,
    ):
        created.append((link_id, conv, record_id, plan.folders[record_id]))
        result.links.append((conv, record_id, plan.links[conv][record_id]))
    return created


def _add_stats(
    ctx: _Context,
    new_by_conv: dict[int, list[ParsedMessage]],
    attached: set[int],
    linked: list[_LinkRow],
    new_convs: set[int],
) -> None:
    """Add what this batch changed to the stats deltas: new links whole, new messages on
    old links.

    `attached` are the ids of waiting links this batch attached, `linked` the links it
    made. A conversation this batch created holds only this batch's messages, so its
    links are counted from memory; links to older conversations read those from the
    ledger. A new conversation's only links are those just made, so they are not read
    back (unless a waiting link was attached, which this batch knows only by id).
    """
    session, ws = ctx.session, ctx.workspace_id
    new_links = attached | {link[0] for link in linked}
    known = new_convs if not attached else set()
    touched = [
        (link_id, conv, record_id, folder_id)
        for link_id, conv, record_id, folder_id in rows_in(
            session, _LINKS_WITH_FOLDER, [conv for conv in new_by_conv if conv not in known]
        )
        if link_id not in new_links or conv in new_convs
    ]
    touched += [link for link in linked if link[1] in known]
    people = {rid for _l, _c, rid, folder in touched if folder == ctx.shape.contacts_id}
    emails: dict[int, set[str]] = {}
    for record_id, email in rows_in(session, _EMAILS_OF_RECORDS, people):
        emails.setdefault(record_id, set()).add(email)
    deltas = ctx.deltas
    in_memory: set[int] = set()
    nobody: set[str] = set()
    # What a conversation's new messages add to a record that is not a person (every
    # message counts): the same for each of its company and deal links, so summed once.
    whole: dict[int, Stats] = {}
    for link_id, conv, record_id, folder_id in touched:
        delta = deltas.get(record_id)
        if delta is None:
            delta = deltas[record_id] = Stats()
        if link_id in new_links:
            in_memory.add(link_id)
            delta.threads += 1
        if folder_id != ctx.shape.contacts_id:
            summary = whole.get(conv)
            if summary is None:
                summary = whole[conv] = Stats()
                for msg in new_by_conv[conv]:
                    summary.add_message(msg.direction, msg.sent_at, None)
            delta.add(summary)
            continue
        mine = emails.get(record_id, nobody)
        for msg in new_by_conv[conv]:
            roles = frozenset([role for role, email in msg.participants if email in mine])
            delta.add_message(msg.direction, msg.sent_at, roles)
    for chunk in chunks(sorted(new_links - in_memory)):
        for record_id, stats in link_stats(session, ws, ThreadLink.id.in_(chunk)).items():
            deltas.setdefault(record_id, Stats()).add(stats)
