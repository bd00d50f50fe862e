"""Relations are looked up by target and field: the index on their target covers the field

Revision ID: 0012_relations_by_target
Revises: 0011_stats_from_record_stats
Create Date: 2026-11-24 12:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0012_relations_by_target"
down_revision = "0011_stats_from_record_stats"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # Automatic linking asks for the deals pointing at a company; every contact of the
    # company points at it too, and without the field in the index each of those rows is
    # read from the table only to be dropped.
    with op.batch_alter_table("record_relations") as batch_op:
        batch_op.drop_index("ix_record_relations_to")
        batch_op.create_index("ix_record_relations_to", ["to_record_id", "field_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("record_relations") as batch_op:
        batch_op.drop_index("ix_record_relations_to")
        batch_op.create_index("ix_record_relations_to", ["to_record_id"], unique=False)
