"""Tables of workspace administration: invitations and erased people."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from addon.crm.models import AuditEntry, utcnow
from addon.db import Base


class Invitation(Base):
    """An address invited to a workspace with a role; it takes effect on first sign-in."""

    __tablename__ = "invitations"
    __table_args__ = (UniqueConstraint("workspace_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    # Canonical address (lowercased, IDNA domain), compared with the verified token's.
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ErasedPerson(Base):
    """A person erased on request: only the hash of their address is kept, never the address."""

    __tablename__ = "erased_people"
    __table_args__ = (
        UniqueConstraint("workspace_id", "email_hash"),
        Index("ix_erased_people_workspace_time", "workspace_id", "erased_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    # sha256 hex of the canonical address (addon.admin.privacy.email_hash).
    email_hash: Mapped[str] = mapped_column(String(64))
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))


# The admin audit card filters the log by actor and by action, newest first (0010).
Index(
    "ix_audit_entries_workspace_actor_time",
    AuditEntry.workspace_id,
    AuditEntry.actor_id,
    AuditEntry.created_at,
)
Index(
    "ix_audit_entries_workspace_action_time",
    AuditEntry.workspace_id,
    AuditEntry.action,
    AuditEntry.created_at,
)
