"""A sender's quota use: the send log plus mail the ledger saw them send elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session

from addon.crm.models import Member
from addon.ledger.models import SENT, LedgerMessage, LedgerParticipant
from addon.mailing.models import SendLog
from addon.mailing.quota import WINDOW, Event, QuotaPolicy, next_send_time, policy_for

# Oldest events loaded when the window is full; enough for one expiry in practice.
PREFIX_EVENTS = 200


@dataclass(frozen=True)
class Usage:
    """A sender's quota state at an instant."""

    policy: QuotaPolicy
    used: int
    oldest: list[Event]  # the oldest counted events, oldest first (a prefix)
    last_send_at: datetime | None


def sender_policy(member: Member) -> QuotaPolicy:
    """The quota policy of a member's mailbox."""
    workspace = member.workspace
    return policy_for(workspace.is_consumer, workspace.settings)


# Statements built once; SQLAlchemy caches their compiled form.
_LOGGED = (
    select(SendLog.id)
    .where(
        SendLog.sender_member_id == bindparam("member_id"),
        SendLog.message_key == LedgerMessage.message_key,
    )
    .exists()
)
# Mail the member sent outside the add-on, known to the ledger; messages the add-on sent
# are in the send log already, under the same key.
_OUTSIDE = (
    select(LedgerMessage.sent_at, func.count(LedgerParticipant.email))
    .join(
        LedgerParticipant,
        and_(
            LedgerParticipant.message_id == LedgerMessage.id,
            LedgerParticipant.role.in_(("to", "cc", "bcc")),
        ),
    )
    .where(
        LedgerMessage.workspace_id == bindparam("workspace_id"),
        LedgerMessage.direction == SENT,
        LedgerMessage.from_email == bindparam("email"),
        LedgerMessage.sent_at > bindparam("start"),
        ~_LOGGED,
    )
    .group_by(LedgerMessage.id, LedgerMessage.sent_at)
)
_USED = select(func.coalesce(func.sum(SendLog.recipients), 0), func.max(SendLog.sent_at)).where(
    SendLog.sender_member_id == bindparam("member_id"), SendLog.sent_at > bindparam("start")
)
_OLDEST = (
    select(SendLog.sent_at, SendLog.recipients)
    .where(SendLog.sender_member_id == bindparam("member_id"), SendLog.sent_at > bindparam("start"))
    .order_by(SendLog.sent_at)
    .limit(PREFIX_EVENTS)
)


def outside_events(session: Session, member: Member, start: datetime) -> list[Event]:
    """Mail the member sent after `start` outside the add-on, as the ledger knows it."""
    rows = session.execute(
        _OUTSIDE,
        {
            "workspace_id": member.workspace_id,
            "email": member.email.lower(),
            "start": start,
            "member_id": member.id,
        },
    ).all()
    return [(aware(when), int(n)) for when, n in rows]


def aware(when: datetime) -> datetime:
    # SQLite returns naive datetimes; everything stored is UTC.
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def sender_usage(
    session: Session,
    member: Member,
    now: datetime,
    recipients: int | None = None,
    outside: list[Event] | None = None,
) -> Usage:
    """Recipients counted for the member at `now`, the oldest events, and the last send.

    With `recipients`, the oldest events are loaded only when that many would not fit.
    `outside` may hand over recently loaded outside_events (the worker caches them).
    """
    start = now - WINDOW
    policy = sender_policy(member)
    params = {"member_id": member.id, "start": start}
    used, last = session.execute(_USED, params).one()
    used = int(used)
    if outside is None:
        outside = outside_events(session, member, start)
    else:
        outside = [e for e in outside if e[0] > start]
    used += sum(n for _, n in outside)
    oldest: list[Event] = []
    if recipients is None or used + recipients > policy.cap:
        oldest = [(aware(when), int(n)) for when, n in session.execute(_OLDEST, params)]
        oldest = sorted(oldest + outside)
    return Usage(
        policy=policy,
        used=used,
        oldest=oldest,
        last_send_at=aware(last) if last is not None else None,
    )


def earliest_send(
    session: Session,
    member: Member,
    now: datetime,
    recipients: int,
    gap: timedelta = timedelta(0),
    *,
    min_interval: timedelta | None = None,
    outside: list[Event] | None = None,
) -> datetime:
    """When the member may next send a message to `recipients` people."""
    usage = sender_usage(session, member, now, recipients, outside)
    return next_send_time(
        now=now,
        recipients=recipients,
        cap=usage.policy.cap,
        window_events=usage.oldest,
        used=usage.used,
        last_send_at=usage.last_send_at,
        min_interval=usage.policy.min_interval if min_interval is None else min_interval,
        gap=gap,
    )
