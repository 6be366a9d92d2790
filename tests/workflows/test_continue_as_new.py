"""Continue-as-new keeps counts and listings exact; forced by the server's own suggestion.

This module runs its own Temporal dev server with `limit.historyCount.suggestContinueAsNew`
set low, so the workflow is told to continue as new after a few pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from longtasks.db.repositories import tasks as task_repo
from longtasks.temporal.search_attributes import ALL_KEYS
from tests.conftest import (
    TEMPORAL_BIN,
    Stack,
    create_broadcast_task,
    israeli_numbers,
    ledger_counts,
    record_history,
    running_worker,
    sender_report,
    start_direct,
)
from tests.receipts.helpers import (
    connect_directly,
    create_sync_task,
    expected_outcomes,
    gmail_sandbox,
    staged_ids,
    start_task,
    stored_receipts,
)


@pytest.fixture(scope="module")
async def eager_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=TEMPORAL_BIN,
        search_attributes=ALL_KEYS,
        dev_server_log_level="error",
        dev_server_extra_args=[
            "--dynamic-config-value",
            "limit.historyCount.suggestContinueAsNew=40",
        ],
    )
    yield env
    await env.shutdown()


async def test_continue_as_new_keeps_counts_exact(
    stack: Stack,
    eager_env: WorkflowEnvironment,
    engine: AsyncEngine,
    app_engine: AsyncEngine,
    new_business: Callable[[], Awaitable[int]],
) -> None:
    business_id = await new_business()
    task_id = await create_broadcast_task(
        engine, business_id, [*israeli_numbers(1200, start=110_000), "nope"]
    )
    queue, settings = stack.own_queue("can", broadcast_page_size=50, page_window=2)
    async with running_worker(eager_env.client, settings, app_engine, queue):
        handle = await start_direct(eager_env.client, engine, queue, business_id, task_id)
        outcome = await handle.result()
    assert outcome["status"] == "completed"
    runs = [r async for r in eager_env.client.list_workflows(f'WorkflowId="{handle.id}"')]
    assert len(runs) >= 3, "the server's suggestion made the workflow continue as new"
    async with engine.connect() as conn:
        final = await task_repo.get_task(conn, task_id)
    assert final is not None
    assert (final.status, final.success_count, final.failed_count) == ("completed", 1200, 1)
    assert final.cancelled_count == 0
    assert await ledger_counts(engine, task_id) == {"succeeded": 1200, "failed": 1}
    report = await sender_report(stack, business_id)
    assert report["accepted"] == 1200
    assert report["max_per_recipient"] == 1
    await record_history(eager_env.client, handle.id, "broadcast-continued-as-new")


async def test_a_long_mailbox_listing_continues_as_new_and_lists_each_message_once(
    stack: Stack,
    eager_env: WorkflowEnvironment,
    engine: AsyncEngine,
    app_engine: AsyncEngine,
    new_business: Callable[[], Awaitable[int]],
) -> None:
    """Listing is the phase before the total is known; at 20 ids a page the sandbox mailbox
    takes 100 list pages, so the server suggests continuing as new in the middle of it."""
    gmail = gmail_sandbox(stack)
    gmail.set_quota(quota_units_per_s=3000.0, rate_limit_403_fraction=0.0)
    business_id = await new_business()
    email = await connect_directly(engine, stack.settings, business_id)
    task_id = await create_sync_task(engine, business_id)
    queue, settings = stack.own_queue("can-list", gmail_list_page_size=20, page_window=2)
    async with running_worker(eager_env.client, settings, app_engine, queue):
        handle = await start_task(
            eager_env.client, engine, queue, business_id, task_id, "receipt_sync"
        )
        outcome = await handle.result()
    assert outcome["status"] == "completed", outcome
    runs = [r async for r in eager_env.client.list_workflows(f'WorkflowId="{handle.id}"')]
    listing_runs = 0
    for run in runs:
        history = await eager_env.client.get_workflow_handle(
            handle.id, run_id=run.run_id
        ).fetch_history()
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        if "receipt_sync.list_page" in scheduled:
            listing_runs += 1
        # The listing resumes; the sync itself is started once, in the first run only.
        if run.run_id != handle.first_execution_run_id:
            assert "receipt_sync.start" not in scheduled
            assert "tasks.mark_running" not in scheduled
    assert listing_runs >= 3, "the listing phase itself continued as new"
    listed = await staged_ids(engine, task_id)
    assert len(listed) == len(set(listed)) == gmail.mailbox_size
    expected = expected_outcomes(gmail, email, listed)
    async with engine.connect() as conn:
        final = await task_repo.get_task(conn, task_id)
    assert final is not None
    assert (final.total_items, final.processed_items) == (gmail.mailbox_size,) * 2
    assert final.failed_count == expected["malformed"]
    assert final.skipped_count == expected["newsletters"]
    assert len(await stored_receipts(engine, business_id)) == len(expected["receipts"])
    await record_history(eager_env.client, handle.id, "receipt_sync-listing-continued-as-new")
