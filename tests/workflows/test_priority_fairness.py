"""Priority and fairness on Temporal's own task-queue keys.

Priority: with the worker saturated (one activity slot), a high-priority task's pages wait less
in the queue than a low-priority task's pages waiting at the same time. Fairness: a small task
of one business finishes while another business's big task is still running.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable

from temporalio.client import Client

from tests.conftest import (
    Stack,
    configure_sender,
    create_broadcast_task,
    get_task_row,
    israeli_numbers,
    running_worker,
    start_direct,
    wait_until,
    workflow_id_of,
)


async def _page_queue_waits(client: Client, workflow_id: str) -> list[tuple[float, float]]:
    """(scheduled at, seconds waited) of each page activity between being scheduled and a
    worker taking it."""
    scheduled: dict[int, float] = {}
    waits: list[tuple[float, float]] = []
    handle = client.get_workflow_handle(workflow_id)
    async for event in handle.fetch_history_events():
        at = event.event_time.ToDatetime().timestamp()
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name.endswith("send_page"):
                scheduled[event.event_id] = at
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes.scheduled_event_id
            if started in scheduled:
                waits.append((scheduled[started], at - scheduled[started]))
    return waits


async def test_high_priority_pages_jump_the_queue_of_a_saturated_worker(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    low_business, high_business = await new_business(), await new_business()
    for business_id in (low_business, high_business):
        await configure_sender(stack, business_id, latency_ms=100)
    low_task = await create_broadcast_task(
        stack.engine, low_business, israeli_numbers(1200, start=130_000)
    )
    high_task = await create_broadcast_task(
        stack.engine, high_business, israeli_numbers(300, start=140_000)
    )
    queue, settings = stack.own_queue(
        "saturated",
        broadcast_page_size=50,
        max_concurrent_activities=1,
        send_concurrency=50,
    )
    client = await Client.connect(stack.client.service_client.config.target_host)
    async with running_worker(client, settings, stack.app_engine, queue):
        low = await start_direct(
            client, stack.engine, queue, low_business, low_task, priority="low"
        )
        await wait_until(lambda: _processed_at_least(stack, low_task, 100), what="low running")
        high = await start_direct(
            client, stack.engine, queue, high_business, high_task, priority="high"
        )
        await high.result()
        assert (await get_task_row(stack.engine, low_task)).status == "running"
        high_pages = await _page_queue_waits(client, high.id)
        await low.result()
        low_pages = await _page_queue_waits(client, low.id)
    # Compare pages that competed for the one slot: low pages queued while high ones ran.
    first, last = high_pages[0][0], high_pages[-1][0]
    competing_low = [wait for at, wait in low_pages if first - 1.0 <= at <= last + 1.0]
    assert competing_low
    high_waits = [wait for _, wait in high_pages]
    assert statistics.mean(high_waits) < statistics.mean(competing_low)


async def _processed_at_least(stack: Stack, task_id: int, count: int) -> bool:
    return (await get_task_row(stack.engine, task_id)).processed_items >= count


async def test_a_small_task_finishes_while_another_business_big_one_runs(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    big_business, small_business = await new_business(), await new_business()
    for business_id in (big_business, small_business):
        await configure_sender(stack, business_id, latency_ms=20)
    big = await create_broadcast_task(
        stack.engine, big_business, israeli_numbers(15_000, start=150_000)
    )
    small = await create_broadcast_task(
        stack.engine, small_business, israeli_numbers(50, start=170_000)
    )
    await start_direct(stack.client, stack.engine, stack.task_queue, big_business, big)
    await wait_until(lambda: _processed_at_least(stack, big, 500), what="big running")
    handle = await start_direct(stack.client, stack.engine, stack.task_queue, small_business, small)
    await handle.result()
    small_row, big_row = (
        await get_task_row(stack.engine, small),
        await get_task_row(stack.engine, big),
    )
    assert small_row.status == "completed"
    assert small_row.success_count == 50
    assert big_row.status == "running", "the small task did not wait for the big one"
    assert big_row.processed_items < 15_000
    await stack.client.get_workflow_handle(await workflow_id_of(stack.engine, big)).result()
