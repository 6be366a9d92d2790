"""Controls: pause and resume, approval before a large send, retries of failed items, the ETA.

- Task statuses `awaiting_approval`, `paused` and `expired` (terminal).
- On a task: who created, paused, approved or rejected it; the pause flag pages obey; the
  approval deadline; the parent a retry came from; two rate marks behind `eta_seconds`; its
  last provider answers for the circuit breaker.
- `business_policies`: approval threshold, daily send cap, auto-pause thresholds.
- `business_send_days`: messages reserved per business and UTC day (the cap across tasks).
- `broadcasts.duplicates_dropped` for the approval preview; notification channels get room for
  pause notifications (`webhook:pause-3`).

Revision ID: 0007_controls
Revises: 0006_priority_check
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007_controls"
down_revision: str | None = "0006_priority_check"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_now = sa.text("now()")
TASKS = "long_running_tasks"
# Frozen here as of this revision (a migration must not change when the enum does).
OLD_STATUSES = "('scheduled', 'running', 'completed', 'cancelled', 'failed')"
NEW_STATUSES = (
    "('awaiting_approval', 'scheduled', 'running', 'paused', 'completed', 'cancelled', 'failed',"
    " 'expired')"
)
OLD_TERMINAL = "('completed', 'cancelled', 'failed')"
NEW_TERMINAL = "('cancelled', 'completed', 'expired', 'failed')"
AGE_INDEX = "ix_long_running_tasks_terminal_age"

_TASK_COLUMNS: list[tuple[str, sa.types.TypeEngine[Any]]] = [
    ("created_by", sa.String(200)),
    ("pause_requested", sa.Boolean()),
    ("paused_by", sa.String(200)),
    ("paused_at", sa.DateTime(timezone=True)),
    ("auto_pauses", sa.Integer()),
    ("approval_expires_at", sa.DateTime(timezone=True)),
    ("approved_by", sa.String(200)),
    ("approved_at", sa.DateTime(timezone=True)),
    ("rejected_by", sa.String(200)),
    ("rate_prev_at", sa.DateTime(timezone=True)),
    ("rate_prev_items", sa.Integer()),
    ("rate_mark_at", sa.DateTime(timezone=True)),
    ("rate_mark_items", sa.Integer()),
    ("recent_outcomes", sa.Text()),
]
_DEFAULTS = {"pause_requested": sa.text("false"), "auto_pauses": sa.text("0")}


def _status_check(statuses: str) -> None:
    op.drop_constraint(op.f("ck_long_running_tasks_status"), TASKS, type_="check")
    op.create_check_constraint("status", TASKS, f"status IN {statuses}")


def _age_index(terminal: str) -> None:
    op.drop_index(AGE_INDEX, table_name=TASKS)
    op.create_index(
        AGE_INDEX,
        TASKS,
        [sa.text("coalesce(completed_at, created_at)")],
        postgresql_where=sa.text(f"status IN {terminal}"),
    )


def upgrade() -> None:
    _status_check(NEW_STATUSES)
    _age_index(NEW_TERMINAL)
    for name, type_ in _TASK_COLUMNS:
        default = _DEFAULTS.get(name)
        op.add_column(
            TASKS,
            sa.Column(name, type_, server_default=default, nullable=default is None),
        )
    op.add_column(
        TASKS,
        sa.Column(
            "parent_task_id",
            sa.BigInteger(),
            sa.ForeignKey(
                f"{TASKS}.id",
                ondelete="SET NULL",
                name="fk_long_running_tasks_parent_task_id_long_running_tasks",
            ),
        ),
    )
    op.create_index(
        "ix_long_running_tasks_parent_task_id",
        TASKS,
        ["parent_task_id"],
        postgresql_where=sa.text("parent_task_id IS NOT NULL"),
    )
    op.add_column(
        "broadcasts",
        sa.Column("duplicates_dropped", sa.Integer(), server_default="0", nullable=False),
    )
    op.alter_column("notification_deliveries", "channel", type_=sa.String(40))
    op.create_table(
        "business_policies",
        sa.Column(
            "business_id",
            sa.BigInteger(),
            sa.ForeignKey("businesses.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("approval_required_above", sa.Integer()),
        sa.Column("daily_send_cap", sa.Integer()),
        sa.Column("auto_pause_failure_share", sa.Float()),
        sa.Column("auto_pause_window", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(200)),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.CheckConstraint("approval_required_above >= 0", name="approval_required_above"),
        sa.CheckConstraint("daily_send_cap >= 0", name="daily_send_cap"),
        sa.CheckConstraint(
            "auto_pause_failure_share > 0 AND auto_pause_failure_share <= 1",
            name="auto_pause_failure_share",
        ),
        sa.CheckConstraint("auto_pause_window > 0", name="auto_pause_window"),
    )
    op.create_table(
        "business_send_days",
        sa.Column(
            "business_id",
            sa.BigInteger(),
            sa.ForeignKey("businesses.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("reserved", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_table("business_send_days")
    op.drop_table("business_policies")
    # Rows in statuses the old schema does not know become what they were closest to.
    op.execute(
        "UPDATE long_running_tasks SET status = CASE status"
        " WHEN 'expired' THEN 'cancelled' WHEN 'awaiting_approval' THEN 'scheduled'"
        " WHEN 'paused' THEN 'running' ELSE status END"
        " WHERE status IN ('expired', 'awaiting_approval', 'paused')"
    )
    op.execute("DELETE FROM notification_deliveries WHERE length(channel) > 20")
    op.alter_column("notification_deliveries", "channel", type_=sa.String(20))
    op.drop_column("broadcasts", "duplicates_dropped")
    op.drop_index("ix_long_running_tasks_parent_task_id", table_name=TASKS)
    op.drop_column(TASKS, "parent_task_id")
    for name, _ in reversed(_TASK_COLUMNS):
        op.drop_column(TASKS, name)
    _age_index(OLD_TERMINAL)
    _status_check(OLD_STATUSES)
