"""Email ledger: conversations, messages, participants, thread maps, link suppressions, stats

Thread links get the conversation they belong to (existing links stay unattached until
their thread is recorded) and a check on their reason. Stats of existing records are built
by `flask --app addon crm recompute-stats`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

REASONS = "reason IN ('manual', 'matched_email', 'matched_domain', 'single_open_deal')"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "ledger_conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_ledger_conversations_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_conversations")),
        sa.UniqueConstraint(
            "workspace_id", "key", name=op.f("uq_ledger_conversations_workspace_id_key")
        ),
    )
    op.create_table(
        "ledger_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("message_key", sa.String(length=255), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("from_email", sa.String(length=320), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["ledger_conversations.id"],
            name=op.f("fk_ledger_messages_conversation_id_ledger_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_ledger_messages_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_messages")),
        sa.UniqueConstraint(
            "workspace_id",
            "message_key",
            name=op.f("uq_ledger_messages_workspace_id_message_key"),
        ),
    )
    with op.batch_alter_table("ledger_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_messages_conversation", ["conversation_id", "sent_at"], unique=False
        )

    op.create_table(
        "ledger_thread_maps",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("gmail_thread_id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["ledger_conversations.id"],
            name=op.f("fk_ledger_thread_maps_conversation_id_ledger_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_ledger_thread_maps_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_ledger_thread_maps_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("member_id", "gmail_thread_id", name=op.f("pk_ledger_thread_maps")),
    )
    with op.batch_alter_table("ledger_thread_maps", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_thread_maps_conversation", ["conversation_id"], unique=False
        )

    op.create_table(
        "ledger_participants",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=4), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["ledger_messages.id"],
            name=op.f("fk_ledger_participants_message_id_ledger_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_ledger_participants_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("message_id", "role", "email", name=op.f("pk_ledger_participants")),
    )
    with op.batch_alter_table("ledger_participants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_participants_email", ["workspace_id", "email"], unique=False
        )

    op.create_table(
        "record_stats",
        sa.Column("record_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("emails_sent", sa.Integer(), nullable=False),
        sa.Column("emails_received", sa.Integer(), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("first_email", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_email", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sent", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_received", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_contacted", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_record_stats_record_id_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_record_stats_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_record_stats")),
    )
    with op.batch_alter_table("record_stats", schema=None) as batch_op:
        batch_op.create_index("ix_record_stats_workspace", ["workspace_id"], unique=False)

    op.create_table(
        "thread_link_suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("thread_id", sa.String(length=64), nullable=False),
        sa.Column("suppressed_by_id", sa.Integer(), nullable=True),
        sa.Column("suppressed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["ledger_conversations.id"],
            name=op.f("fk_thread_link_suppressions_conversation_id_ledger_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_thread_link_suppressions_record_id_records"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["suppressed_by_id"],
            ["members.id"],
            name=op.f("fk_thread_link_suppressions_suppressed_by_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_thread_link_suppressions_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_thread_link_suppressions")),
        sa.UniqueConstraint(
            "record_id", "thread_id", name=op.f("uq_thread_link_suppressions_record_id_thread_id")
        ),
    )
    with op.batch_alter_table("thread_link_suppressions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_thread_link_suppressions_conversation",
            ["conversation_id", "record_id"],
            unique=False,
        )

    with op.batch_alter_table("thread_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("conversation_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_thread_links_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_thread_links_conversation_id_record_id"),
            ["conversation_id", "record_id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_thread_links_conversation_id_ledger_conversations"),
            "ledger_conversations",
            ["conversation_id"],
            ["id"],
        )
        batch_op.create_check_constraint(batch_op.f("ck_thread_links_reason"), REASONS)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("thread_links", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_thread_links_reason"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_thread_links_conversation_id_ledger_conversations"),
            type_="foreignkey",
        )
        batch_op.drop_constraint(
            batch_op.f("uq_thread_links_conversation_id_record_id"), type_="unique"
        )
        batch_op.drop_index(batch_op.f("ix_thread_links_conversation_id"))
        batch_op.drop_column("conversation_id")

    with op.batch_alter_table("thread_link_suppressions", schema=None) as batch_op:
        batch_op.drop_index("ix_thread_link_suppressions_conversation")
    op.drop_table("thread_link_suppressions")
    with op.batch_alter_table("record_stats", schema=None) as batch_op:
        batch_op.drop_index("ix_record_stats_workspace")
    op.drop_table("record_stats")
    with op.batch_alter_table("ledger_participants", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_participants_email")
    op.drop_table("ledger_participants")
    with op.batch_alter_table("ledger_thread_maps", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_thread_maps_conversation")
    op.drop_table("ledger_thread_maps")
    with op.batch_alter_table("ledger_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_messages_conversation")
    op.drop_table("ledger_messages")
    op.drop_table("ledger_conversations")
