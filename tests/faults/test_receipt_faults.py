"""Receipt tasks survive killed workers: a Gmail sync killed mid-listing and mid-fetch resumes
from its last committed page and stores every receipt once; a bulk delete killed mid-way deletes
every selected receipt once, with exact counters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text

from tests.conftest import Stack, ledger_counts
from tests.faults.conftest import (
    FaultReport,
    FaultRow,
    WorkerFactory,
    wait_for_processed,
    wait_terminal,
)
from tests.receipts.helpers import (
    connect_directly,
    create_delete_task,
    create_filter_delete_task,
    create_sync_task,
    expected_outcomes,
    gmail_sandbox,
    receipt_count,
    staged_ids,
    start_task,
    stored_receipts,
)

pytestmark = pytest.mark.faults


def gmail_env(stack: Stack) -> dict[str, str]:
    return {
        "GMAIL_API_BASE": stack.sandbox_url,
        "GMAIL_QUOTA_UNITS_PER_S": "2500",
        # Small pages: many list and fetch pages to be killed between and inside.
        "GMAIL_LIST_PAGE_SIZE": "100",
        "GMAIL_FETCH_PAGE_SIZE": "50",
    }


async def wait_for_staged(stack: Stack, task_id: int, at_least: int) -> None:
    for _ in range(600):
        if len(await staged_ids(stack.engine, task_id)) >= at_least:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"listing of task {task_id} never reached {at_least}")


async def test_sigkill_mid_sync_resumes_without_duplicates(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    workers: WorkerFactory,
    worker_env: dict[str, str],
    fault_report: FaultReport,
) -> None:
    gmail = gmail_sandbox(stack)
    gmail.set_quota(quota_units_per_s=3000.0, rate_limit_403_fraction=0.0)
    business_id = await new_business()
    email = await connect_directly(stack.engine, stack.settings, business_id)
    task_id = await create_sync_task(stack.engine, business_id)
    env = gmail_env(stack)
    await start_task(
        stack.client,
        stack.engine,
        worker_env["TEMPORAL_TASK_QUEUE"],
        business_id,
        task_id,
        "receipt_sync",
    )
    gets_before = gmail.stats()["get_calls"]

    # 1. Mid-listing: after a few of the 20 list pages committed.
    worker = workers(**env)
    await wait_for_staged(stack, task_id, 300)
    worker.kill()
    restarts = 1
    # 2. Mid-fetch, twice.
    for at in (400, 1_200):
        worker = workers(**env)
        await wait_for_processed(stack.engine, task_id, at, timeout_s=120)
        worker.kill()
        restarts += 1
    workers(**env)
    task = await wait_terminal(stack.engine, task_id)

    total = gmail.mailbox_size
    listed = await staged_ids(stack.engine, task_id)
    expected = expected_outcomes(gmail, email, listed)
    ledger = await ledger_counts(stack.engine, task_id)
    stored = await stored_receipts(stack.engine, business_id)
    assert task.status == "completed", task
    assert len(listed) == len(set(listed)) == total == task.total_items
    assert (task.processed_items, task.cancelled_count) == (total, 0)
    assert task.failed_count == expected["malformed"] == ledger.get("failed", 0)
    assert task.skipped_count == expected["newsletters"] == ledger.get("skipped", 0)
    assert ledger.get("succeeded", 0) == len(expected["receipts"]) == len(stored)
    assert set(stored) == set(expected["receipts"])
    assert "sending" not in ledger
    refetched = gmail.stats()["get_calls"] - gets_before - total
    fault_report.add(
        FaultRow(
            "Gmail receipt sync, worker SIGKILL",
            "SIGKILL mid-listing (300 of 2,000 ids staged), at 400 and 1,200 fetched;"
            f" {refetched} messages fetched again, stored once",
            3,
            total,
            0,
            0,
            restarts,
            "completed, counters exact",
        )
    )


@pytest.mark.parametrize("selection", ["ids", "filter"])
async def test_sigkill_mid_delete_deletes_each_receipt_once(
    selection: str,
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    workers: WorkerFactory,
    worker_env: dict[str, str],
    fault_report: FaultReport,
) -> None:
    business_id = await new_business()
    total = 20_000
    async with stack.engine.begin() as conn:
        rows = await conn.execute(
            text(
                "INSERT INTO receipts (business_id, source, vendor, amount, currency, issued_at)"
                " SELECT :b, 'manual', 'Vendor', 10.50 + g, 'ILS', DATE '2025-01-01' + g % 300"
                " FROM generate_series(1, :n) AS g RETURNING id"
            ),
            {"b": business_id, "n": total},
        )
        ids = sorted(int(r[0]) for r in rows)
    if selection == "ids":
        task_id = await create_delete_task(stack.engine, business_id, ids)
    else:
        # A filter's pages are cut at intake: 200 pages of 100 receipt ids.
        task_id, _ = await create_filter_delete_task(
            stack.engine, business_id, 100, source="manual"
        )
    env = {"RECEIPT_DELETE_PAGE_SIZE": "100", "PAGE_WINDOW": "2"}
    await start_task(
        stack.client,
        stack.engine,
        worker_env["TEMPORAL_TASK_QUEUE"],
        business_id,
        task_id,
        "receipt_delete",
    )
    restarts = 0
    for at in (1, 4_000, 12_000):
        worker = workers(**env)
        await wait_for_processed(stack.engine, task_id, at, timeout_s=120)
        worker.kill()
        restarts += 1
    workers(**env)
    task = await wait_terminal(stack.engine, task_id)
    assert task.status == "completed", task
    assert (task.success_count, task.failed_count, task.cancelled_count) == (total, 0, 0)
    assert task.processed_items == total
    assert await ledger_counts(stack.engine, task_id) == {"succeeded": total}
    assert await receipt_count(stack.engine, business_id) == 0
    fault_report.add(
        FaultRow(
            f"bulk receipt delete by {selection}, worker SIGKILL",
            "SIGKILL at first batch, 4,000 and 12,000 deleted",
            3,
            total,
            0,
            0,
            restarts,
            "completed, counters exact",
        )
    )
