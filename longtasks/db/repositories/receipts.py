"""Receipts, and the selection a bulk delete works through."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.db.models import Receipt
from longtasks.db.rows import returned_all


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


_COLUMNS = ", ".join(cast(Table, Receipt.__table__).c.keys())

_INSERT = text("""
    INSERT INTO receipts (business_id, source, gmail_message_id, task_id, vendor, amount,
                          currency, issued_at, subject, attachments)
    VALUES (:business_id, :source, :gmail_message_id, :task_id, :vendor, :amount, :currency,
            :issued_at, :subject, CAST(:attachments AS jsonb))
    ON CONFLICT (business_id, gmail_message_id) DO NOTHING
    RETURNING id
""")


async def insert_receipt(
    conn: AsyncConnection, business_id: int, receipt: NewReceipt, *, task_id: int | None = None
) -> int | None:
    """Store a receipt; its id, or None when this business already has one for that Gmail
    message."""
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
    receipt_id = result.scalar()
    return int(receipt_id) if receipt_id is not None else None


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
) -> Sequence[Receipt]:
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
    return await returned_all(conn, Receipt, query.bindparams(**params))


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
        INSERT INTO task_items (business_id, task_id, item_key, seq, status, error_code,
                                error_message)
        SELECT :b, :t, sel.receipt_id::text, sel.seq,
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


# -- bulk delete by filter: receipt-id ranges cut at intake, one ledger row per page ------------


async def plan_filter_delete(
    conn: AsyncConnection, task_id: int, business_id: int, where: ReceiptFilter, page_size: int
) -> int:
    """Cut the filter's matches, as of now, into pages of `page_size` consecutive receipt ids;
    returns how many matched. Receipts are never edited and ids only grow, so "matches and
    lies in a page's id range" later means "matched now", unless someone deleted it meanwhile.
    """
    if where.vendor is not None or where.task_id is not None:
        raise ValueError("a delete filter has only source, after and before")
    params: dict[str, Any] = {
        "business_id": business_id,
        "task_id": task_id,
        "page_size": page_size,
        "page_source": where.source,
        "page_after": where.after,
        "page_before": where.before,
    }
    conditions = where.where(params)
    # Only fixed condition strings are joined; every value is a bound parameter.
    query = text(f"""
        WITH matched AS (
            SELECT id, (row_number() OVER (ORDER BY id) - 1) / :page_size AS page
            FROM receipts WHERE {" AND ".join(conditions)}
        ), pages AS (
            SELECT page, min(id) AS first_id, max(id) AS up_to_id, count(*) AS expected
            FROM matched GROUP BY page
        ), planned AS (
            -- Ranges are contiguous from the first match on (not from id 0: the first page
            -- would then walk every older receipt of every business).
            INSERT INTO receipt_delete_pages (task_id, page, first_seq, business_id, after_id,
                up_to_id, source, issued_after, issued_before, expected)
            SELECT :task_id, page, page * :page_size, :business_id,
                   coalesce(lag(up_to_id) OVER (ORDER BY page), first_id - 1), up_to_id,
                   :page_source, :page_after, :page_before, expected
            FROM pages
            RETURNING expected
        )
        SELECT coalesce(sum(expected), 0) FROM planned
    """)  # noqa: S608
    return int((await conn.execute(query, params)).scalar_one())


@dataclass(frozen=True)
class FilterPagePlan:
    pages: int
    page_size: int
    total: int


async def filter_delete_plan(conn: AsyncConnection, task_id: int) -> FilterPagePlan | None:
    """The pages a delete by filter was cut into; None for a delete by ids."""
    row = (
        await conn.execute(
            text(
                "SELECT count(*), max(expected), sum(expected) FROM receipt_delete_pages"
                " WHERE task_id = :t"
            ),
            {"t": task_id},
        )
    ).one()
    if not row[0]:
        return None
    return FilterPagePlan(pages=int(row[0]), page_size=int(row[1]), total=int(row[2]))


@dataclass(frozen=True)
class FilterPageOutcome:
    deleted: int
    # Matched at intake, gone before the page ran (another delete got there first).
    already_gone: int
    # Committed by a transaction that was in flight at intake, so not counted then.
    late_matches: int


# Run in a REPEATABLE READ transaction. All parts of one statement see one snapshot, so `listed`
# is what `gone` deletes; and under REPEATABLE READ a row of that snapshot that someone else
# deleted or changed meanwhile fails the statement (a serialization failure, retried) instead of
# being skipped: the recorded ids are exactly the deleted ones. Listing with a second scan costs
# less than DELETE ... RETURNING, which writes every id into a tuplestore first.
# The FOR UPDATE makes a second attempt of the page (a retry, a zombie) wait for the first; it
# then fails the same way, and its retry finds the page settled and does nothing.
# A receipt `r` of the page `page`: its range, and the filter the page was cut with.
_IN_PAGE = """r.business_id = page.business_id
          AND r.id > page.after_id AND r.id <= page.up_to_id
          AND (page.source IS NULL OR r.source = page.source)
          AND (page.issued_after IS NULL OR r.issued_at >= page.issued_after)
          AND (page.issued_before IS NULL OR r.issued_at < page.issued_before)"""

_DELETE_FILTER_PAGE = text(f"""
    WITH page AS (
        SELECT * FROM receipt_delete_pages
        WHERE task_id = :t AND page = :p AND settled_at IS NULL
        FOR UPDATE
    ), gone AS (
        DELETE FROM receipts AS r USING page
        WHERE {_IN_PAGE}
    ), listed AS (
        SELECT coalesce(array_agg(r.id), '{{}}') AS ids, count(*) AS n
        FROM receipts AS r, page
        WHERE {_IN_PAGE}
    )
    UPDATE receipt_delete_pages AS p
    SET deleted_ids = listed.ids, deleted = listed.n,
        started_at = statement_timestamp(), settled_at = clock_timestamp()
    FROM page, listed
    WHERE p.task_id = page.task_id AND p.page = page.page
    RETURNING p.expected, p.deleted
