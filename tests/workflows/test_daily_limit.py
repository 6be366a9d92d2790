"""WhatsApp's daily unique-recipient limit: the task pauses durably, says why, and resumes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import text

from tests.conftest import (
    Stack,
    israeli_numbers,
    sender_report,
    start_broadcast,
    wait_for_status,
    wait_until,
    workflow_id_of,
)


async def _set_daily_limit(stack: Stack, business_id: int, limit: int) -> None:
    async with stack.engine.begin() as conn:
        await conn.execute(
            text("UPDATE businesses SET whatsapp_daily_limit = :l WHERE id = :id"),
            {"l": limit, "id": business_id},
        )


async def _waiting_task(http: httpx.AsyncClient, task_id: int) -> dict[str, Any]:
    holder: dict[str, Any] = {}

    async def waiting() -> bool:
        holder.update((await http.get(f"/api/long_tasks/{task_id}")).json())
        return bool(holder.get("status_reason"))

    await wait_until(waiting, what="the task to show why it waits")
    return holder


async def test_limit_pauses_the_task_with_a_reason_and_a_recheck_resumes_it(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await _set_daily_limit(stack, business_id, 30)
    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(http, [*israeli_numbers(50, start=180_000), "bad"])
        task_id = started["task"]["id"]
        waiting = await _waiting_task(http, task_id)
        assert waiting["status"] == "running"
        assert "daily messaging limit" in waiting["status_reason"]
        assert "30 unique recipients" in waiting["status_reason"]
        assert (waiting["success_count"], waiting["failed_count"]) == (30, 1)
        assert (await sender_report(stack, business_id))["accepted"] == 30

        # The business moves to a higher tier; ops tell the run to look again.
        await _set_daily_limit(stack, business_id, 1000)
        await stack.client.get_workflow_handle(await workflow_id_of(stack.engine, task_id)).signal(
            "recheck_quota"
        )
        task = await wait_for_status(http, task_id, {"completed", "failed", "cancelled"})
    assert (task["status"], task["success_count"], task["failed_count"]) == ("completed", 50, 1)
    assert task["status_reason"] is None
    report = await sender_report(stack, business_id)
    assert report["accepted"] == 50
    assert report["max_per_recipient"] == 1


async def test_a_task_waiting_for_quota_can_be_cancelled(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await _set_daily_limit(stack, business_id, 10)
    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(http, israeli_numbers(25, start=190_000))
        task_id = started["task"]["id"]
        await _waiting_task(http, task_id)
        assert (await http.post(f"/api/long_tasks/{task_id}/cancel")).status_code == 202
        task = await wait_for_status(http, task_id, {"completed", "failed", "cancelled"})
    assert task["status"] == "cancelled"
    assert (task["success_count"], task["cancelled_count"]) == (10, 15)
