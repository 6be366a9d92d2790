"""Receipts, and the selection a bulk delete works through."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class ReceiptRow:
    id: int
    business_id: int
    source: str
    gmail_message_id: str | None
    task_id: int | None
    vendor: str
    amount: Decimal
    currency: str
    issued_at: dt.date
    subject: str
    attachments: list[str]
    created_at: dt.datetime


@dataclass(frozen=True)
class NewReceipt:
    vendor: str
    amount: Decimal
    currency: str
    issued_at: dt.date
    subject: str
    attachments: Sequence[str] = ()
    source: str = "manual"
    gmail_message_id: str | None = None


@dataclass(frozen=True)
class ReceiptFilter:
    source: str | None = None
    vendor: str | None = None
    # Issue dates: `after` inclusive, `before` exclusive.
    after: dt.date | None = None
    before: dt.date | None = None
    task_id: int | None = None

    def where(self, params: dict[str, Any]) -> list[str]:
        """SQL conditions (fixed strings) with their values put into `params`."""
        conditions = ["business_id = :business_id"]
        if self.source is not None:
            conditions.append("source = :source")
            params["source"] = self.source
        if self.vendor is not None:
            conditions.append("vendor = :vendor")
            params["vendor"] = self.vendor
        if self.after is not None:
            conditions.append("issued_at >= :after")
            params["after"] = self.after
        if self.before is not None:
            conditions.append("issued_at < :before")
            params["before"] = self.before
        if self.task_id is not None:
            conditions.append("task_id = :task_id")
            params["task_id"] = self.task_id
        return conditions


_COLUMNS = (
    "id, business_id, source, gmail_message_id, task_id, vendor, amount, currency, issued_at,"
    " subject, attachments, created_at"
)

_INSERT = text(f"""
    INSERT INTO receipts (business_id, source, gmail_message_id, task_id, vendor, amount,
                          currency, issued_at, subject, attachments)
    VALUES (:business_id, :source, :gmail_message_id, :task_id, :vendor, :amount, :currency,
            :issued_at, :subject, CAST(:attachments AS jsonb))
    ON CONFLICT (business_id, gmail_message_id) DO NOTHING
    RETURNING {_COLUMNS}
""")  # noqa: S608 - a fixed column list


async def insert_receipt(
    conn: AsyncConnection, business_id: int, receipt: NewReceipt, *, task_id: int | None = None
) -> ReceiptRow | None:
    """Store a receipt; None when this business already has one for that Gmail message."""
    result = await conn.execute(
        _INSERT,
        {
            "business_id": business_id,
            "source": receipt.source,
            "gmail_message_id": receipt.gmail_message_id,
            "task_id": task_id,
            "vendor": receipt.vendor[:200],
            "amount": receipt.amount,
            "currency": receipt.currency,
            "issued_at": receipt.issued_at,
            "subject": receipt.subject,
            "attachments": json.dumps(list(receipt.attachments)),
        },
    )
    row = result.mappings().first()
    return ReceiptRow(**row) if row is not None else None


async def task_of_gmail_message(
    conn: AsyncConnection, business_id: int, gmail_message_id: str
) -> int | None:
    """The task that stored this message's receipt (None: not stored, or stored by hand)."""
    result = await conn.execute(
        text("SELECT task_id FROM receipts WHERE business_id = :b AND gmail_message_id = :m"),
        {"b": business_id, "m": gmail_message_id},
    )
    value = result.scalar()
    return int(value) if value is not None else None


async def list_receipts(
    conn: AsyncConnection,
    business_id: int,
    *,
    where: ReceiptFilter,
    before_id: int | None,
    limit: int,
) -> list[ReceiptRow]:
    params: dict[str, Any] = {"business_id": business_id, "limit": limit}
    conditions = where.where(params)
    if before_id is not None:
        conditions.append("id < :before_id")
        params["before_id"] = before_id
    # Only fixed condition strings are joined; every value is a bound parameter.
    query = text(
        f"SELECT {_COLUMNS} FROM receipts WHERE {' AND '.join(conditions)}"  # noqa: S608
        " ORDER BY id DESC LIMIT :limit"
    )
    result = await conn.execute(query, params)
    return [ReceiptRow(**r) for r in result.mappings()]


