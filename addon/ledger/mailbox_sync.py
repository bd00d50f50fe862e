"""Mailbox sync: bring a member's Gmail into the ledger with their offline grant.

The first sync imports the last N days (messages.list with `after:`, then metadata in
batches); later syncs read history.list from the stored history id. A history id Gmail no
longer knows (404) falls back to a re-import bounded by the same N days. Each batch goes
through record_messages (idempotent: a message is never counted twice) and is committed
by the caller's `checkpoint`, so a crash loses at most one batch of work; the history id
moves forward only once every message up to it is recorded.

plan_sync decides what to fetch (so the caller can size a progress bar), run_sync fetches
and records it. A grant Google refuses is marked on the grant and not used again until the
member reconnects; any other failure is kept as the grant's last sync error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from addon.auth.grant_models import ERROR_CHARS, GoogleGrant
from addon.auth.grants import (
    READ_SCOPE,
    SYNC,
    GrantError,
    OAuthSettings,
    allows,
    fresh_credentials,
    mark_failed,
    unusable_reason,
)
from addon.crm.models import Member
from addon.gmail.client import GmailError
from addon.gmail.sync_client import GrantRefused, HistoryExpired, MailboxOpener, SyncMailbox
from addon.ledger.ingest import record_messages
from addon.ledger.stats import Clock, system_clock

BATCH_SIZE = 200  # messages recorded and committed together

INITIAL, INCREMENTAL, REIMPORT = "initial import", "incremental", "re-import"


class SyncFailed(Exception):
    """This member's sync cannot run now; the message is safe to show."""


@dataclass
class SyncPlan:
    """What one sync of a member will fetch, and the history id it reaches."""

    member: Member
    grant: GoogleGrant
    mailbox: SyncMailbox
    mode: str
    message_ids: list[str]
    history_id: str


@dataclass
class SyncReport:
    """What one sync of a member did."""

    email: str
    mode: str = ""
    listed: int = 0
    recorded: int = 0
    duplicates: int = 0
    skipped: int = 0
    error: str = ""
    skipped_reasons: list[str] = field(default_factory=list)


def sync_targets(session: Session, email: str | None = None) -> list[tuple[Member, GoogleGrant]]:
    """Members whose grant includes sync (usable or not), optionally one by email."""
    query = (
        select(Member, GoogleGrant)
        .join(GoogleGrant, GoogleGrant.member_id == Member.id)
        .where(GoogleGrant.scopes.contains(READ_SCOPE))
    )
    if email:
        query = query.where(Member.email == email.strip().lower())
    rows = session.execute(query.order_by(Member.workspace_id, Member.email)).all()
    return [(m, g) for m, g in rows if g.workspace_id == m.workspace_id]


def _fail(session: Session, grant: GoogleGrant, reason: str) -> SyncFailed:
    grant.last_sync_error = reason[:ERROR_CHARS]
    session.flush()
    return SyncFailed(reason)


def plan_sync(
    session: Session,
    member: Member,
    settings: OAuthSettings,
    open_mailbox: MailboxOpener,
    *,
    days: int,
    clock: Clock = system_clock,
) -> SyncPlan:
    """Decide what to fetch; SyncFailed (recorded on the grant) when it cannot run."""
    grant = session.execute(
        select(GoogleGrant).where(GoogleGrant.member_id == member.id)
    ).scalar_one_or_none()
    if grant is None or grant.workspace_id != member.workspace_id:
        raise SyncFailed(unusable_reason(None, SYNC))
    if not allows(grant, SYNC):
        # Refused grants are not retried: only reconnecting makes them active again.
        raise SyncFailed(unusable_reason(grant, SYNC))
    try:
        mailbox = open_mailbox(fresh_credentials(session, member, SYNC, settings))
        if grant.history_id is not None:
            try:
                page = mailbox.added_since(grant.history_id)
                return SyncPlan(
                    member, grant, mailbox, INCREMENTAL, page.message_ids, page.history_id
                )
            except HistoryExpired:
                mode = REIMPORT
        else:
            mode = INITIAL
        # The history id is read before listing, so whatever arrives meanwhile is
        # picked up by the next incremental sync (recording it twice counts once).
        history_id = mailbox.history_id()
        since = int((clock() - timedelta(days=days)).timestamp())
        ids: list[str] = []
        for page_ids in mailbox.list_ids(f"after:{since}"):
            ids += page_ids
        # Oldest first, so an interrupted import has recorded a contiguous stretch.
        return SyncPlan(member, grant, mailbox, mode, ids[::-1], history_id)
    except GrantError as exc:
        raise _fail(session, grant, str(exc)) from None
    except GrantRefused as exc:
        mark_failed(session, grant, str(exc))
        raise _fail(session, grant, str(exc)) from None
    except GmailError as exc:
        raise _fail(session, grant, str(exc)) from None


def run_sync(
    session: Session,
    plan: SyncPlan,
    *,
    clock: Clock = system_clock,
    checkpoint: Callable[[], None] = lambda: None,
    progress: Callable[[int], None] = lambda _n: None,
    batch_size: int = BATCH_SIZE,
) -> SyncReport:
    """Fetch and record the planned messages batch by batch, committing each (checkpoint)."""
    grant, member = plan.grant, plan.member
    report = SyncReport(member.email, plan.mode, listed=len(plan.message_ids))
    try:
        for start in range(0, len(plan.message_ids), batch_size):
            chunk = plan.message_ids[start : start + batch_size]
            items = plan.mailbox.metadata(chunk)
            result = record_messages(session, member, items, clock=clock)
            report.recorded += result.recorded
            report.duplicates += result.duplicates
            report.skipped += len(result.skipped) + len(chunk) - len(items)
            grant.messages_imported += result.recorded
            session.flush()
            checkpoint()
            progress(len(chunk))
    except GrantRefused as exc:
        mark_failed(session, grant, str(exc))
        report.error = _failed(session, grant, str(exc))
        checkpoint()
        return report
    except GmailError as exc:
        report.error = _failed(session, grant, str(exc))
        checkpoint()
        return report
    grant.history_id = plan.history_id
    grant.last_sync_at = clock()
    grant.last_sync_error = ""
    session.flush()
    checkpoint()
    return report


def _failed(session: Session, grant: GoogleGrant, reason: str) -> str:
    grant.last_sync_error = reason[:ERROR_CHARS]
    session.flush()
    return reason
