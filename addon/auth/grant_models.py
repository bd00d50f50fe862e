"""The offline Google grant of a member: an encrypted refresh token and its sync state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from addon.crm.models import utcnow
from addon.db import Base

ACTIVE, REVOKED, EXPIRED, ERROR = "active", "revoked", "expired", "error"
STATUSES = (ACTIVE, REVOKED, EXPIRED, ERROR)
ERROR_CHARS = 500


class GoogleGrant(Base):
    """One member's offline access to their Gmail (sending, mailbox sync or both).

    `refresh_token` holds the Fernet-encrypted token (addon.auth.token_keys), never the
    token itself; it is cleared when the member revokes. A grant that Google refused
    (invalid_grant) keeps its row with status expired/revoked and the reason, so callers
    stop using it until the member connects again.
    """

    __tablename__ = "google_grants"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'revoked', 'expired', 'error')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), unique=True
    )
    google_email: Mapped[str] = mapped_column(String(320), default="")
    # Space-separated scope URLs Google granted (include_granted_scopes: all of them).
    scopes: Mapped[str] = mapped_column(Text, default="")
    refresh_token: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=ACTIVE)
    last_error: Mapped[str] = mapped_column(String(ERROR_CHARS), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Mailbox sync: the Gmail history id to continue from (None until the first import
    # finished), when a sync last finished, how many new messages it brought in all.
    history_id: Mapped[str | None] = mapped_column(String(32))
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    messages_imported: Mapped[int] = mapped_column(Integer, default=0)
    last_sync_error: Mapped[str] = mapped_column(String(ERROR_CHARS), default="")

    def __repr__(self) -> str:
        # The encrypted token stays out of logs and tracebacks too.
        return (
            f"GoogleGrant(id={self.id}, member_id={self.member_id}, "
            f"email={self.google_email!r}, status={self.status!r})"
        )

    def scope_set(self) -> frozenset[str]:
        """The granted scopes as a set."""
        return frozenset(self.scopes.split())