# -- bulk delete: the selection, numbered 1..N -------------------------------------------------

_SELECT_IDS = text("""
    INSERT INTO task_receipt_selection (task_id, seq, receipt_id)
    SELECT :task_id, ord, rid
    FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS t(rid, ord)
""")


async def select_ids(conn: AsyncConnection, task_id: int, receipt_ids: Sequence[int]) -> int:
    """The caller's ids as given (deduplicated, in order): ids that are not the business's stay
    in, so the delete records them as `not_found` instead of silently dropping them."""
    unique = list(dict.fromkeys(receipt_ids))
    if unique:
        await conn.execute(_SELECT_IDS, {"task_id": task_id, "ids": unique})
    return len(unique)


async def count_matching(conn: AsyncConnection, business_id: int, where: ReceiptFilter) -> int:
    params: dict[str, Any] = {"business_id": business_id}
    conditions = where.where(params)
    query = text(
        f"SELECT count(*) FROM receipts WHERE {' AND '.join(conditions)}"  # noqa: S608
    )
    return int((await conn.execute(query, params)).scalar_one())


async def select_matching(
    conn: AsyncConnection, task_id: int, business_id: int, where: ReceiptFilter
) -> int:
    """Materialize a filter's matches now: the task deletes what matched when it was asked."""
    params: dict[str, Any] = {"business_id": business_id, "task_id": task_id}
    conditions = where.where(params)
    query = text(
        "INSERT INTO task_receipt_selection (task_id, seq, receipt_id)"  # noqa: S608
        " SELECT :task_id, row_number() OVER (ORDER BY id), id FROM receipts"
        f" WHERE {' AND '.join(conditions)}"
    )
    result = await conn.execute(query, params)
    return int(result.rowcount or 0)


async def selection_count(conn: AsyncConnection, task_id: int) -> int:
    result = await conn.execute(
        text("SELECT count(*) FROM task_receipt_selection WHERE task_id = :t"), {"t": task_id}
    )
    return int(result.scalar_one())


_DELETE_BATCH = text("""
    WITH sel AS (
        SELECT seq, receipt_id FROM task_receipt_selection
        WHERE task_id = :t AND seq > :a AND seq <= :u
    ), gone AS (
        DELETE FROM receipts AS r USING sel
        WHERE r.business_id = :b AND r.id = sel.receipt_id
        RETURNING r.id
    ), recorded AS (
        INSERT INTO task_items (task_id, item_key, seq, status, error_code, error_message)
        SELECT :t, sel.receipt_id::text, sel.seq,
               CASE WHEN gone.id IS NULL THEN 'failed' ELSE 'succeeded' END,
               CASE WHEN gone.id IS NULL THEN 'not_found' END,
               CASE WHEN gone.id IS NULL THEN 'receipt ' || sel.receipt_id
                    || ' does not exist or belongs to another business' END
        FROM sel LEFT JOIN gone ON gone.id = sel.receipt_id
        ON CONFLICT (task_id, item_key) DO NOTHING
        RETURNING status
    )
    SELECT count(*) FILTER (WHERE status = 'succeeded'),
           count(*) FILTER (WHERE status = 'failed')
    FROM recorded
""")


async def delete_batch(
    conn: AsyncConnection, task_id: int, business_id: int, *, after_seq: int, up_to_seq: int
) -> tuple[int, int]:
    """Delete one batch of a task's selection and write its ledger rows, in one statement.

    Returns (deleted, not found) counted from ledger rows this call inserted: an item settled
    by an earlier, committed attempt already has its row and is not counted again. Only this
    business's receipts are deleted; any other id becomes a `not_found` item.
    """
    row = (
        await conn.execute(
            _DELETE_BATCH,
            {"t": task_id, "b": business_id, "a": after_seq, "u": up_to_seq},
        )
    ).one()
    return int(row[0]), int(row[1])
