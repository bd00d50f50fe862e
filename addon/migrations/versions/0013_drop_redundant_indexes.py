"""Two indexes another index already covers by its leading columns are dropped

Revision ID: 0013_drop_redundant_indexes
Revises: 0012_relations_by_target
Create Date: 2026-11-24 12:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0013_drop_redundant_indexes"
down_revision = "0012_relations_by_target"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # Lookups by conversation use the unique (conversation_id, record_id) index, and by
    # workspace the (workspace_id, last_contacted) one: the single-column copies only made
    # every link and stats row written (mailbox sync writes tens of thousands) cost more.
    with op.batch_alter_table("thread_links") as batch_op:
        batch_op.drop_index("ix_thread_links_conversation_id")
    with op.batch_alter_table("record_stats") as batch_op:
        batch_op.drop_index("ix_record_stats_workspace")


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("record_stats") as batch_op:
        batch_op.create_index("ix_record_stats_workspace", ["workspace_id"], unique=False)
    with op.batch_alter_table("thread_links") as batch_op:
        batch_op.create_index("ix_thread_links_conversation_id", ["conversation_id"], unique=False)
