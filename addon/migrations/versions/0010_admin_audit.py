"""Administration: invitations, erased people, and audit log lookups by actor and action

Revision ID: 0010_admin_audit
Revises: 0009_permissions
Create Date: 2026-11-23 22:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_admin_audit"
down_revision = "0009_permissions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_invitations_workspace_id_workspaces")
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_id"], ["members.id"], name=op.f("fk_invitations_invited_by_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint(
            "workspace_id", "email", name=op.f("uq_invitations_workspace_id_email")
        ),
    )
    op.create_table(
        "erased_people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_erased_people_workspace_id_workspaces"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["members.id"], name=op.f("fk_erased_people_actor_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erased_people")),
        sa.UniqueConstraint(
            "workspace_id", "email_hash", name=op.f("uq_erased_people_workspace_id_email_hash")
        ),
    )
    op.create_index(
        "ix_erased_people_workspace_time", "erased_people", ["workspace_id", "erased_at"]
    )
    # The admin audit card filters by actor and by action, newest first.
    op.create_index(
        "ix_audit_entries_workspace_actor_time",
        "audit_entries",
        ["workspace_id", "actor_id", "created_at"],
    )
    op.create_index(
        "ix_audit_entries_workspace_action_time",
        "audit_entries",
        ["workspace_id", "action", "created_at"],
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_audit_entries_workspace_action_time", table_name="audit_entries")
    op.drop_index("ix_audit_entries_workspace_actor_time", table_name="audit_entries")
    op.drop_index("ix_erased_people_workspace_time", table_name="erased_people")
    op.drop_table("erased_people")
    op.drop_table("invitations")
