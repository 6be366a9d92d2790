"""WhatsApp delivery: per-item delivery state, unconfirmed sends, status inbox, suppressions.

- `task_items` gains the send's dispatch mark (`dispatched_at`: committed before the request
  leaves, so a retried page knows the request may have been accepted), the delivery state from
  Meta's status webhooks (`delivery`: 1 accepted, 2 failed, 3 delivered, 4 read; a higher value
  never gives way to a lower one, so duplicates and late statuses change nothing), the
  provider's code of a failed delivery, the time of each state, and how often an unconfirmed
  send was re-sent. Status `unconfirmed`: the request left and no answer came back.
- `long_running_tasks` gains delivery counters (items by delivery state), the number of sends
  unconfirmed right now, and of sends re-sent under the `at_least_once` policy.
- `broadcasts` records the sender number it sends from (status webhooks must come from it) and
  its policy for unconfirmed sends.
- `wa_status_inbox`: statuses of wamids not known yet (or never), kept for a retention period.
- `wa_webhook_health`: per sender number, the newest dispatch whose status has arrived: proof
  that the webhook pipeline delivers statuses of sends made after a given moment.
- `wa_suppressions`: recipients a business must not message (STOP, 131050), or not before a
  time (131049: no resend within 24 hours).

Revision ID: 0009_whatsapp_delivery
Revises: 0008_audiences
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_whatsapp_delivery"
down_revision: str | None = "0008_audiences"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_now = sa.text("now()")

TASK_LEDGER = """
CREATE VIEW task_ledger AS
SELECT task_id, item_key, seq, label, status, error_code, error_message, provider_ref,
       attempts, updated_at, delivery, delivery_code, accepted_at, delivered_at, read_at,
       failed_at, resends
FROM task_items
UNION ALL
SELECT p.task_id, d.receipt_id::text, p.first_seq + d.ord::int, NULL, 'succeeded', NULL, NULL,
       NULL, 1, p.settled_at, NULL, NULL, NULL, NULL, NULL, NULL, 0
FROM receipt_delete_pages AS p
CROSS JOIN LATERAL unnest(p.deleted_ids) WITH ORDINALITY AS d(receipt_id, ord)
"""

OLD_TASK_LEDGER = """
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

_STATUSES = "'sending', 'unconfirmed', 'succeeded', 'failed', 'skipped', 'cancelled'"
_OLD_STATUSES = "'sending', 'succeeded', 'failed', 'skipped', 'cancelled'"


def upgrade() -> None:
    op.execute("DROP VIEW task_ledger")
    op.drop_constraint(op.f("ck_task_items_status"), "task_items", type_="check")
    op.create_check_constraint("status", "task_items", f"status IN ({_STATUSES})")
    op.add_column("task_items", sa.Column("dispatched_at", sa.DateTime(timezone=True)))
    # Which attempt marked it: an attempt whose mark's answer was lost knows its own mark.
    op.add_column("task_items", sa.Column("dispatched_by", sa.String(40)))
    op.add_column("task_items", sa.Column("delivery", sa.SmallInteger()))
    op.add_column("task_items", sa.Column("delivery_code", sa.String(100)))
    op.add_column("task_items", sa.Column("accepted_at", sa.DateTime(timezone=True)))
    op.add_column("task_items", sa.Column("delivered_at", sa.DateTime(timezone=True)))
    op.add_column("task_items", sa.Column("read_at", sa.DateTime(timezone=True)))
    op.add_column("task_items", sa.Column("failed_at", sa.DateTime(timezone=True)))
    op.add_column(
        "task_items", sa.Column("resends", sa.Integer(), server_default="0", nullable=False)
    )
    # Statuses without callback data are matched by wamid.
    op.create_index(
        "ix_task_items_provider_ref",
        "task_items",
        ["provider_ref"],
        postgresql_where=sa.text("provider_ref IS NOT NULL"),
    )
    op.execute(TASK_LEDGER)

    for name in ("accepted", "delivered", "read", "failed"):
        op.add_column(
            "long_running_tasks",
            sa.Column(f"delivery_{name}", sa.Integer(), server_default="0", nullable=False),
        )
    op.add_column(
        "long_running_tasks",
        sa.Column("unconfirmed_count", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "long_running_tasks",
        sa.Column("resent_count", sa.Integer(), server_default="0", nullable=False),
    )

    op.add_column("broadcasts", sa.Column("sender_id", sa.String(64)))
    op.add_column(
        "broadcasts",
        sa.Column(
            "unconfirmed_policy", sa.String(20), server_default="at_most_once", nullable=False
        ),
    )
    op.create_check_constraint(
        "unconfirmed_policy",
        "broadcasts",
        "unconfirmed_policy IN ('at_most_once', 'at_least_once')",
    )
    # Broadcasts sent before this revision sent from their business's number.
    op.execute(
        "UPDATE broadcasts AS b SET sender_id = z.whatsapp_phone_number_id"
        " FROM businesses AS z WHERE z.id = b.business_id"
    )

    op.create_table(
        "wa_status_inbox",
        sa.Column("wamid", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("phone_number_id", sa.String(64), nullable=False),
        sa.Column("callback", sa.String(512)),
        sa.Column("code", sa.String(100)),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
    )
    op.create_index("ix_wa_status_inbox_received_at", "wa_status_inbox", ["received_at"])

    op.create_table(
        "wa_webhook_health",
        sa.Column("sender_id", sa.String(64), primary_key=True),
        sa.Column("newest_dispatch_with_status", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status_at", sa.DateTime(timezone=True), nullable=False),
    )

    op.create_table(
        "wa_suppressions",
        sa.Column(
            "business_id",
            sa.BigInteger(),
            sa.ForeignKey("businesses.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("phone", sa.String(64), primary_key=True),
        # opted_out (a STOP reply, or 131050) or marketing_limit (131049, until expires_at).
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("wa_suppressions")
    op.drop_table("wa_webhook_health")
    op.drop_index("ix_wa_status_inbox_received_at", table_name="wa_status_inbox")
    op.drop_table("wa_status_inbox")
    op.drop_constraint(op.f("ck_broadcasts_unconfirmed_policy"), "broadcasts", type_="check")
    op.drop_column("broadcasts", "unconfirmed_policy")
    op.drop_column("broadcasts", "sender_id")
    for name in ("resent_count", "unconfirmed_count"):
        op.drop_column("long_running_tasks", name)
    for name in ("accepted", "delivered", "read", "failed"):
        op.drop_column("long_running_tasks", f"delivery_{name}")
    op.execute("DROP VIEW task_ledger")
    op.drop_index("ix_task_items_provider_ref", table_name="task_items")
    for name in (
        "resends",
        "failed_at",
        "read_at",
        "delivered_at",
        "accepted_at",
        "delivery_code",
        "delivery",
        "dispatched_by",
        "dispatched_at",
    ):
        op.drop_column("task_items", name)
    # Items left unconfirmed have no older status; they were claimed and maybe sent.
    op.execute("UPDATE task_items SET status = 'sending' WHERE status = 'unconfirmed'")
    op.drop_constraint(op.f("ck_task_items_status"), "task_items", type_="check")
    op.create_check_constraint("status", "task_items", f"status IN ({_OLD_STATUSES})")
    op.execute(OLD_TASK_LEDGER)
