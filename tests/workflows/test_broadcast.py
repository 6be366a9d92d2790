"""A broadcast end to end: REST -> Postgres -> Temporal workflow -> sandbox WhatsApp -> REST."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from tests.conftest import (
    Stack,
    configure_sender,
    israeli_numbers,
    ledger_counts,
    record_history,
    sender_report,
    start_broadcast,
    wait_for_status,
    workflow_id_of,
)


async def test_broadcast_with_invalid_numbers_completes_with_exact_counters(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    numbers = israeli_numbers(500) + ["12", "not-a-number", "+972-00"]
    # Duplicates in another spelling are dropped, not sent twice.
    numbers += ["+972523000001", "0523000002"]
    async with stack.http(business_id, "operator") as http:
        response = await http.post(
            "/api/broadcasts",
            json={
                "name": "spring sale",
                "message": {"text": "Hello from the sandbox"},
                "recipients": numbers,
            },
        )
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["recipients_accepted"] == 500
        assert body["recipients_invalid"] == 3
        assert body["duplicates_dropped"] == 2
        task_id = body["task"]["id"]
        assert body["task"]["total_items"] == 503
        assert re.fullmatch(f"longtask-{task_id}-[0-9a-f]{{12}}", body["task"]["workflow_id"])

        task = await wait_for_status(http, task_id, {"completed", "failed", "cancelled"})
    assert task["status"] == "completed"
    await record_history(
        stack.client, await workflow_id_of(stack.engine, task_id), "broadcast-completed"
    )
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
        failed = (
            await http.get(f"/api/long_tasks/{task_id}/items", params={"status": "failed"})
        ).json()
    assert {i["error_code"] for i in failed["items"]} == {"invalid_phone"}
    assert {i["label"] for i in failed["items"]} == {"12", "not-a-number", "+972-00"}


async def test_provider_429_and_5xx_are_retried_without_double_counting(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await configure_sender(stack, business_id, failure_rate=0.25, throttle_rate=0.15)
    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(http, israeli_numbers(400, start=10_000))
        task = await wait_for_status(http, started["task"]["id"], {"completed", "failed"}, 120)
    assert task["status"] == "completed"
    assert (task["success_count"], task["failed_count"]) == (400, 0)
    report = await sender_report(stack, business_id)
    # Every recipient got exactly one delivery, whatever was retried.
    assert report["accepted"] == 400
    assert report["unique_recipients"] == 400
    assert report["max_per_recipient"] == 1
    assert await ledger_counts(stack.engine, task["id"]) == {"succeeded": 400}
    stats = stack.sandbox.whatsapp.stats
    assert stats.failed_injected > 0 and stats.rate_limited > 0


async def test_permanent_rejections_are_failed_items_with_the_provider_code(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    # Numbers ending in 0000 are "not on WhatsApp" in the sandbox (error 131026).
    numbers = israeli_numbers(20, start=20_000) + ["052-3020000", "052-3030000"]
    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(http, numbers)
        task = await wait_for_status(http, started["task"]["id"], {"completed", "failed"})
        failed = (
            await http.get(f"/api/long_tasks/{task['id']}/items", params={"status": "failed"})
        ).json()["items"]
    assert (task["status"], task["success_count"], task["failed_count"]) == ("completed", 20, 2)
    assert {i["error_code"] for i in failed} == {"131026"}
    assert all("not on WhatsApp" in i["error_message"] for i in failed)


async def test_template_message_and_csv_export(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(
            http,
            [*israeli_numbers(5, start=30_000), "bogus"],
            message={
                "template": {"name": "order_ready", "language": "he", "params": ["Dana", "#42"]}
            },
        )
        task = await wait_for_status(http, started["task"]["id"], {"completed", "failed"})
        csv_all = await http.get(f"/api/long_tasks/{task['id']}/items.csv")
        csv_failed = await http.get(
            f"/api/long_tasks/{task['id']}/items.csv", params={"status": "failed"}
        )
    assert task["status"] == "completed"
    assert csv_all.status_code == 200
    assert csv_all.headers["content-type"].startswith("text/csv")
    lines = csv_all.text.strip().splitlines()
    assert lines[0].startswith("seq,item_key,label,status,error_code")
    assert len(lines) == 1 + 6
    failed_lines = csv_failed.text.strip().splitlines()
    assert len(failed_lines) == 2 and "invalid_phone" in failed_lines[1]


async def test_pair_rate_throttle_backs_off_that_recipient_only(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await configure_sender(stack, business_id, pair_rate_first_attempts=1)
    numbers = israeli_numbers(200, start=200_000)
    throttled = {n for n in numbers if n.endswith("77")}
    assert throttled
    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(http, numbers)
        task = await wait_for_status(http, started["task"]["id"], {"completed", "failed"})
        items = (
            await http.get(f"/api/long_tasks/{task['id']}/items", params={"limit": 500})
        ).json()["items"]
    assert (task["status"], task["success_count"]) == ("completed", 200)
    report = await sender_report(stack, business_id)
    assert report["accepted"] == 200
    assert report["max_per_recipient"] == 1
    # Only the throttled recipients were retried; the others went through on the first try.
    by_label = {i["label"]: i for i in items}
    assert all(i["attempts"] == 1 for i in items)
    assert {label for label in by_label if label[-2:] == "77"} == {
        "+972" + n.replace("-", "")[1:] for n in throttled
    }
