"""A delete by filter is cut into receipt-id ranges at intake and records each page as one row.

`receipt_delete_pages` holds, per page of a filter delete, the id range and filter it deletes,
how many receipts matched there when the task was asked (`expected`), and once it has run, the
ids it deleted. A page is one row instead of one ledger row per receipt: a receipt deleted by a
filter has nothing to report but "deleted", and writing a row for each cost ~20x the DELETE.

`task_ledger` is every item outcome a task has: the per-item rows of `task_items`, and the
receipts of the filter-delete pages, numbered after their page's first seq.

Revision ID: 0004_filter_delete_pages
Revises: 0003_ops
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_filter_delete_pages"
down_revision: str | None = "0003_ops"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TASK_LEDGER = """
CREATE VIEW task_ledger AS
SELECT task_id, item_key, seq, label, status, error_code, error_message, provider_ref,
       attempts, updated_at
FROM task_items
UNION ALL
SELECT p.task_id, d.receipt_id::text, p.first_seq + d.ord::int, NULL, 'succeeded', NULL, NULL,
       NULL, 1, p.settled_at
FROM receipt_delete_pages AS p
CROSS JOIN LATERAL unnest(p.deleted_ids) WITH ORDINALITY AS d(receipt_id, ord)
"""


def upgrade() -> None:
    op.create_table(
        "receipt_delete_pages",
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("long_running_tasks.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("page", sa.Integer(), primary_key=True),
        # Items of this page are numbered first_seq + 1 .. first_seq + expected.
        sa.Column("first_seq", sa.Integer(), nullable=False),
        # The page deletes the business's receipts with after_id < id <= up_to_id that match
        # the filter (copied on every page so each page is self-contained).
        sa.Column("business_id", sa.BigInteger(), nullable=False),
        sa.Column("after_id", sa.BigInteger(), nullable=False),
        sa.Column("up_to_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(20)),
        sa.Column("issued_after", sa.Date()),
        sa.Column("issued_before", sa.Date()),
        sa.Column("expected", sa.Integer(), nullable=False),
        # Set once, by the transaction that deleted the page's receipts.
        sa.Column("deleted", sa.Integer()),
        sa.Column("deleted_ids", sa.ARRAY(sa.BigInteger())),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("settled_at", sa.DateTime(timezone=True)),
    )
    # Stored as is, not compressed: pglz on a 25,000-id array costs more than the DELETE.
    op.execute("ALTER TABLE receipt_delete_pages ALTER COLUMN deleted_ids SET STORAGE EXTERNAL")
    op.execute(TASK_LEDGER)


def downgrade() -> None:
    op.execute("DROP VIEW task_ledger")
    op.drop_table("receipt_delete_pages")
