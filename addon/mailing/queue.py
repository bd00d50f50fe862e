"""The send queue: claiming due recipients under a lease, and what is due when.

On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets many workers claim at once without waiting
for or taking each other's rows; the lease (claimed_by, claimed_until) then keeps a row
with its worker between transactions, and an expired lease frees the row of a worker
that died. SQLite has no row locks: one worker claims with a plain update.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from addon.mailing.models import QUEUED, RUNNING, SENDING, Campaign, CampaignRecipient
from addon.mailing.usage import aware

LEASE = timedelta(minutes=5)
PENDING = (QUEUED, SENDING)


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(CampaignRecipient.claimed_until.is_(None), CampaignRecipient.claimed_until <= now)


def _due(now: datetime) -> ColumnElement[bool]:
    return and_(
        CampaignRecipient.state.in_(PENDING),
        or_(CampaignRecipient.next_attempt_at.is_(None), CampaignRecipient.next_attempt_at <= now),
        _free(now),
    )


def claim(
    session: Session,
    *,
    worker_id: str,
    now: datetime,
    sender_member_id: int,
    limit: int = 20,
    lease: timedelta = LEASE,
) -> list[CampaignRecipient]:
    """Claim up to `limit` due recipients of the sender's running campaigns; flushes only.

    The caller commits at once, so the rows are locked only for the claim itself.
    """
    query = (
        select(CampaignRecipient.id)
        .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
        .where(
            Campaign.status == RUNNING,
            Campaign.sender_member_id == sender_member_id,
            _due(now),
        )
        .order_by(CampaignRecipient.campaign_id, CampaignRecipient.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=CampaignRecipient)
    ids = list(session.scalars(query))
    if not ids:
        return []
    # The lease guard repeats the check: a row another worker leased in between is left.
    session.execute(
        update(CampaignRecipient)
        .where(CampaignRecipient.id.in_(ids), _free(now))
        .values(claimed_by=worker_id, claimed_until=now + lease),
        execution_options={"synchronize_session": False},
    )
    rows = session.scalars(
        select(CampaignRecipient)
        .where(CampaignRecipient.id.in_(ids), CampaignRecipient.claimed_by == worker_id)
        .order_by(CampaignRecipient.campaign_id, CampaignRecipient.id)
        .execution_options(populate_existing=True)
    )
    return list(rows)


def release(session: Session, recipients: Sequence[CampaignRecipient], worker_id: str) -> None:
    """Give back claimed rows this worker will not handle now; flushes only."""
    for recipient in recipients:
        if recipient.claimed_by == worker_id:
            recipient.claimed_by = None
            recipient.claimed_until = None
    session.flush()


def senders_with_work(session: Session) -> list[int]:
    """Members whose running campaigns still have queued or unresolved recipients."""
    return list(
        session.scalars(
            select(Campaign.sender_member_id)
            .where(
                Campaign.status == RUNNING,
                select(CampaignRecipient.id)
                .where(
                    CampaignRecipient.campaign_id == Campaign.id,
                    CampaignRecipient.state.in_(PENDING),
                )
                .exists(),
            )
            .distinct()
            .order_by(Campaign.sender_member_id)
        )
    )


def next_due_at(session: Session, sender_member_id: int, now: datetime) -> datetime | None:
    """When the sender's next pending recipient becomes claimable (None: nothing pending)."""
    # A leased row counts from its lease's end (a lower bound); a free row from its
    # next attempt, or now.
    claimable = case(
        (CampaignRecipient.claimed_until > now, CampaignRecipient.claimed_until),
        else_=func.coalesce(CampaignRecipient.next_attempt_at, now),
    )
    count, earliest = session.execute(
        select(func.count(CampaignRecipient.id), func.min(claimable))
        .join(Campaign, Campaign.id == CampaignRecipient.campaign_id)
        .where(
            Campaign.status == RUNNING,
            Campaign.sender_member_id == sender_member_id,
            CampaignRecipient.state.in_(PENDING),
        )
    ).one()
    if not count:
        return None
    if earliest is None:
        return now
    if isinstance(earliest, str):
        earliest = datetime.fromisoformat(earliest)
    return max(now, aware(earliest))
