"""Stats fields are read from record_stats: their copies in field_values go, and the
moments views filter and sort on most get indexes

Revision ID: 0011_stats_from_record_stats
Revises: 0010_admin_audit
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0011_stats_from_record_stats"
down_revision = "0010_admin_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # The projected copies: record_stats holds the same numbers, and nothing reads these.
    op.execute(
        "DELETE FROM field_values WHERE field_id IN "
        "(SELECT id FROM field_defs WHERE type = 'stats')"
    )
    with op.batch_alter_table("record_stats") as batch_op:
        batch_op.create_index(
            "ix_record_stats_last_contacted", ["workspace_id", "last_contacted"], unique=False
        )
        batch_op.create_index(
            "ix_record_stats_last_received", ["workspace_id", "last_received"], unique=False
        )


def downgrade() -> None:
    """Revert this revision (the older code's `flask --app addon crm recompute-stats`
    then refills the field_values copies it reads)."""
    with op.batch_alter_table("record_stats") as batch_op:
        batch_op.drop_index("ix_record_stats_last_received")
        batch_op.drop_index("ix_record_stats_last_contacted")
