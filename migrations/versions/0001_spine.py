"""Businesses, long-running tasks, broadcasts with recipients, and the per-item ledger.

Revision ID: 0001_spine
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_spine"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_now = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "businesses",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("whatsapp_phone_number_id", sa.String(64)),
        # WhatsApp's per-number throughput; sends are paced to it across all workers.
        sa.Column("whatsapp_messages_per_s", sa.Float()),
        # WhatsApp's messaging tier: unique recipients per rolling 24 h (NULL: unlimited).
        sa.Column("whatsapp_daily_limit", sa.Integer()),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
    )
    op.create_table(
        "long_running_tasks",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False),
        sa.Column("task_type", sa.String(50), nullable=False),
        sa.Column("status", sa.String(20), server_default="running", nullable=False),
        sa.Column("total_items", sa.Integer(), server_default="0", nullable=False),
        sa.Column("processed_items", sa.Integer(), server_default="0", nullable=False),
        sa.Column("success_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("skipped_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cancelled_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("cancel_reason", sa.Text()),
        sa.Column("error_message", sa.Text()),
        sa.Column("status_reason", sa.Text()),
        sa.Column("workflow_id", sa.String(200)),
        sa.Column("priority", sa.String(10), server_default="normal", nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True)),
        sa.Column("version", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(
            "task_type IN ('broadcast', 'receipt_delete', 'receipt_sync')", name="task_type"
        ),
        sa.CheckConstraint(
            "status IN ('scheduled', 'running', 'completed', 'cancelled', 'failed')",
            name="status",
        ),
        sa.CheckConstraint("processed_items = success_count + failed_count", name="processed_sum"),
    )
    op.create_index(
        "ix_long_running_tasks_business_newest",
        "long_running_tasks",
        ["business_id", sa.text("id DESC")],
    )
    op.create_index(
        "ix_long_running_tasks_business_status",
        "long_running_tasks",
        ["business_id", "status", sa.text("id DESC")],
    )
    op.create_index(
        "ix_long_running_tasks_business_type",
        "long_running_tasks",
        ["business_id", "task_type", sa.text("id DESC")],
    )
    op.create_index("ix_long_running_tasks_status", "long_running_tasks", ["status"])

    op.create_table(
        "broadcasts",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False),
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("long_running_tasks.id", ondelete="SET NULL"),
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("message_text", sa.Text()),
        sa.Column("template_name", sa.String(512)),
        sa.Column("template_language", sa.String(20)),
        sa.Column("template_params", postgresql.JSONB()),
        sa.Column("recipient_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
    )
    op.create_index("ix_broadcasts_business_id", "broadcasts", ["business_id"])
    op.create_index("ix_broadcasts_task_id", "broadcasts", ["task_id"])

    op.create_table(
        "broadcast_recipients",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "broadcast_id",
            sa.BigInteger(),
            sa.ForeignKey("broadcasts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(64), nullable=False),
        sa.Column("invalid_reason", sa.String(200)),
        sa.UniqueConstraint("broadcast_id", "seq", name="uq_broadcast_recipients_seq"),
    )

    op.create_table(
        "task_items",
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("long_running_tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("item_key", sa.String(200), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error_code", sa.String(100)),
        sa.Column("error_message", sa.Text()),
        sa.Column("provider_ref", sa.String(200)),
        sa.Column("attempts", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.CheckConstraint(
            "status IN ('sending', 'succeeded', 'failed', 'skipped', 'cancelled')", name="status"
        ),
    )
    op.create_table(
        "sender_pacing",
        sa.Column("sender_id", sa.String(64), primary_key=True),
        sa.Column("next_slot_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sender_contacts",
        sa.Column("sender_id", sa.String(64), primary_key=True),
        sa.Column("phone", sa.String(64), primary_key=True),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_sender_contacts_sender_last_sent", "sender_contacts", ["sender_id", "last_sent_at"]
    )
    op.create_index("ix_task_items_task_status_seq", "task_items", ["task_id", "status", "seq"])
    op.create_index("ix_task_items_task_seq", "task_items", ["task_id", "seq"])


def downgrade() -> None:
    op.drop_table("sender_contacts")
    op.drop_table("sender_pacing")
    op.drop_table("task_items")
    op.drop_table("broadcast_recipients")
    op.drop_table("broadcasts")
    op.drop_table("long_running_tasks")
    op.drop_table("businesses")
