"""Task types become rows of a lookup table that tasks reference, instead of a CHECK list.

A deployment (or a test) can register task types of its own (`task_types/`); the registry
adds its names here when a worker or an API starts (`INSERT ... ON CONFLICT DO NOTHING`).
Integrity for unknown types is unchanged: a task whose type is not a row is refused by the
foreign key, as it was by the CHECK. The built-in types are written here, so a database is
complete before any process starts.

Revision ID: 0005_task_types
Revises: 0004_filter_delete_pages
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_task_types"
down_revision: str | None = "0004_filter_delete_pages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out, not imported: a migration states the schema of its day. A test compares the
# migrated database with `longtasks.domain.TaskType`.
BUILT_IN = ("broadcast", "receipt_delete", "receipt_sync")


def upgrade() -> None:
    task_types = op.create_table(
        "task_types",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.bulk_insert(task_types, [{"name": name} for name in BUILT_IN])
    op.drop_constraint(op.f("ck_long_running_tasks_task_type"), "long_running_tasks", type_="check")
    op.create_foreign_key(
        op.f("fk_long_running_tasks_task_type_task_types"),
        "long_running_tasks",
        "task_types",
        ["task_type"],
        ["name"],
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_long_running_tasks_task_type_task_types"),
        "long_running_tasks",
        type_="foreignkey",
    )
    # NOT VALID: rows of types registered since stay readable; new rows are checked again.
    types = ", ".join(f"'{name}'" for name in BUILT_IN)
    op.execute(
        "ALTER TABLE long_running_tasks ADD CONSTRAINT ck_long_running_tasks_task_type"
        f" CHECK (task_type IN ({types})) NOT VALID"
    )
    op.drop_table("task_types")
