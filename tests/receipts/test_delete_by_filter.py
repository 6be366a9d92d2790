"""A delete by filter: receipt-id pages cut at intake, one ledger row per page.

The page record is the ledger for these receipts, so these tests hold it to what a per-item
ledger promises: every deleted receipt listed once (REST and CSV), counters exact, a retried or
concurrent attempt of a page deleting and counting nothing, receipts deleted by someone else
meanwhile counted as skipped, and a receipt committed during intake not lost from the counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from psycopg.errors import SerializationFailure
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.db.repositories import receipts as receipt_repo
from tests.conftest import Stack, ledger_counts, record_history, wait_for_status, workflow_id_of
from tests.receipts.helpers import (
    create_filter_delete_task,
    receipt_count,
    seed_receipts,
    start_task,
)

TERMINAL = {"completed", "failed", "cancelled"}


async def test_filter_delete_lists_every_deleted_receipt_once(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    manual = await seed_receipts(stack.engine, business_id, 53)
    gmail = await seed_receipts(stack.engine, business_id, 11, source="gmail")
    # Pages of 7: eight pages, the last one short, gmail receipts interleaved in no page.
    task_id, selected = await create_filter_delete_task(
        stack.engine, business_id, 7, source="manual"
    )
    assert selected == 53
    await start_task(
        stack.client, stack.engine, stack.task_queue, business_id, task_id, "receipt_delete"
    )
    async with stack.http(business_id, "viewer") as http:
        task = await wait_for_status(http, task_id, TERMINAL)
        listed: list[dict[str, object]] = []
        cursor = None
        while True:
            params: dict[str, str | int] = {"status": "succeeded", "limit": 10}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get(f"/api/long_tasks/{task_id}/items", params=params)).json()
            listed += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        exported = (await http.get(f"/api/long_tasks/{task_id}/items.csv")).text
        failed = (
            await http.get(f"/api/long_tasks/{task_id}/items", params={"status": "failed"})
        ).json()["items"]
    assert task["status"] == "completed", task
    assert (task["total_items"], task["success_count"], task["failed_count"]) == (53, 53, 0)
    assert (task["skipped_count"], task["cancelled_count"]) == (0, 0)
    assert sorted(int(str(i["item_key"])) for i in listed) == manual
    assert [i["seq"] for i in listed] == list(range(1, 54))
    assert failed == []
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert sorted(int(r["item_key"]) for r in rows) == manual
    assert {r["status"] for r in rows} == {"succeeded"}
    assert await ledger_counts(stack.engine, task_id) == {"succeeded": 53}
    assert await receipt_count(stack.engine, business_id) == len(gmail)
    await record_history(
        stack.client, await workflow_id_of(stack.engine, task_id), "receipt_delete-by-filter"
    )


async def test_receipts_deleted_meanwhile_are_skipped_and_late_commits_counted(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    ids = await seed_receipts(stack.engine, business_id, 30, first_day=dt.date(2025, 3, 1))
    # A receipt whose INSERT was still in flight when the filter was resolved: it has an id
    # inside the pages' range but was not counted. Model it by deleting it before planning
    # and putting it back (same id) after.
    async with stack.engine.begin() as conn:
        removed = await conn.execute(
            text("DELETE FROM receipts WHERE id = :id RETURNING *"), {"id": ids[12]}
        )
        late = removed.mappings().one()
    task_id, selected = await create_filter_delete_task(
        stack.engine, business_id, 10, after=dt.date(2025, 3, 1)
    )
    assert selected == 29
    async with stack.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO receipts (id, business_id, source, vendor, amount, currency,"
                " issued_at, subject, attachments) VALUES (:id, :business_id, :source, :vendor,"
                " :amount, :currency, :issued_at, :subject, CAST(:attachments AS jsonb))"
            ),
            {**late, "attachments": "[]"},
        )
        # And two of the selected receipts deleted by someone else before the task runs.
        await conn.execute(
            text("DELETE FROM receipts WHERE id = ANY(:ids)"), {"ids": [ids[3], ids[25]]}
        )
    await start_task(
        stack.client, stack.engine, stack.task_queue, business_id, task_id, "receipt_delete"
    )
    async with stack.http(business_id, "viewer") as http:
        task = await wait_for_status(http, task_id, TERMINAL)
    assert task["status"] == "completed", task
    # 29 planned + 1 late = 30; 28 deleted by the task, 2 already gone (skipped successes).
    assert task["total_items"] == 30, task
    assert (task["success_count"], task["skipped_count"], task["failed_count"]) == (30, 2, 0)
    assert task["cancelled_count"] == 0
    assert task["progress_pct"] == 100
    assert await ledger_counts(stack.engine, task_id) == {"succeeded": 28}
    assert await receipt_count(stack.engine, business_id) == 0


async def test_a_second_attempt_of_a_page_deletes_and_counts_nothing(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """Two attempts of one page at once (a retry racing a zombie): the second waits for the
    first, then fails without effect; run again, it finds the page settled."""
    business_id = await new_business()
    ids = await seed_receipts(stack.engine, business_id, 12)
    task_id, _ = await create_filter_delete_task(stack.engine, business_id, 5, source="manual")
    async with stack.engine.connect() as conn:
        ranges = await conn.execute(
            text(
                "SELECT after_id, up_to_id, expected FROM receipt_delete_pages"
                " WHERE task_id = :t ORDER BY page"
            ),
            {"t": task_id},
        )
        # Contiguous ranges starting at the first match: page 0 must not walk every older
        # receipt of every other business.
        assert [tuple(r) for r in ranges] == [
            (ids[0] - 1, ids[4], 5),
            (ids[4], ids[9], 5),
            (ids[9], ids[11], 2),
        ]
    async with repeatable_read(stack) as first, repeatable_read(stack) as second:
        await first.begin()
        outcome = await receipt_repo.delete_filter_page(first, task_id, 1)
        assert outcome == receipt_repo.FilterPageOutcome(5, 0, 0)
        await second.begin()
        racing = asyncio.create_task(receipt_repo.delete_filter_page(second, task_id, 1))
        await asyncio.sleep(0.3)
        assert not racing.done(), "the second attempt must wait for the first one's commit"
        await first.commit()
        with pytest.raises(DBAPIError) as failure:
            await racing
        assert isinstance(failure.value.orig, SerializationFailure)
        await second.rollback()
    async with repeatable_read(stack) as conn, conn.begin():
        assert await receipt_repo.delete_filter_page(conn, task_id, 1) == (
            receipt_repo.FilterPageOutcome(0, 0, 0)
        )
        # A page number the task does not have (and so any delete by ids): not a filter page.
        assert await receipt_repo.delete_filter_page(conn, task_id, 9) is None
        plan = await receipt_repo.filter_delete_plan(conn, task_id)
        counts = await receipt_repo.filter_delete_counts(conn, task_id)
    assert plan == receipt_repo.FilterPagePlan(pages=3, page_size=5, total=12)
    assert counts == receipt_repo.FilterDeleteCounts(total=12, succeeded=5, skipped=0)
    # Page 1 is ids[5:10]; the other pages are untouched.
    async with stack.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id FROM receipts WHERE business_id = :b ORDER BY id"), {"b": business_id}
        )
        assert [r[0] for r in rows] == ids[:5] + ids[10:]


async def test_a_receipt_deleted_by_someone_else_mid_page_fails_the_attempt_cleanly(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """Another transaction deletes one of the page's receipts after the page's snapshot: the
    page must not record that receipt as deleted by it; the attempt fails with nothing
    committed, and the retry records exactly the rest."""
    business_id = await new_business()
    ids = await seed_receipts(stack.engine, business_id, 8)
    task_id, _ = await create_filter_delete_task(stack.engine, business_id, 100, source="manual")
    async with repeatable_read(stack) as page, stack.engine.connect() as other:
        await page.begin()
        await page.execute(text("SELECT 1"))  # the page's snapshot starts here
        await other.begin()
        await other.execute(text("DELETE FROM receipts WHERE id = :id"), {"id": ids[2]})
        await other.commit()
        with pytest.raises(DBAPIError) as failure:
            await receipt_repo.delete_filter_page(page, task_id, 0)
        assert isinstance(failure.value.orig, SerializationFailure)
        await page.rollback()
    assert await receipt_count(stack.engine, business_id) == 7
    async with repeatable_read(stack) as conn, conn.begin():
        outcome = await receipt_repo.delete_filter_page(conn, task_id, 0)
    assert outcome == receipt_repo.FilterPageOutcome(deleted=7, already_gone=1, late_matches=0)
    async with stack.engine.connect() as conn:
        recorded = await conn.execute(
            text("SELECT deleted_ids FROM receipt_delete_pages WHERE task_id = :t"),
            {"t": task_id},
        )
        assert sorted(recorded.scalar_one()) == ids[:2] + ids[3:]


@contextlib.asynccontextmanager
async def repeatable_read(stack: Stack) -> AsyncIterator[AsyncConnection]:
    async with stack.engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        yield conn
