"""Tables of the email ledger; every row belongs to a workspace.

A conversation is the workspace-wide identity of an email thread. Gmail thread ids are per
mailbox (a teammate's copy of the same conversation has another id), so messages are keyed
by their RFC 822 Message-ID and grouped under a conversation key (the first Message-ID of
References / In-Reply-To, else the message's own); `ledger_thread_maps` remembers which
Gmail thread of which member is which conversation. Thread links (addon.crm.models.ThreadLink)
point at conversations, so a link made from one mailbox holds for every teammate.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from addon.crm.models import utcnow
from addon.db import Base

# Direction of a message relative to the workspace.
SENT, RECEIVED, INTERNAL = "sent", "received", "internal"
DIRECTIONS = (SENT, RECEIVED, INTERNAL)
ROLES = ("from", "to", "cc", "bcc")

# Why a thread link exists (ThreadLink.reason).
MANUAL, MATCHED_EMAIL, MATCHED_DOMAIN, SINGLE_OPEN_DEAL = (
    "manual",
    "matched_email",
    "matched_domain",
    "single_open_deal",
)
LINK_REASONS = (MANUAL, MATCHED_EMAIL, MATCHED_DOMAIN, SINGLE_OPEN_DEAL)


class Conversation(Base):
    """One email conversation of a workspace, whoever's mailbox it was seen in."""

    __tablename__ = "ledger_conversations"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    # The root Message-ID (first of References, else In-Reply-To, else the message's own).
    key: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LedgerMessage(Base):
    """One message, recorded once per workspace however many mailboxes hold a copy."""

    __tablename__ = "ledger_messages"
    __table_args__ = (
        UniqueConstraint("workspace_id", "message_key"),
        Index("ix_ledger_messages_conversation", "conversation_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("ledger_conversations.id"))
    # The Message-ID without angle brackets (hashed when longer than the column), or a
    # synthetic key for messages without one (see addon.ledger.parse.message_key).
    message_key: Mapped[str] = mapped_column(String(255))
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    direction: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(500), default="")
    from_email: Mapped[str] = mapped_column(String(320), default="")
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LedgerParticipant(Base):
    """A canonical address on a message, with its role (from, to, cc, bcc)."""

    __tablename__ = "ledger_participants"
    __table_args__ = (Index("ix_ledger_participants_email", "workspace_id", "email"),)

    message_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_messages.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(4), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))


class ThreadMap(Base):
    """Which conversation a member's Gmail thread is (thread ids are per mailbox)."""

    __tablename__ = "ledger_thread_maps"
    __table_args__ = (Index("ix_ledger_thread_maps_conversation", "conversation_id"),)

    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), primary_key=True)
    gmail_thread_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("ledger_conversations.id"))


class LinkSuppression(Base):
    """A manual unlink: automatic linking never links this conversation to this record again."""

    __tablename__ = "thread_link_suppressions"
    __table_args__ = (
        UniqueConstraint("record_id", "thread_id"),
        Index("ix_thread_link_suppressions_conversation", "conversation_id", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    # None while the thread is not in the ledger yet; filled in when it is recorded.
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_conversations.id"))
    thread_id: Mapped[str] = mapped_column(String(64))
    suppressed_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    suppressed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecordStats(Base):
    """Email stats of one record, derived from the ledger and its thread links.

    The one copy of the stats fields' values: cards, exports and merge templates read
    them from here, and views filter and sort on these columns (the two moments "days
    since" counts from are indexed); "days since" values are derived when read.
    """

    __tablename__ = "record_stats"
    __table_args__ = (
        # Also the index of lookups by workspace alone (its leading column).
        Index("ix_record_stats_last_contacted", "workspace_id", "last_contacted"),
        Index("ix_record_stats_last_received", "workspace_id", "last_received"),
    )

    record_id: Mapped[int] = mapped_column(
        ForeignKey("records.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    emails_sent: Mapped[int] = mapped_column(Integer, default=0)
    emails_received: Mapped[int] = mapped_column(Integer, default=0)
    threads: Mapped[int] = mapped_column(Integer, default=0)
    first_email: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_email: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sent: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_received: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_contacted: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
