"""A task's priority is checked like its status: one of `longtasks.domain.Priority`.

The list is written out as of this migration; tests/db/test_enums_match_database.py holds the
migrated database to `longtasks.domain`, so a later value needs its own migration that
replaces the constraint.

Revision ID: 0006_priority_check
Revises: 0005_task_types
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_priority_check"
down_revision: str | None = "0005_task_types"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_check_constraint(
        op.f("ck_long_running_tasks_priority"),
        "long_running_tasks",
        "priority IN ('high', 'normal', 'low')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_long_running_tasks_priority"), "long_running_tasks", type_="check")
