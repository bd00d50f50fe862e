"""Mail merge tables: templates, campaigns, recipients (the send queue), suppressions, send log.

The queue is the `campaign_recipients` table. A recipient gets its RFC 822 Message-ID when the
campaign is resolved, before any attempt, so a send whose outcome is unknown can be found in the
sender's mailbox by that id. State `sending` means an attempt started and its outcome was not
recorded (crash, timeout, 5xx): the next worker searches the mailbox before resending.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from addon.crm.models import utcnow
from addon.db import Base
from addon.gmail.addresses import canonical_email

# Campaign statuses.
DRAFT, SCHEDULED, RUNNING, PAUSED, COMPLETED, CANCELLED, FAILED = (
    "draft",
    "scheduled",
    "running",
    "paused",
    "completed",
    "cancelled",
    "failed",
)
CAMPAIGN_STATUSES = (DRAFT, SCHEDULED, RUNNING, PAUSED, COMPLETED, CANCELLED, FAILED)

# Recipient states.
QUEUED, SENDING, SENT, RECIPIENT_FAILED, SKIPPED = "queued", "sending", "sent", "failed", "skipped"
RECIPIENT_STATES = (QUEUED, SENDING, SENT, RECIPIENT_FAILED, SKIPPED)

# Why an address is suppressed.
UNSUBSCRIBED, BOUNCED, MANUAL, ERASED = "unsubscribed", "bounced", "manual", "erased"
SUPPRESSION_REASONS = (UNSUBSCRIBED, BOUNCED, MANUAL, ERASED)

# What a send-log row counts.
SOURCE_CAMPAIGN, SOURCE_TEST, SOURCE_OUTSIDE = "campaign", "test", "outside"
SEND_SOURCES = (SOURCE_CAMPAIGN, SOURCE_TEST, SOURCE_OUTSIDE)


def _in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class MailTemplate(Base):
    """A mail-merge template: subject and bodies with merge fields."""

    __tablename__ = "mail_templates"
    __table_args__ = (Index("ix_mail_templates_workspace", "workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    owner_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    name: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(998), default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Campaign(Base):
    """One mail merge: a template sent from a member's mailbox to a view (or folder) of records."""

    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(_in("status", CAMPAIGN_STATUSES), name="status"),
        Index("ix_campaigns_workspace", "workspace_id", "created_at"),
        Index("ix_campaigns_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    sender_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    template_id: Mapped[int] = mapped_column(ForeignKey("mail_templates.id"))
    view_id: Mapped[int | None] = mapped_column(ForeignKey("saved_views.id", ondelete="SET NULL"))
    folder_id: Mapped[int | None] = mapped_column(ForeignKey("folders.id"))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default=DRAFT)
    status_reason: Mapped[str] = mapped_column(String(500), default="")
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Comma-separated canonical addresses copied on every message (counted against quota).
    cc: Mapped[str] = mapped_column(Text, default="")
    bcc: Mapped[str] = mapped_column(Text, default="")
    human_gaps: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CampaignRecipient(Base):
    """One recipient of a campaign; the durable unit of the send queue."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign_id", "email"),
        UniqueConstraint("message_id"),
        CheckConstraint(_in("state", RECIPIENT_STATES), name="state"),
        Index("ix_campaign_recipients_due", "state", "next_attempt_at"),
        Index("ix_campaign_recipients_campaign_state", "campaign_id", "state"),
        Index("ix_campaign_recipients_record", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(10), default=QUEUED)
    skip_reason: Mapped[str | None] = mapped_column(String(200))
    fail_reason: Mapped[str | None] = mapped_column(String(500))
    # RFC 822 Message-ID with angle brackets, assigned before the first attempt.
    message_id: Mapped[str] = mapped_column(String(255))
    gmail_message_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The lease: a worker owns the row until claimed_until; an expired lease is free again.
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # to + cc + bcc of this recipient's message: what the quota counts.
    recipients_count: Mapped[int] = mapped_column(Integer, default=1)
    rendered_subject: Mapped[str | None] = mapped_column(String(998))
    bounced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the sent message entered the email ledger (recorded in batches after sending).
    recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MailSuppression(Base):
    """An address no campaign of the workspace may mail, kept by hash so erasure keeps it."""

    __tablename__ = "mail_suppressions"
    __table_args__ = (
        UniqueConstraint("workspace_id", "email_hash"),
        CheckConstraint(_in("reason", SUPPRESSION_REASONS), name="reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    email_hash: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(20))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SendLog(Base):
    """One message sent by a member through the add-on: the quota's ledger of recipients."""

    __tablename__ = "mail_send_log"
    __table_args__ = (
        CheckConstraint(_in("source", SEND_SOURCES), name="source"),
        Index("ix_mail_send_log_sender_time", "sender_member_id", "sent_at"),
        Index("ix_mail_send_log_sender_key", "sender_member_id", "message_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    sender_member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recipients: Mapped[int] = mapped_column(Integer)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(10), default=SOURCE_CAMPAIGN)
    # The ledger key of the message (addon.ledger.parse.message_key), so mail the ledger
    # also knows about is not counted twice as "sent outside campaigns".
    message_key: Mapped[str | None] = mapped_column(String(255))


def _canonical(email: str) -> str:
    return canonical_email(email) or email.strip().lower()


def email_hash(email: str) -> str:
    """The sha256 hex of the canonical address (lowercased, IDNA domain)."""
    return hashlib.sha256(_canonical(email).encode("utf-8")).hexdigest()


def suppress(
    session: Session,
    workspace_id: int,
    email: str,
    reason: str,
    campaign_id: int | None = None,
) -> MailSuppression:
    """Suppress an address for the workspace (idempotent: an existing row is kept)."""
    if reason not in SUPPRESSION_REASONS:
        raise ValueError(f"unknown suppression reason {reason!r}")
    digest = email_hash(email)
    existing = session.scalar(
        select(MailSuppression).where(
            MailSuppression.workspace_id == workspace_id, MailSuppression.email_hash == digest
        )
    )
    if existing is not None:
        return existing
    row = MailSuppression(
        workspace_id=workspace_id,
        email_hash=digest,
        email=None if reason == ERASED else _canonical(email),
        reason=reason,
        campaign_id=campaign_id,
    )
    # A savepoint: a concurrent suppression of the same address wins without failing ours.
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        again = session.scalar(
            select(MailSuppression).where(
                MailSuppression.workspace_id == workspace_id,
                MailSuppression.email_hash == digest,
            )
        )
        if again is None:
            raise
        return again
    return row


def is_suppressed(session: Session, workspace_id: int, emails: Iterable[str]) -> set[str]:
    """The given addresses (as given) that are suppressed in the workspace."""
    by_hash: dict[str, list[str]] = {}
    for email in emails:
        by_hash.setdefault(email_hash(email), []).append(email)
    found: set[str] = set()
    hashes = list(by_hash)
    for start in range(0, len(hashes), 500):
        chunk = hashes[start : start + 500]
        for digest in session.scalars(
            select(MailSuppression.email_hash).where(
                MailSuppression.workspace_id == workspace_id,
                MailSuppression.email_hash.in_(chunk),
            )
        ):
            found.update(by_hash[digest])
    return found
