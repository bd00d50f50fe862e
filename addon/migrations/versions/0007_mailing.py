"""Mail merge: templates, campaigns, campaign recipients (the send queue), suppressions, send log

Revision ID: 0007_mailing
Revises: 0005_google_grants
Create Date: 2026-11-24 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_mailing"
down_revision = "0005_google_grants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "mail_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("owner_member_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("body_text", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_member_id"],
            ["members.id"],
            name=op.f("fk_mail_templates_owner_member_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_mail_templates_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_templates")),
    )
    with op.batch_alter_table("mail_templates", schema=None) as batch_op:
        batch_op.create_index("ix_mail_templates_workspace", ["workspace_id", "name"], unique=False)

    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("sender_member_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=False),
        sa.Column("view_id", sa.Integer(), nullable=True),
        sa.Column("folder_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_reason", sa.String(length=500), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cc", sa.Text(), nullable=False),
        sa.Column("bcc", sa.Text(), nullable=False),
        sa.Column("human_gaps", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled', "
            "'failed')",
            name=op.f("ck_campaigns_status"),
        ),
        sa.ForeignKeyConstraint(
            ["folder_id"], ["folders.id"], name=op.f("fk_campaigns_folder_id_folders")
        ),
        sa.ForeignKeyConstraint(
            ["sender_member_id"], ["members.id"], name=op.f("fk_campaigns_sender_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["mail_templates.id"],
            name=op.f("fk_campaigns_template_id_mail_templates"),
        ),
        sa.ForeignKeyConstraint(
            ["view_id"],
            ["saved_views.id"],
            name=op.f("fk_campaigns_view_id_saved_views"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspaces.id"], name=op.f("fk_campaigns_workspace_id_workspaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index("ix_campaigns_status", ["status"], unique=False)
        batch_op.create_index(
            "ix_campaigns_workspace", ["workspace_id", "created_at"], unique=False
        )

    op.create_table(
        "campaign_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("skip_reason", sa.String(length=200), nullable=True),
        sa.Column("fail_reason", sa.String(length=500), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("gmail_message_id", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipients_count", sa.Integer(), nullable=False),
        sa.Column("rendered_subject", sa.String(length=998), nullable=True),
        sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'sending', 'sent', 'failed', 'skipped')",
            name=op.f("ck_campaign_recipients_state"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_recipients_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_campaign_recipients_record_id_records"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_campaign_recipients_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_recipients")),
        sa.UniqueConstraint(
            "campaign_id", "email", name=op.f("uq_campaign_recipients_campaign_id_email")
        ),
        sa.UniqueConstraint("message_id", name=op.f("uq_campaign_recipients_message_id")),
    )
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_campaign_recipients_campaign_state", ["campaign_id", "state"], unique=False
        )
        batch_op.create_index(
            "ix_campaign_recipients_due", ["state", "next_attempt_at"], unique=False
        )
        batch_op.create_index("ix_campaign_recipients_record", ["record_id"], unique=False)

    op.create_table(
        "mail_send_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("sender_member_id", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("message_key", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "source IN ('campaign', 'test', 'outside')", name=op.f("ck_mail_send_log_source")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_mail_send_log_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sender_member_id"],
            ["members.id"],
            name=op.f("fk_mail_send_log_sender_member_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_mail_send_log_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_send_log")),
    )
    with op.batch_alter_table("mail_send_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mail_send_log_sender_time", ["sender_member_id", "sent_at"], unique=False
        )
        batch_op.create_index(
            "ix_mail_send_log_sender_key", ["sender_member_id", "message_key"], unique=False
        )

    op.create_table(
        "mail_suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reason IN ('unsubscribed', 'bounced', 'manual', 'erased')",
            name=op.f("ck_mail_suppressions_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_mail_suppressions_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_mail_suppressions_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_suppressions")),
        sa.UniqueConstraint(
            "workspace_id", "email_hash", name=op.f("uq_mail_suppressions_workspace_id_email_hash")
        ),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("mail_suppressions")
    with op.batch_alter_table("mail_send_log", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_send_log_sender_key")
        batch_op.drop_index("ix_mail_send_log_sender_time")

    op.drop_table("mail_send_log")
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_recipients_record")
        batch_op.drop_index("ix_campaign_recipients_due")
        batch_op.drop_index("ix_campaign_recipients_campaign_state")

    op.drop_table("campaign_recipients")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index("ix_campaigns_workspace")
        batch_op.drop_index("ix_campaigns_status")

    op.drop_table("campaigns")
    with op.batch_alter_table("mail_templates", schema=None) as batch_op:
        batch_op.drop_index("ix_mail_templates_workspace")

    op.drop_table("mail_templates")
