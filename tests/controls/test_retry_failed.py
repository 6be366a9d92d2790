"""`retry_failed`: a new linked task holding exactly the parent's retryable failures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from tests.conftest import Stack, israeli_numbers, sender_report, start_broadcast, wait_for_status

# The sandbox answers numbers ending in 0000 with 131026 ("not on WhatsApp"): a failure the
# ledger records, which a person may want tried again (the number may have joined since).
UNREACHABLE = ["052-3110000", "052-3120000", "052-3130000", "052-3140000"]
INVALID = ["12", "not a number", "+1"]


async def _items(http: httpx.AsyncClient, task_id: int, status: str) -> list[dict[str, object]]:
    response = await http.get(
        f"/api/long_tasks/{task_id}/items", params={"status": status, "limit": 500}
    )
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def test_the_retry_holds_only_retryable_failures_and_reaches_no_one_twice(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    reachable = israeli_numbers(120, start=310_000)
    async with stack.http(business_id, "operator", user="omer") as http:
        started = await start_broadcast(http, [*reachable, *UNREACHABLE, *INVALID])
        parent_id = started["task"]["id"]
        running = await http.post(f"/api/long_tasks/{parent_id}/retry_failed")
        assert running.status_code in (409, 202)  # 409 unless it already ended
        parent = await wait_for_status(http, parent_id, {"completed", "failed", "cancelled"})
        assert (parent["success_count"], parent["failed_count"]) == (120, 7)
        failed = await _items(http, parent_id, "failed")
        retryable = [i for i in failed if i["error_code"] != "invalid_phone"]
        assert len(retryable) == len(UNREACHABLE)
        accepted_before = (await sender_report(stack, business_id))["accepted"]

        response = await http.post(f"/api/long_tasks/{parent_id}/retry_failed")
        assert response.status_code == 202, response.text
        body = response.json()
        child = body["task"]
        assert (body["parent_task_id"], body["items"]) == (parent_id, len(retryable))
        assert (child["parent_task_id"], child["total_items"]) == (parent_id, len(retryable))
        assert child["task_type"] == "broadcast"
        assert child["created_by"] == "omer"
        done = await wait_for_status(http, child["id"], {"completed", "failed", "cancelled"})
        assert (done["success_count"], done["failed_count"]) == (0, len(retryable))
        retried = {str(i["label"]) for i in await _items(http, child["id"], "failed")}
        assert retried == {str(i["label"]) for i in retryable}

        # The parent lists its retry; the listing filters by parent.
        parent = (await http.get(f"/api/long_tasks/{parent_id}")).json()
        assert parent["child_task_ids"] == [child["id"]]
        listed = (await http.get("/api/long_tasks", params={"parent_task_id": parent_id})).json()
        assert [t["id"] for t in listed["items"]] == [child["id"]]

        # Only codes asked for; nothing qualifies: 409, and no task is made.
        none = await http.post(
            f"/api/long_tasks/{parent_id}/retry_failed", json={"error_codes": ["131049"]}
        )
        assert none.status_code == 409
        only_invalid = await http.post(
            f"/api/long_tasks/{parent_id}/retry_failed", json={"error_codes": ["invalid_phone"]}
        )
        assert only_invalid.status_code == 409
        assert (await http.get(f"/api/long_tasks/{parent_id}")).json()["child_task_ids"] == [
            child["id"]
        ]
    report = await sender_report(stack, business_id)
    # Nobody the parent reached got anything more; each reached number had one message.
    assert report["accepted"] == accepted_before == 120
    assert report["max_per_recipient"] == 1


async def test_a_task_that_still_runs_or_is_not_a_broadcast_is_not_retried(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(
            http, israeli_numbers(3, start=320_000), start_at="2099-01-01T00:00:00Z"
        )
        task_id = started["task"]["id"]
        response = await http.post(f"/api/long_tasks/{task_id}/retry_failed")
        assert response.status_code == 409
        assert "once it ends" in response.json()["detail"]
        await http.post(f"/api/long_tasks/{task_id}/cancel")
        await wait_for_status(http, task_id, {"cancelled"})
        # Cancelled items never failed: nothing to retry.
        response = await http.post(f"/api/long_tasks/{task_id}/retry_failed")
        assert response.status_code == 409
        deleted = await http.post("/api/receipts/bulk_delete", json={"receipt_ids": [1, 2]})
        delete_id = deleted.json()["task"]["id"]
        await wait_for_status(http, delete_id, {"completed", "failed", "cancelled"})
        response = await http.post(f"/api/long_tasks/{delete_id}/retry_failed")
        assert response.status_code == 409
        assert "only broadcasts" in response.json()["detail"]
