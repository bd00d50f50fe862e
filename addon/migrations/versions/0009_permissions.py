"""Permissions: per-folder role rules, locked fields, record owners

Folders get `permissions` (which roles may view, create, edit, delete there; NULL keeps
the role table's defaults), fields get `locked` (editable by admins only), and records
get `owner_member_id`, filled from the record's "owner" field, else its creator, so the
"reps see only their own records" option can filter on one indexed column.

Revision ID: 0009_permissions
Revises: 0008_web_forms
Create Date: 2026-11-23 22:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009_permissions"
down_revision = "0008_web_forms"
branch_labels = None
depends_on = None

_OWNER_FIELD_VALUE = """
    SELECT fv.num_key FROM field_values fv
    JOIN field_defs fd ON fd.id = fv.field_id
    WHERE fv.record_id = records.id AND fd.key = 'owner' AND fd.type = 'user'
      AND fv.num_key IS NOT NULL
"""


def upgrade() -> None:
    """Apply this revision."""
    # Plain ADD COLUMN, not batch mode: on SQLite batch mode copies and drops the table,
    # which foreign keys from other tables (field values, records ...) forbid once a
    # workspace has data.
    op.add_column(
        "folders",
        sa.Column(
            "permissions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
    )
    op.add_column(
        "field_defs",
        sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column's foreign key only inline, in ADD COLUMN itself.
        op.execute("ALTER TABLE records ADD COLUMN owner_member_id INTEGER REFERENCES members (id)")
    else:
        op.add_column("records", sa.Column("owner_member_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_records_owner_member_id_members"),
            "records",
            "members",
            ["owner_member_id"],
            ["id"],
        )
    op.create_index(
        "ix_records_workspace_owner", "records", ["workspace_id", "owner_member_id"], unique=False
    )
    op.execute("UPDATE records SET owner_member_id = created_by_id")
    op.execute(
        "UPDATE records SET owner_member_id = CAST(("
        + _OWNER_FIELD_VALUE
        + " LIMIT 1) AS INTEGER) WHERE EXISTS ("
        + _OWNER_FIELD_VALUE
        + ")"
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_records_workspace_owner", table_name="records")
    with op.batch_alter_table("records", schema=None) as batch_op:
        if op.get_bind().dialect.name != "sqlite":
            batch_op.drop_constraint(
                batch_op.f("fk_records_owner_member_id_members"), type_="foreignkey"
            )
        batch_op.drop_column("owner_member_id")
    with op.batch_alter_table("field_defs", schema=None) as batch_op:
        batch_op.drop_column("locked")
    with op.batch_alter_table("folders", schema=None) as batch_op:
        batch_op.drop_column("permissions")
