"""Pause and resume through the real stack: nothing new starts, the run waits holding nothing,
resume sends every remaining message exactly once; cancel works while paused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import text
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

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
)
from tests.receipts.helpers import (
    connect_directly,
    expected_outcomes,
    gmail_sandbox,
    receipt_count,
    staged_ids,
)

QUIET_S = 5.0


async def _details(handle: WorkflowHandle[Any, Any]) -> str:
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return str(metadata.current_details)


async def _started_at(
    stack: Stack, http: httpx.AsyncClient, business_id: int, total: int, offset: int, share: float
) -> int:
    """A slowed broadcast that has settled about `share` of its items."""
    await configure_sender(stack, business_id, latency_ms=20)
    started = await start_broadcast(http, israeli_numbers(total, start=offset))
    task_id = int(started["task"]["id"])

    async def far_enough() -> bool:
        task = (await http.get(f"/api/long_tasks/{task_id}")).json()
        return bool(task["processed_items"] >= share * total)

    await wait_until(far_enough, timeout_s=120, what=f"{share:.0%} settled")
    return task_id


async def test_pause_stops_every_send_and_resume_finishes_exactly_once(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    total = 2000
    async with stack.http(business_id, "operator", user="paula") as http:
        task_id = await _started_at(stack, http, business_id, total, 400_000, 0.4)
        response = await http.post(f"/api/long_tasks/{task_id}/pause")
        assert response.status_code == 202, response.text
        asked = response.json()["task"]
        assert asked["pause_requested"] is True
        assert asked["paused_by"] == "paula"
        assert asked["eta_seconds"] is None
        # Asking again changes nothing.
        again = await http.post(f"/api/long_tasks/{task_id}/pause")
        assert again.status_code == 200

        paused = await wait_for_status(http, task_id, {"paused", "completed", "failed"})
        assert paused["status"] == "paused", paused
        assert paused["paused_by"] == "paula" and paused["paused_at"] is not None
        assert paused["eta_seconds"] is None
        # Items in flight settled; nothing is claimed and unsettled.
        assert "sending" not in await ledger_counts(stack.engine, task_id)
        accepted = (await sender_report(stack, business_id))["accepted"]
        assert accepted == paused["success_count"] < total

        # The run waits durably: no activity held, and the Temporal UI says why.
        handle = stack.client.get_workflow_handle(paused["workflow_id"])
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.RUNNING
        assert list(description.raw_description.pending_activities) == []
        details = await _details(handle)
        assert "**paused** by paula" in details, details

        await asyncio.sleep(QUIET_S)
        assert (await sender_report(stack, business_id))["accepted"] == accepted
        still = (await http.get(f"/api/long_tasks/{task_id}")).json()
        assert (still["status"], still["processed_items"]) == ("paused", paused["processed_items"])

        resumed = await http.post(f"/api/long_tasks/{task_id}/resume")
        assert resumed.status_code == 202, resumed.text
        assert resumed.json()["task"]["pause_requested"] is False
        done = await wait_for_status(http, task_id, {"completed", "failed", "cancelled"})
        assert (done["status"], done["success_count"], done["failed_count"]) == (
            "completed",
            total,
            0,
        )
        assert done["cancelled_count"] == 0 and done["processed_items"] == total
        assert done["paused_by"] is None
        # An ended task has nothing to resume.
        assert (await http.post(f"/api/long_tasks/{task_id}/resume")).status_code == 409
    report = await sender_report(stack, business_id)
    assert report["accepted"] == total
    assert report["unique_recipients"] == total
    assert report["max_per_recipient"] == 1
    assert await ledger_counts(stack.engine, task_id) == {"succeeded": total}

    async def run_closed() -> bool:
        return (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    await wait_until(run_closed, what="the run to complete")
    await record_history(stack.client, done["workflow_id"], "broadcast-paused-resumed")


async def test_cancel_while_paused_ends_with_exact_counts(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    total = 1500
    async with stack.http(business_id, "operator") as http:
        task_id = await _started_at(stack, http, business_id, total, 410_000, 0.2)
        assert (await http.post(f"/api/long_tasks/{task_id}/pause")).status_code == 202
        paused = await wait_for_status(http, task_id, {"paused"})
        cancel = await http.post(f"/api/long_tasks/{task_id}/cancel", json={"reason": "enough"})
        assert cancel.status_code == 202
        done = await wait_for_status(http, task_id, {"cancelled", "completed", "failed"})
    assert done["status"] == "cancelled"
    assert done["success_count"] == paused["success_count"]
    assert done["success_count"] + done["failed_count"] + done["cancelled_count"] == total
    assert (await sender_report(stack, business_id))["accepted"] == done["success_count"]


async def test_pause_is_refused_where_it_makes_no_sense(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(http, israeli_numbers(3, start=420_000))
        task_id = started["task"]["id"]
        await wait_for_status(http, task_id, {"completed"})
        response = await http.post(f"/api/long_tasks/{task_id}/pause")
        assert response.status_code == 409
        assert "nothing to pause" in response.json()["detail"]
    async with stack.http(business_id, "viewer") as viewer:
        assert (await viewer.post(f"/api/long_tasks/{task_id}/pause")).status_code == 403


async def test_a_receipt_sync_pauses_and_resumes_to_the_same_outcome(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """Every paged type pauses: a Gmail sync paused at once (while listing or fetching)."""
    business_id = await new_business()
    email = await connect_directly(stack.engine, stack.settings, business_id)
    async with stack.http(business_id, "operator") as http:
        response = await http.post("/api/receipts/sync", json={"since": "2025-05-01"})
        assert response.status_code == 202, response.text
        task_id = response.json()["task"]["id"]
        assert (await http.post(f"/api/long_tasks/{task_id}/pause")).status_code == 202
        await wait_for_status(http, task_id, {"paused"})
        assert "sending" not in await ledger_counts(stack.engine, task_id)
        assert (await http.post(f"/api/long_tasks/{task_id}/resume")).status_code == 202
        done = await wait_for_status(http, task_id, {"completed", "failed", "cancelled"}, 120)
    assert done["status"] == "completed", done
    listed = await staged_ids(stack.engine, task_id)
    expected = expected_outcomes(gmail_sandbox(stack), email, listed)
    assert done["total_items"] == len(listed)
    assert done["success_count"] == len(expected["receipts"]) + expected["newsletters"]
    assert done["failed_count"] == expected["malformed"]
    assert await receipt_count(stack.engine, business_id) == len(expected["receipts"])


async def test_a_task_waiting_for_the_tier_pauses_and_resumes_into_the_same_wait(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.engine.begin() as conn:
        await conn.execute(
            text("UPDATE businesses SET whatsapp_daily_limit = 10 WHERE id = :b"),
            {"b": business_id},
        )
    async with stack.http(business_id, "operator") as http:
        task_id = (await start_broadcast(http, israeli_numbers(25, start=460_000)))["task"]["id"]

        async def waiting() -> bool:
            task = (await http.get(f"/api/long_tasks/{task_id}")).json()
            return bool(task["status_reason"]) and task["status"] == "running"

        await wait_until(waiting, what="the tier wait")
        assert (await http.post(f"/api/long_tasks/{task_id}/pause")).status_code == 202
        paused = await wait_for_status(http, task_id, {"paused"})
        assert paused["success_count"] == 10
        assert (await http.post(f"/api/long_tasks/{task_id}/resume")).status_code == 202
        await wait_until(waiting, what="the tier wait again")
        async with stack.engine.begin() as conn:
            await conn.execute(
                text("UPDATE businesses SET whatsapp_daily_limit = 1000 WHERE id = :b"),
                {"b": business_id},
            )
        workflow_id = paused["workflow_id"]
        await stack.client.get_workflow_handle(workflow_id).signal("recheck_quota")
        done = await wait_for_status(http, task_id, {"completed", "failed", "cancelled"})
    assert (done["status"], done["success_count"]) == ("completed", 25)
    assert (await sender_report(stack, business_id))["max_per_recipient"] == 1
