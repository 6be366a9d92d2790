"""Receipts, the per-business Gmail connection, and the staging tables of the two receipt tasks.

Revision ID: 0002_receipts
Revises: 0001_spine
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_receipts"
down_revision: str | None = "0001_spine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_now = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "receipts",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("gmail_message_id", sa.String(64)),
        # The sync task that stored it (kept when the task row is deleted: SET NULL).
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("long_running_tasks.id", ondelete="SET NULL"),
        ),
        sa.Column("vendor", sa.String(200), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("issued_at", sa.Date(), nullable=False),
        sa.Column("subject", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "attachments",
            postgresql.JSONB(),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.CheckConstraint("source IN ('gmail', 'manual', 'upload', 'email')", name="source"),
        sa.CheckConstraint(
            "source <> 'gmail' OR gmail_message_id IS NOT NULL", name="gmail_has_message_id"
        ),
        # A sync never stores one message twice (NULLs, i.e. non-Gmail receipts, never clash).
        sa.UniqueConstraint(
            "business_id", "gmail_message_id", name="uq_receipts_business_gmail_message"
        ),
    )
    op.create_index("ix_receipts_business_newest", "receipts", ["business_id", sa.text("id DESC")])
    op.create_index("ix_receipts_business_issued", "receipts", ["business_id", "issued_at"])
    op.create_index("ix_receipts_task_id", "receipts", ["task_id"])

    op.create_table(
        "gmail_connections",
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        # Fernet tokens (settings.encryption_key); never stored in the clear.
        sa.Column("access_token_enc", sa.Text(), nullable=False),
        sa.Column("refresh_token_enc", sa.Text(), nullable=False),
        # The mailbox's historyId as of the last completed sync; incremental syncs start here.
        sa.Column("history_id", sa.BigInteger()),
        sa.Column("last_synced_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
    )

    op.create_table(
        "receipt_sync_runs",
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("long_running_tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("business_id", sa.BigInteger(), sa.ForeignKey("businesses.id"), nullable=False),
        sa.Column("query", sa.Text()),
        sa.Column("since", sa.Date()),
        # Decided by the sync's begin activity: full or incremental (from start_history_id).
        sa.Column("mode", sa.String(20)),
        sa.Column("start_history_id", sa.BigInteger()),
        # The mailbox's historyId to store on the connection once the sync completes.
        sa.Column("new_history_id", sa.BigInteger()),
        # Set for syncs started by the Schedule: the kick's workflow run, so a retried kick
        # finds its task instead of making a second one.
        sa.Column("schedule_key", sa.String(200), unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
    )

    op.create_table(
        "gmail_sync_messages",
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("long_running_tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.UniqueConstraint("task_id", "message_id", name="uq_gmail_sync_messages_message"),
    )

    op.create_table(
        "task_receipt_selection",
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("long_running_tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer(), primary_key=True),
        # The id as the caller gave it: not necessarily this business's, or any receipt at all.
        sa.Column("receipt_id", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("task_receipt_selection")
    op.drop_table("gmail_sync_messages")
    op.drop_table("receipt_sync_runs")
    op.drop_table("gmail_connections")
    op.drop_index("ix_receipts_task_id", table_name="receipts")
    op.drop_index("ix_receipts_business_issued", table_name="receipts")
    op.drop_index("ix_receipts_business_newest", table_name="receipts")
    op.drop_table("receipts")
