"""Indexes and statistics for saved views over a million records

Measured with bench/hygiene.py (1,000,000 contacts, two-condition views: count plus the
first page, as the sidebar shows them):

- the view-key indexes of field_values end with the record id, so a condition is
  answered from the index alone (an index-only scan) instead of one table read per
  matching value; `ix_field_values_field_id` goes, as both of them start with field_id;
- records get (workspace, folder, updated_at) for views sorted by last update, which
  otherwise sort every matching record to show twenty;
- on PostgreSQL, multivariate MCV statistics on (field_id, text_key) and (field_id,
  num_key): without them the planner multiplies the frequencies of "field 7" and
  "customer" as if they were independent, expects a few thousand rows where there are
  hundreds of thousands, and picks nested loops that take seconds. Statistics are not
  part of the models (Alembic does not compare them); ANALYZE (autovacuum) fills them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATISTICS = {
    "st_field_values_field_text": "field_id, text_key",
    "st_field_values_field_num": "field_id, num_key",
}


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("field_values", schema=None) as batch_op:
        batch_op.drop_index("ix_field_values_field_text")
        batch_op.drop_index("ix_field_values_field_num")
        batch_op.drop_index(batch_op.f("ix_field_values_field_id"))
        batch_op.create_index(
            "ix_field_values_field_text", ["field_id", "text_key", "record_id"], unique=False
        )
        batch_op.create_index(
            "ix_field_values_field_num", ["field_id", "num_key", "record_id"], unique=False
        )

    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_records_workspace_folder_updated",
            ["workspace_id", "folder_id", "updated_at"],
            unique=False,
        )

    if op.get_bind().dialect.name == "postgresql":
        for name, columns in STATISTICS.items():
            op.execute(f"CREATE STATISTICS {name} (mcv) ON {columns} FROM field_values")


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "postgresql":
        for name in STATISTICS:
            op.execute(f"DROP STATISTICS IF EXISTS {name}")

    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_index("ix_records_workspace_folder_updated")

    with op.batch_alter_table("field_values", schema=None) as batch_op:
        batch_op.drop_index("ix_field_values_field_num")
        batch_op.drop_index("ix_field_values_field_text")
        batch_op.create_index(batch_op.f("ix_field_values_field_id"), ["field_id"], unique=False)
        batch_op.create_index("ix_field_values_field_num", ["field_id", "num_key"], unique=False)
        batch_op.create_index("ix_field_values_field_text", ["field_id", "text_key"], unique=False)
