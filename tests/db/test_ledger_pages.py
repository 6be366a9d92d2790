"""A page of a task's ledger reads that page's rows, not the whole ledger.

The API's item list and the CSV export page through `task_ledger` (`ledger.list_items`). When
the view's union could not be flattened, every page sorted all of the task's rows: the export
of a million items sorted what was left of them 500 times. The transaction's own table
statistics (`pg_stat_xact_user_tables`) count the rows each page touched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from longtasks.db.repositories import ledger
from longtasks.db.repositories.ledger import ClaimRequest
from tests.conftest import create_broadcast_task, israeli_numbers

ITEMS = 5000
PAGE = 50


async def rows_touched(conn: AsyncConnection) -> int:
    """task_items rows this transaction has read so far (index fetches and sequential reads)."""
    result = await conn.execute(
        text(
            "SELECT coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0)"
            " FROM pg_stat_xact_user_tables WHERE relname = 'task_items'"
        )
    )
    return int(result.scalar_one())


async def test_each_page_reads_about_a_page_of_rows(
    engine: AsyncEngine, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    task_id = await create_broadcast_task(engine, business_id, israeli_numbers(1, start=570_000))
    async with engine.begin() as conn:
        await ledger.claim(
            conn, task_id, [ClaimRequest(f"k{seq:05d}", seq, None) for seq in range(1, ITEMS + 1)]
        )
        await conn.execute(text("ANALYZE task_items"))

    seen: list[str] = []
    after: tuple[int, str] | None = None
    reads: list[int] = []
    for _ in range(3):
        # Each page in its own transaction, so its statistics are its own.
        async with engine.connect() as conn:
            before = await rows_touched(conn)
            page = await ledger.list_items(conn, task_id, status=None, after=after, limit=PAGE + 1)
            reads.append(await rows_touched(conn) - before)
        seen += [row["item_key"] for row in page[:PAGE]]
        last = page[PAGE - 1]
        after = (last["seq"], last["item_key"])

    # The pages in order, none skipped or repeated.
    assert seen == [f"k{seq:05d}" for seq in range(1, 3 * PAGE + 1)]
    # A page and its look-ahead row, give or take the index's edge: not the 5,000 of the task.
    assert all(n <= 2 * PAGE for n in reads), reads
