"""Ops: per-business notification settings, delivered notifications, and the cleanup index.

Revision ID: 0003_ops
Revises: 0002_receipts
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_ops"
down_revision: str | None = "0002_receipts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_now = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "notification_settings",
        sa.Column(
            "business_id",
            sa.BigInteger(),
            sa.ForeignKey("businesses.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("webhook_url", sa.String(2000)),
        sa.Column("webhook_secret_encrypted", sa.Text()),
        sa.Column("email_to", sa.String(320)),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
    )
    op.create_table(
        "notification_deliveries",
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("long_running_tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("channel", sa.String(20), primary_key=True),
        # delivered, or rejected (a permanent refusal: retrying cannot help, so do not).
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("delivered_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
    )
    # The daily cleanup looks for terminal tasks by age; a partial index keeps that cheap.
    op.create_index(
        "ix_long_running_tasks_terminal_age",
        "long_running_tasks",
        [sa.text("coalesce(completed_at, created_at)")],
        postgresql_where=sa.text("status IN ('completed', 'cancelled', 'failed')"),
    )


def downgrade() -> None:
    op.drop_index("ix_long_running_tasks_terminal_age", table_name="long_running_tasks")
    op.drop_table("notification_deliveries")
    op.drop_table("notification_settings")
