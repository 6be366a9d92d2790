"""Cancellation: by REST (signal) and by Temporal (the Web UI's button), before and mid-way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import httpx
from temporalio.client import WorkflowExecutionStatus

from tests.conftest import (
    Stack,
    configure_sender,
    israeli_numbers,
    ledger_counts,
    record_history,
    sender_report,
    start_broadcast,
    wait_for_status,
    wait_until,
    workflow_id_of,
)


async def _assert_cancelled_exactly(
    stack: Stack, business_id: int, task: dict[str, object], total: int
) -> None:
    assert task["status"] == "cancelled"
    success, failed, cancelled = (
        task["success_count"],
        task["failed_count"],
        task["cancelled_count"],
    )
    assert isinstance(success, int) and isinstance(failed, int) and isinstance(cancelled, int)
    assert success + failed + cancelled == total
    assert 0 < success < total
    assert cancelled > 0
    # The bar stays where the work stopped; cancelled items are not progress.
    assert task["progress_pct"] == round(100 * (success + failed) / total, 1) < 100
    # Nothing is left claimed-but-unsettled, and the provider saw exactly the successes.
    ledger = await ledger_counts(stack.engine, int(str(task["id"])))
    assert "sending" not in ledger
    assert ledger.get("succeeded", 0) == success
    report = await sender_report(stack, business_id)
    assert report["accepted"] == success
    assert report["max_per_recipient"] == 1


async def _start_and_wait_for_sends(
    stack: Stack, http: httpx.AsyncClient, business_id: int, total: int, offset: int
) -> int:
    """A slowed-down broadcast that has sent its first 200 messages: time to cancel it."""
    await configure_sender(stack, business_id, latency_ms=20)
    started = await start_broadcast(http, israeli_numbers(total, start=offset))
    task_id = int(started["task"]["id"])

    async def some_progress() -> bool:
        task = (await http.get(f"/api/long_tasks/{task_id}")).json()
        return bool(task["processed_items"] >= 200)

    await wait_until(some_progress, what="first sends")
    return task_id


async def test_cancel_by_rest_mid_way_is_graceful_and_idempotent(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    total = 3000
    async with stack.http(business_id, "operator") as http:
        task_id = await _start_and_wait_for_sends(stack, http, business_id, total, 40_000)
        first = await http.post(f"/api/long_tasks/{task_id}/cancel", json={"reason": "oops"})
        assert first.status_code == 202, first.text
        assert first.json()["task"]["cancel_requested"] is True
        task = await wait_for_status(http, task_id, {"cancelled", "completed", "failed"})
        await _assert_cancelled_exactly(stack, business_id, task, total)
        assert task["cancel_reason"] == "oops"

        again = await http.post(f"/api/long_tasks/{task_id}/cancel")
        assert again.status_code == 200
        assert again.json()["task"]["status"] == "cancelled"
        # No more sends after the task ended.
        accepted_at_end = (await sender_report(stack, business_id))["accepted"]
        assert accepted_at_end == task["success_count"]

    handle = stack.client.get_workflow_handle(await workflow_id_of(stack.engine, task_id))

    async def run_completed() -> bool:
        # The run closes after the task row: it still notifies the business after `finish`.
        return (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    await wait_until(run_completed, what="the run to complete")
    await record_history(
        stack.client, await workflow_id_of(stack.engine, task_id), "broadcast-cancelled-rest"
    )

    async with stack.http(business_id, "admin") as http:
        assert (await http.delete(f"/api/long_tasks/{task_id}")).status_code == 204
        assert (await http.get(f"/api/long_tasks/{task_id}")).status_code == 404


async def test_cancel_from_temporal_takes_the_same_graceful_path(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    total = 3000
    async with stack.http(business_id, "operator") as http:
        task_id = await _start_and_wait_for_sends(stack, http, business_id, total, 50_000)
        handle = stack.client.get_workflow_handle(await workflow_id_of(stack.engine, task_id))
        await handle.cancel()  # what the Web UI's Cancel button does
        task = await wait_for_status(http, task_id, {"cancelled", "completed", "failed"})
    await _assert_cancelled_exactly(stack, business_id, task, total)
    assert task["cancel_reason"] == "cancelled via temporal"

    async def workflow_closed() -> bool:
        return (await handle.describe()).status == WorkflowExecutionStatus.CANCELED

    await wait_until(workflow_closed, what="the run to show Canceled")
    await record_history(
        stack.client, await workflow_id_of(stack.engine, task_id), "broadcast-cancelled-temporal"
    )


async def test_delayed_task_cancelled_before_it_starts_counts_every_item_cancelled(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    start_at = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat()
    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(
            http, israeli_numbers(40, start=60_000), start_at=start_at, priority="high"
        )
        task = started["task"]
        assert task["status"] == "scheduled"
        assert task["priority"] == "high"
        cancel = await http.post(f"/api/long_tasks/{task['id']}/cancel")
        assert cancel.status_code == 202
        done = await wait_for_status(http, task["id"], {"cancelled", "completed", "failed"})
    assert done["status"] == "cancelled"
    assert (done["success_count"], done["failed_count"], done["cancelled_count"]) == (0, 0, 40)
    assert (await sender_report(stack, business_id))["accepted"] == 0


async def test_delete_refuses_a_running_task(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    start_at = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)).isoformat()
    async with stack.http(business_id, "admin") as http:
        started = await start_broadcast(http, israeli_numbers(3, start=70_000), start_at=start_at)
        task_id = started["task"]["id"]
        response = await http.delete(f"/api/long_tasks/{task_id}")
        assert response.status_code == 409
        assert "cancel it first" in response.json()["detail"]
        await http.post(f"/api/long_tasks/{task_id}/cancel")
        await wait_for_status(http, task_id, {"cancelled"})
        assert (await http.delete(f"/api/long_tasks/{task_id}")).status_code == 204
