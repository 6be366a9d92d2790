"""A ledger page reads its page, not the task's whole ledger.

`task_ledger` is a UNION ALL of `task_items` and the receipts a delete by filter recorded.
Its second branch's columns had other types than the first's (`text` for a receipt id where
`item_key` is `varchar`, untyped NULLs), so Postgres kept the union as a subquery it could not
look into: every `ORDER BY seq, item_key LIMIT n` page of the API's item list and CSV export
sorted all of the task's rows (10,000 items: 4.4 ms a page; the export of a million items
re-sorted what was left of them for each of its 500 pages). With each column cast to the first
branch's exact type the union is flattened, and a page is an index walk over
`ix_task_items_task_seq` merged with the (small, sorted) receipt branch: 0.4 ms, as the owner
and under row-level security alike. Same columns, same types, same rows; grants and
`security_invoker` (0013) kept.

Revision ID: 0014_task_ledger_pages
Revises: 0013_row_level_security
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014_task_ledger_pages"
down_revision: str | None = "0013_row_level_security"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ITEMS = """
SELECT task_id, item_key, seq, label, status, error_code, error_message, provider_ref,
       attempts, updated_at, delivery, delivery_code, accepted_at, delivered_at, read_at,
       failed_at, resends
FROM task_items
UNION ALL
"""

FLAT = (
    "CREATE OR REPLACE VIEW task_ledger WITH (security_invoker = true) AS"
    + _ITEMS
    + """
SELECT p.task_id, CAST(d.receipt_id AS varchar), p.first_seq + CAST(d.ord AS integer),
       CAST(NULL AS varchar), CAST('succeeded' AS varchar), CAST(NULL AS varchar),
       CAST(NULL AS text), CAST(NULL AS varchar), 1, p.settled_at, CAST(NULL AS smallint),
       CAST(NULL AS varchar), CAST(NULL AS timestamptz), CAST(NULL AS timestamptz),
       CAST(NULL AS timestamptz), CAST(NULL AS timestamptz), 0
FROM receipt_delete_pages AS p
CROSS JOIN LATERAL unnest(p.deleted_ids) WITH ORDINALITY AS d(receipt_id, ord)
"""
)

# 0009's view, as 0013 left it.
NESTED = (
    "CREATE OR REPLACE VIEW task_ledger WITH (security_invoker = true) AS"
    + _ITEMS
    + """
SELECT p.task_id, d.receipt_id::text, p.first_seq + d.ord::int, NULL, 'succeeded', NULL, NULL,
       NULL, 1, p.settled_at, NULL, NULL, NULL, NULL, NULL, NULL, 0
FROM receipt_delete_pages AS p
CROSS JOIN LATERAL unnest(p.deleted_ids) WITH ORDINALITY AS d(receipt_id, ord)
"""
)


def upgrade() -> None:
    op.execute(FLAT)


def downgrade() -> None:
    op.execute(NESTED)
