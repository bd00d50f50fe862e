"""Google grants: members' offline Gmail access (encrypted refresh tokens) and sync state

Revision ID: 0005_google_grants
Revises: 0004
Create Date: 2026-11-24 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_google_grants"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "google_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("google_email", sa.String(length=320), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("history_id", sa.String(length=32), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("messages_imported", sa.Integer(), nullable=False),
        sa.Column("last_sync_error", sa.String(length=500), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'revoked', 'expired', 'error')",
            name=op.f("ck_google_grants_status"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_google_grants_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_google_grants_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_google_grants")),
        sa.UniqueConstraint("member_id", name=op.f("uq_google_grants_member_id")),
    )
    with op.batch_alter_table("google_grants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_google_grants_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("google_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_google_grants_workspace_id"))
    op.drop_table("google_grants")
