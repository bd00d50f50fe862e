"""Web forms: public lead-capture forms of a folder, and per-client submission counters

Revision ID: 0008_web_forms
Revises: 0007_mailing
Create Date: 2026-11-23 22:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008_web_forms"
down_revision = "0007_mailing"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "web_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("folder_id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("thank_you", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_web_forms_workspace_id_workspaces")
        ),
        sa.ForeignKeyConstraint(
            ["folder_id"], ["folders.id"], name=op.f("fk_web_forms_folder_id_folders")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["members.id"], name=op.f("fk_web_forms_created_by_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_forms")),
        sa.UniqueConstraint("public_id", name=op.f("uq_web_forms_public_id")),
    )
    op.create_index("ix_web_forms_workspace", "web_forms", ["workspace_id", "folder_id"])
    op.create_table(
        "web_form_hits",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("client_key", sa.String(length=64), nullable=False),
        sa.Column("window", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_web_form_hits_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id", "client_key", "window", name=op.f("pk_web_form_hits")
        ),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("web_form_hits")
    op.drop_index("ix_web_forms_workspace", table_name="web_forms")
    op.drop_table("web_forms")
