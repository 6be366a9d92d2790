"""Items carry their task's business: the wall on the hottest table is a comparison.

0013 walled `task_items` through the item's task (`EXISTS (SELECT 1 FROM long_running_tasks t
WHERE t.id = task_id)`, under the task table's own policy): every statement on items planned
that subquery, and every row written checked it again, an index probe into the task table
(WITH CHECK). A broadcast writes each item's row three to five times (claim, dispatch mark,
settle, delivery statuses), in statements of a few to a few hundred rows, and the bench's
side-by-side pair measured the worker's Postgres CPU at 0.226 ms an item under the policies
against 0.183 ms as the owner (planning of a 20-row dispatch mark: 0.175 ms vs 0.069 ms).

Here each item row holds its business. A composite foreign key (business_id, task_id) ->
long_running_tasks (business_id, id) keeps it its task's business (an item can never sit in
another business's task, where it could take a key that task's own claim then skips), and the
policy is the one the tables with a business column have: business_id = the acting business
(planning the same statement: 0.099 ms). The column is filled from the tasks; the downgrade
puts 0013's policy and foreign key back.

Revision ID: 0015_task_items_business
Revises: 0014_task_ledger_pages
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015_task_items_business"
down_revision: str | None = "0014_task_ledger_pages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWN_ROW = "business_id = (SELECT longtasks_business())"
BY_TASK = "EXISTS (SELECT 1 FROM long_running_tasks t WHERE t.id = task_id)"  # 0013's


def upgrade() -> None:
    op.create_unique_constraint(
        "uq_long_running_tasks_business_id", "long_running_tasks", ["business_id", "id"]
    )
    op.execute("ALTER TABLE task_items ADD COLUMN business_id bigint")
    op.execute(
        "UPDATE task_items AS ti SET business_id = t.business_id"
        " FROM long_running_tasks AS t WHERE t.id = ti.task_id"
    )
    op.execute("ALTER TABLE task_items ALTER COLUMN business_id SET NOT NULL")
    op.drop_constraint("fk_task_items_task_id_long_running_tasks", "task_items")
    op.create_foreign_key(
        "fk_task_items_business_id_long_running_tasks",
        "task_items",
        "long_running_tasks",
        ["business_id", "task_id"],
        ["business_id", "id"],
        ondelete="CASCADE",
    )
    op.execute("DROP POLICY tenant ON task_items")
    op.execute(f"CREATE POLICY tenant ON task_items USING ({OWN_ROW}) WITH CHECK ({OWN_ROW})")


def downgrade() -> None:
    op.execute("DROP POLICY tenant ON task_items")
    op.execute(f"CREATE POLICY tenant ON task_items USING ({BY_TASK}) WITH CHECK ({BY_TASK})")
    op.drop_constraint("fk_task_items_business_id_long_running_tasks", "task_items")
    op.create_foreign_key(
        "fk_task_items_task_id_long_running_tasks",
        "task_items",
        "long_running_tasks",
        ["task_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.execute("ALTER TABLE task_items DROP COLUMN business_id")
    op.drop_constraint("uq_long_running_tasks_business_id", "long_running_tasks")
