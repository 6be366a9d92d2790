"""A broadcast end to end: REST -> Postgres -> Temporal workflow -> sandbox WhatsApp -> REST."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from tests.conftest import Stack, israeli_numbers, ledger_counts, wait_for_status


async def sender_report(stack: Stack, business_id: int) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=stack.sandbox_url) as http:
        response = await http.get(f"/sandbox/whatsapp/senders/pn-{business_id}")
        return dict(response.json())


async def test_broadcast_with_invalid_numbers_completes_with_exact_counters(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    numbers = israeli_numbers(500) + ["12", "not-a-number", "+972-00"]
    # Duplicates in another spelling are dropped, not sent twice.
    numbers += ["+972523000001", "0523000002"]
    async with stack.http(business_id, "operator") as http:
        response = await http.post("/api/broadcasts", json={
            "name": "spring sale", "message": {"text": "Hello from the sandbox"},
            "recipients": numbers,
        })
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["recipients_accepted"] == 500
        assert body["recipients_invalid"] == 3
        assert body["duplicates_dropped"] == 2
        task_id = body["task"]["id"]
        assert body["task"]["total_items"] == 503
        assert body["task"]["workflow_id"] == f"longtask-{task_id}"

        task = await wait_for_status(http, task_id, {"completed", "failed", "cancelled"})
    assert task["status"] == "completed"
    assert task["success_count"] == 500
    assert task["failed_count"] == 3
    assert task["processed_items"] == 503
    assert task["cancelled_count"] == 0
    assert task["progress_pct"] == 100.0
    assert task["started_at"] is not None and task["completed_at"] is not None
    assert await ledger_counts(stack.engine, task_id) == {"succeeded": 500, "failed": 3}
    report = await sender_report(stack, business_id)
    assert report["accepted"] == 500
    assert report["unique_recipients"] == 500
    assert report["max_per_recipient"] == 1

    async with stack.http(business_id, "viewer") as http:
        failed = (await http.get(f"/api/long_tasks/{task_id}/items",
                                 params={"status": "failed"})).json()
    assert {i["error_code"] for i in failed["items"]} == {"invalid_phone"}
    assert {i["label"] for i in failed["items"]} == {"12", "not-a-number", "+972-00"}