""")  # noqa: S608 - a fixed fragment, no values


async def delete_filter_page(
    conn: AsyncConnection, task_id: int, page: int
) -> FilterPageOutcome | None:
    """Delete one page of a delete by filter and record its receipt ids, in one statement.
    `conn` must be in a REPEATABLE READ transaction (see above).

    None when the task has no such page (a delete by ids); an outcome of zeros when the page
    was already settled by an earlier, committed attempt.
    """
    row = (await conn.execute(_DELETE_FILTER_PAGE, {"t": task_id, "p": page})).first()
    if row is None:
        exists = await conn.execute(
            text("SELECT 1 FROM receipt_delete_pages WHERE task_id = :t AND page = :p"),
            {"t": task_id, "p": page},
        )
        return FilterPageOutcome(0, 0, 0) if exists.first() is not None else None
    expected, deleted = int(row[0]), int(row[1])
    return FilterPageOutcome(
        deleted=deleted,
        already_gone=max(expected - deleted, 0),
        late_matches=max(deleted - expected, 0),
    )


@dataclass(frozen=True)
class FilterDeleteCounts:
    # Planned items, plus late matches found by settled pages.
    total: int
    # Deleted, or already gone (which also counts as skipped).
    succeeded: int
    skipped: int


async def filter_delete_counts(conn: AsyncConnection, task_id: int) -> FilterDeleteCounts:
    """A delete by filter's counters, from its committed page records."""
    row = (
        await conn.execute(
            text("""
                SELECT coalesce(sum(greatest(expected, coalesce(deleted, 0))), 0),
                       coalesce(sum(greatest(expected, deleted))
                                FILTER (WHERE settled_at IS NOT NULL), 0),
                       coalesce(sum(greatest(expected - deleted, 0))
                                FILTER (WHERE settled_at IS NOT NULL), 0)
                FROM receipt_delete_pages WHERE task_id = :t
            """),
            {"t": task_id},
        )
    ).one()
    return FilterDeleteCounts(total=int(row[0]), succeeded=int(row[1]), skipped=int(row[2]))
