"""Typed SQLAlchemy models of the CRM domain; every row belongs to a workspace."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from addon.db import Base

JSONValue = JSON().with_variant(JSONB(), "postgresql")

ROLES = ("admin", "manager", "rep", "viewer")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Workspace(Base):
    """A tenant: a Google Workspace domain, or one consumer account."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The `hd` claim for Workspace users, the user's own address for consumer accounts.
    domain: Mapped[str] = mapped_column(String(255), unique=True)
    is_consumer: Mapped[bool] = mapped_column(Boolean, default=False)
    # Workspace-wide preferences (default phone region, time zone ...), set by admins.
    settings: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Member(Base):
    """A user of a workspace, with a role."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("workspace_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), default="rep")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    workspace: Mapped[Workspace] = relationship(lazy="joined")


class Folder(Base):
    """A kind of record in a workspace: Contacts, Companies, Deals, or a custom one."""

    __tablename__ = "folders"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    key: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(100))
    singular: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, default=0)
    # Deactivated folders keep their records but leave every list and form.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Which roles may view, create, edit, delete here ({"create": ["admin", "manager"]});
    # None, or an action left out, keeps the role table's default (addon/auth/policy.py).
    permissions: Mapped[dict[str, list[str]] | None] = mapped_column(JSONValue)


class FieldDef(Base):
    """The definition of one field of a folder; field definitions are data, not columns."""

    __tablename__ = "field_defs"
    __table_args__ = (UniqueConstraint("folder_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), index=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id"), index=True)
    key: Mapped[str] = mapped_column(String(50))
    label: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(30))
    # Type-specific options: dropdown choices, the folder a link points to, many or one.
    options: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    # The next auto-number of this field; numbers are taken under a row lock, never reused.
    next_number: Mapped[int] = mapped_column(Integer, default=1)
    # Editable by admins only: read-only in everyone else's forms, refused if forged.
    locked: Mapped[bool] = mapped_column(Boolean, default=False)


class Record(Base):
    """One contact, company, deal or custom record."""

    __tablename__ = "records"
    __table_args__ = (
        Index("ix_records_workspace_folder_created", "workspace_id", "folder_id", "created_at"),
        Index("ix_records_workspace_folder_updated", "workspace_id", "folder_id", "updated_at"),
        Index("ix_records_workspace_search", "workspace_id", "search_key"),
        Index("ix_records_workspace_owner", "workspace_id", "owner_member_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id"))
    # Denormalised display name, kept in step with the name fields, for lists and search.
    title: Mapped[str] = mapped_column(String(300), default="")
    # Lowercased title for case-insensitive prefix search on both databases.
    search_key: Mapped[str] = mapped_column(String(300), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    # Who owns the record: the folder's "owner" field when it has one, else the creator.
    # Reps restricted to their own records see those they own or a user field names.
    owner_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    folder: Mapped[Folder] = relationship(lazy="joined")


class FieldValue(Base):
    """The value of one field of one record, stored as JSON of the field type's shape."""

    __tablename__ = "field_values"
    __table_args__ = (
        UniqueConstraint("record_id", "field_id"),
        # Saved views filter and sort on these keys of one field at a time; the record id
        # at the end answers a condition from the index alone (migration 0003).
        Index("ix_field_values_field_text", "field_id", "text_key", "record_id"),
        Index("ix_field_values_field_num", "field_id", "num_key", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    field_id: Mapped[int] = mapped_column(ForeignKey("field_defs.id"))
    value: Mapped[Any] = mapped_column(JSONValue)
    # Derived from `value` by the field type: lowercased text ("|a|b|" for lists) and a
    # number, so views compare plain indexed columns instead of JSON on two databases.
    text_key: Mapped[str | None] = mapped_column(String(255))
    num_key: Mapped[float | None] = mapped_column(Float)


class RecordEmail(Base):
    """Index of canonical email addresses of records, for matching senders to contacts."""

    __tablename__ = "record_emails"
    __table_args__ = (
        UniqueConstraint("workspace_id", "email", "record_id"),
        Index("ix_record_emails_record", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))


class RecordPhone(Base):
    """Index of E.164 phone numbers of records, for duplicate detection and lookup."""

    __tablename__ = "record_phones"
    __table_args__ = (
        UniqueConstraint("workspace_id", "phone", "record_id"),
        Index("ix_record_phones_record", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))


class RecordDomain(Base):
    """Index of registrable domains of company records."""

    __tablename__ = "record_domains"
    __table_args__ = (
        UniqueConstraint("workspace_id", "domain", "record_id"),
        Index("ix_record_domains_record", "record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(255))


class RecordRelation(Base):
    """A link-type field value: this record points at another (contact -> company ...)."""

    __tablename__ = "record_relations"
    __table_args__ = (
        UniqueConstraint("field_id", "from_record_id", "to_record_id"),
        # Lookups by target also filter by field (the deals of a company, not its contacts).
        Index("ix_record_relations_to", "to_record_id", "field_id"),
        Index("ix_record_relations_from", "from_record_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    field_id: Mapped[int] = mapped_column(ForeignKey("field_defs.id"))
    from_record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    to_record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))


class ThreadLink(Base):
    """A Gmail thread (a ledger conversation, once recorded) linked to a record."""

    __tablename__ = "thread_links"
    __table_args__ = (
        UniqueConstraint("workspace_id", "thread_id", "record_id"),
        UniqueConstraint("conversation_id", "record_id"),
        Index("ix_thread_links_record", "record_id", "linked_at"),
        CheckConstraint(
            "reason IN ('manual', 'matched_email', 'matched_domain', 'single_open_deal')",
            name="reason",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    # The Gmail thread id in the mailbox of whoever linked it (shown and unlinked by it).
    thread_id: Mapped[str] = mapped_column(String(64))
    # The workspace-wide conversation (addon.ledger): teammates' copies of the thread have
    # other Gmail ids. None until the thread is recorded in the ledger.
    # Looked up through the unique (conversation_id, record_id) index.
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_conversations.id"))
    subject: Mapped[str] = mapped_column(String(500), default="")
    # Why the link exists: manual, matched_email, matched_domain or single_open_deal.
    reason: Mapped[str] = mapped_column(String(30), default="manual")
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Note(Base):
    """A note written on a record."""

    __tablename__ = "notes"
    __table_args__ = (Index("ix_notes_record", "record_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RecentView(Base):
    """When a member last opened a record, for the homepage's recently viewed list."""

    __tablename__ = "recent_views"
    __table_args__ = (
        UniqueConstraint("member_id", "record_id"),
        Index("ix_recent_views_member_time", "member_id", "viewed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    viewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SavedView(Base):
    """A saved filter over one folder (NetHunt's subfolders); the segments of mail merge."""

    __tablename__ = "saved_views"
    __table_args__ = (Index("ix_saved_views_folder", "workspace_id", "folder_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id"))
    # None for a view shared with the workspace; else visible to its owner only.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    name: Mapped[str] = mapped_column(String(100))
    # {"match": "all" | "any", "conditions": [{"field", "op", "value"}], "sort": {...}}
    definition: Mapped[dict[str, Any]] = mapped_column(JSONValue, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MergedRecord(Base):
    """A record merged away: its id keeps resolving to the survivor."""

    __tablename__ = "merged_records"

    # No foreign key: the merged record's row is gone, its id lives on here.
    merged_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    survivor_id: Mapped[int] = mapped_column(
        ForeignKey("records.id", ondelete="CASCADE"), index=True
    )
    merged_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    merged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEntry(Base):
    """Who changed what and when, with before and after values."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_workspace_time", "workspace_id", "created_at"),
        Index("ix_audit_entries_record_time", "record_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    # create, update, delete, merge, mass_update, import, export, field_change ...
    action: Mapped[str] = mapped_column(String(40))
    # No foreign key: the history of a deleted or merged record is kept.
    record_id: Mapped[int | None] = mapped_column(Integer)
    folder_id: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(String(500), default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONValue)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONValue)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# Tables of other modules are registered with this metadata too: the ledger's (thread
# links point at its conversations), the members' Google grants, the web forms', the admin
# tables (invitations, erased people) and the mail merge's (recipients point at records).
from addon.admin import models as _admin_models  # noqa: E402, F401
from addon.auth import grant_models as _grant_models  # noqa: E402, F401
from addon.crm import webform_models as _webform_models  # noqa: E402, F401
from addon.ledger import models as _ledger_models  # noqa: E402, F401
from addon.mailing import models as _mailing_models  # noqa: E402, F401
