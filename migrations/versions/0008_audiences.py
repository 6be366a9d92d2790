"""Audiences: customer lists uploaded as CSV, imported by a task, sent to by broadcasts.

- `audiences`: one uploaded list; its header's columns (the phone column and the variables a
  template may name), its status (`importing`, `ready`, `failed` with a reason) and counts.
- `audience_upload_chunks`: staging. The API streams the upload into it with COPY, one row per
  chunk of records (the chunk is the import's page); the import's page writes the chunk's
  normalized numbers back into the same row, as arrays, and the finishing step turns the
  chunks into members and deletes them. A row per chunk, not per record: writing a staging
  row for each of a million records would cost more than the import itself.
- `audience_members`: the valid, first-seen, not suppressed rows, numbered 1..N (`seq`) so a
  broadcast's pages are keyset ranges, exactly like `broadcast_recipients`.
- `audience_errors`: every row left out, with its line and reason (an invalid number, a
  duplicate of an earlier line, a suppressed number).
- `broadcasts.audience_id`: a broadcast that sends to an audience instead of its own list;
  `broadcast_recipients.member_seq`: a retry's recipient, as the audience member it is.
- the task type `audience_import`.

Revision ID: 0008_audiences
Revises: 0007_controls
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_audiences"
down_revision: str | None = "0007_controls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_now = sa.text("now()")


def upgrade() -> None:
    op.execute("INSERT INTO task_types (name) VALUES ('audience_import') ON CONFLICT DO NOTHING")
    op.create_table(
        "audiences",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "business_id",
            sa.BigInteger(),
            sa.ForeignKey("businesses.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), server_default="importing", nullable=False),
        sa.Column("failure_reason", sa.Text()),
        # The header, in file order; `phone_column` indexes it. The other columns are the
        # variables, stored per member in that order.
        sa.Column("columns", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("phone_column", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(255)),
        sa.Column("byte_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("row_count", sa.Integer(), server_default="0", nullable=False),
        # Records per staging chunk: the import's page size, fixed when the file was cut.
        sa.Column("chunk_rows", sa.Integer(), nullable=False),
        # Known once the import is done (NULL while importing).
        sa.Column("valid_count", sa.Integer()),
        sa.Column("invalid_count", sa.Integer()),
        sa.Column("duplicate_count", sa.Integer()),
        sa.Column("suppressed_count", sa.Integer()),
        sa.Column(
            "task_id",
            sa.BigInteger(),
            sa.ForeignKey("long_running_tasks.id", ondelete="SET NULL"),
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.Column("ready_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('importing', 'ready', 'failed')", name="status"),
    )
    op.create_index(
        "ix_audiences_business_newest", "audiences", ["business_id", sa.text("id DESC")]
    )
    op.create_index("ix_audiences_task_id", "audiences", ["task_id"])

    op.create_table(
        "audience_upload_chunks",
        sa.Column(
            "audience_id",
            sa.BigInteger(),
            sa.ForeignKey("audiences.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("chunk", sa.Integer(), primary_key=True),
        # The first physical line of each record, and the records (RS between records, US
        # between fields), as uploaded. `records` is cleared once the chunk is normalized.
        sa.Column("lines", sa.ARRAY(sa.Integer()), nullable=False),
        sa.Column("records", sa.Text()),
        # Written once by the import's page, in the transaction that counts the chunk's rows.
        sa.Column("valid_lines", sa.ARRAY(sa.Integer())),
        sa.Column("valid_phones", sa.ARRAY(sa.Text())),
        sa.Column("valid_vars", sa.ARRAY(sa.Text())),
        sa.Column("invalid_count", sa.Integer()),
        sa.Column("normalized_at", sa.DateTime(timezone=True)),
    )
    # Written once and read once: compressing it costs more CPU than the bytes are worth.
    op.execute("ALTER TABLE audience_upload_chunks ALTER COLUMN records SET STORAGE EXTERNAL")

    op.create_table(
        "audience_members",
        sa.Column(
            "audience_id",
            sa.BigInteger(),
            sa.ForeignKey("audiences.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        # The row's variables, in the order of the audience's non-phone columns.
        sa.Column("vars", sa.ARRAY(sa.Text()), nullable=False),
    )

    op.create_table(
        "audience_errors",
        sa.Column(
            "audience_id",
            sa.BigInteger(),
            sa.ForeignKey("audiences.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("line", sa.Integer(), primary_key=True),
        # invalid_phone, missing_phone, too_many_fields, duplicate, suppressed
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        # As uploaded (clipped) for a row left out as invalid; E.164 for a duplicate or a
        # suppressed number.
        sa.Column("phone", sa.String(64), nullable=False),
        sa.Column("duplicate_of", sa.Integer()),
        sa.Column("vars", sa.ARRAY(sa.Text()), nullable=False),
    )

    op.add_column(
        "broadcasts",
        sa.Column(
            "audience_id", sa.BigInteger(), sa.ForeignKey("audiences.id", ondelete="SET NULL")
        ),
    )
    op.create_index("ix_broadcasts_audience_id", "broadcasts", ["audience_id"])
    op.add_column("broadcast_recipients", sa.Column("member_seq", sa.Integer()))


def downgrade() -> None:
    op.drop_column("broadcast_recipients", "member_seq")
    op.drop_index("ix_broadcasts_audience_id", table_name="broadcasts")
    op.drop_column("broadcasts", "audience_id")
    op.drop_table("audience_errors")
    op.drop_table("audience_members")
    op.drop_table("audience_upload_chunks")
    op.drop_index("ix_audiences_task_id", table_name="audiences")
    op.drop_index("ix_audiences_business_newest", table_name="audiences")
    op.drop_table("audiences")
    op.execute("DELETE FROM long_running_tasks WHERE task_type = 'audience_import'")
    op.execute("DELETE FROM task_types WHERE name = 'audience_import'")
