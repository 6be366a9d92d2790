"""The API's `/metrics`: request latency by route template and tasks by type and status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.conftest import Stack, israeli_numbers, start_broadcast, wait_for_status


async def test_api_metrics_have_request_latency_and_tasks_by_status(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(http, israeli_numbers(3, start=500_000))
        task_id = started["task"]["id"]
        await wait_for_status(http, task_id, {"completed"})
        await http.get(f"/api/long_tasks/{task_id}")
    async with stack.http() as anonymous:
        response = await anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    body = response.text
    assert "longtasks_http_request_duration_seconds_bucket" in body
    # Route templates, never ids: the label set stays small.
    assert 'route="/api/long_tasks/{task_id}"' in body
    assert f'/api/long_tasks/{task_id}"' not in body
    lines = [
        line
        for line in body.splitlines()
        if line.startswith("longtasks_tasks{") and 'status="completed"' in line
    ]
    assert any('task_type="broadcast"' in line and float(line.split()[-1]) >= 1 for line in lines)
