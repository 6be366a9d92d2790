"""Approval before a large send: who may approve, what a rejection and an expiry leave behind,
and that nothing is sent before an approval."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowExecutionStatus

from api.app import create_app
from api.deps import Resources
from tests.conftest import (
    Stack,
    _free_port,
    israeli_numbers,
    record_history,
    sender_report,
    serve_api,
    start_broadcast,
    wait_for_status,
    wait_until,
)


async def _threshold(stack: Stack, business_id: int, above: int) -> None:
    async with stack.http(business_id, "admin", user="ana") as http:
        response = await http.put("/api/policy", json={"approval_required_above": above})
        assert response.status_code == 200, response.text


async def _closed(stack: Stack, workflow_id: str) -> None:
    handle = stack.client.get_workflow_handle(workflow_id)

    async def closed() -> bool:
        return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

    await wait_until(closed, what="the run to close")


async def test_only_another_admin_approves_and_nothing_is_sent_before(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await _threshold(stack, business_id, 5)
    numbers = israeli_numbers(10, start=430_000)
    async with stack.http(business_id, "admin", user="carl") as carl:
        started = await start_broadcast(carl, [*numbers, "oops"])
        task = started["task"]
        task_id = task["id"]
        assert task["status"] == "awaiting_approval"
        assert task["created_by"] == "carl"
        expires = dt.datetime.fromisoformat(task["approval_expires_at"])
        assert dt.timedelta(hours=23) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)
        preview = started["preview"]
        assert (preview["recipients"], preview["invalid"], preview["to_send"]) == (10, 1, 10)
        handle = stack.client.get_workflow_handle(task["workflow_id"])

        async def waiting_in_temporal() -> bool:
            metadata = await handle.query(
                "__temporal_workflow_metadata", result_type=WorkflowMetadata
            )
            return "awaiting approval" in metadata.current_details

        await wait_until(waiting_in_temporal, what="the run to say it awaits approval")

        # The creator cannot approve their own task, even as an admin.
        own = await carl.post(f"/api/long_tasks/{task_id}/approve")
        assert own.status_code == 403, own.text
        assert "created" in own.json()["detail"]
    for role in ("viewer", "operator"):
        async with stack.http(business_id, role, user="vera") as other:
            refused = await other.post(f"/api/long_tasks/{task_id}/approve")
            assert refused.status_code == 403, (role, refused.text)
    assert (await sender_report(stack, business_id))["accepted"] == 0

    async with stack.http(business_id, "admin", user="ana") as ana:
        approved = await ana.post(f"/api/long_tasks/{task_id}/approve")
        assert approved.status_code == 202, approved.text
        body = approved.json()["task"]
        assert body["approved_by"] == "ana" and body["approved_at"] is not None
        assert body["status"] in ("running", "completed")
        done = await wait_for_status(ana, task_id, {"completed", "failed", "cancelled"})
        assert (done["status"], done["success_count"], done["failed_count"]) == ("completed", 10, 1)
        again = await ana.post(f"/api/long_tasks/{task_id}/approve")
        assert again.status_code == 409
        # A task at the threshold does not wait.
        small = await start_broadcast(ana, israeli_numbers(5, start=431_000))
        assert small["task"]["status"] == "running"
        assert small["preview"] is None
    report = await sender_report(stack, business_id)
    assert report["max_per_recipient"] == 1
    await _closed(stack, done["workflow_id"])
    await record_history(stack.client, done["workflow_id"], "broadcast-approved")


async def test_a_rejected_task_ends_cancelled_with_nothing_sent(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await _threshold(stack, business_id, 0)
    async with stack.http(business_id, "operator", user="olga") as olga:
        started = await start_broadcast(olga, israeli_numbers(4, start=432_000))
        task_id = started["task"]["id"]
        assert (await olga.post(f"/api/long_tasks/{task_id}/reject")).status_code == 403
        paused = await olga.post(f"/api/long_tasks/{task_id}/pause")
        assert paused.status_code == 409
    async with stack.http(business_id, "admin", user="ana") as ana:
        rejected = await ana.post(
            f"/api/long_tasks/{task_id}/reject", json={"reason": "wrong audience"}
        )
        assert rejected.status_code == 202, rejected.text
        done = await wait_for_status(ana, task_id, {"cancelled", "completed", "failed"})
        assert done["status"] == "cancelled"
        assert done["rejected_by"] == "ana"
        assert done["cancel_reason"] == "rejected by ana: wrong audience"
        assert (done["success_count"], done["cancelled_count"]) == (0, 4)
        assert (await ana.post(f"/api/long_tasks/{task_id}/approve")).status_code == 409
    assert (await sender_report(stack, business_id))["accepted"] == 0


async def test_an_unanswered_task_expires_with_nothing_sent(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await _threshold(stack, business_id, 2)
    # An API whose approvals expire after two seconds, beside the test stack's worker.
    settings = stack.settings.model_copy(update={"approval_ttl_s": 2.0})
    resources = Resources(settings=settings, engine=stack.app_engine, temporal=stack.client)
    port = _free_port()
    server, serving = await serve_api(create_app(settings, resources), port)
    try:
        async with stack.http(business_id, "operator", user="olga") as http:
            http.base_url = f"http://127.0.0.1:{port}"
            started = await start_broadcast(http, israeli_numbers(3, start=433_000))
            task: dict[str, Any] = started["task"]
            assert task["status"] == "awaiting_approval"
            done = await wait_for_status(http, task["id"], {"expired", "cancelled", "completed"})
    finally:
        server.should_exit = True
        await serving
    assert done["status"] == "expired"
    assert (done["success_count"], done["failed_count"], done["cancelled_count"]) == (0, 0, 3)
    assert done["completed_at"] is not None
    assert "approved" in done["status_reason"]
    assert (await sender_report(stack, business_id))["accepted"] == 0
    async with stack.http(business_id, "admin", user="ana") as ana:
        late = await ana.post(f"/api/long_tasks/{task['id']}/approve")
        assert late.status_code == 409
    await _closed(stack, done["workflow_id"])
    await record_history(stack.client, done["workflow_id"], "broadcast-approval-expired")
