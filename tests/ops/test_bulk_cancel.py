"""`POST /api/long_tasks/bulk_cancel`: every unfinished task matching the filter, summarised."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from sqlalchemy import text

from tests.conftest import Stack, israeli_numbers, start_broadcast, wait_for_status


async def test_bulk_cancel_by_filter_with_a_summary(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    async with stack.http(business_id, "operator") as http:
        ids = [
            (await start_broadcast(http, israeli_numbers(3, start=n * 10), start_at=later))["task"][
                "id"
            ]
            for n in range(3)
        ]
        old = ids[0]
        async with stack.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE long_running_tasks SET created_at = now() - interval '2 days'"
                    " WHERE id = :t"
                ),
                {"t": old},
            )
        day_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()

        first = await http.post(
            "/api/long_tasks/bulk_cancel",
            json={"created_before": day_ago, "reason": "old stuff"},
        )
        assert first.status_code == 200, first.text
        assert first.json()["cancelled"] == [old]
        assert first.json()["count"] == 1
        cancelled = await wait_for_status(http, old, {"cancelled"})
        assert cancelled["cancel_reason"] == "old stuff"

        rest = await http.post("/api/long_tasks/bulk_cancel", json={"task_type": "broadcast"})
        assert rest.status_code == 200, rest.text
        summary = rest.json()
        assert summary["cancelled"] == sorted(ids[1:])
        assert summary["count"] == 2
        assert summary["already_terminal"] == 1
        for task_id in ids[1:]:
            assert (await wait_for_status(http, task_id, {"cancelled"}))["status"] == "cancelled"

        again = await http.post("/api/long_tasks/bulk_cancel", json={})
        assert again.json() == {
            "cancelled": [],
            "already_terminal": 3,
            "count": 0,
            "not_signalled": [],
            "remaining": False,
        }

    # Other businesses' tasks are never touched, and a viewer may not cancel.
    other = await new_business()
    async with stack.http(other, "operator") as http:
        assert (await http.post("/api/long_tasks/bulk_cancel", json={})).json()["count"] == 0
    async with stack.http(business_id, "viewer") as http:
        assert (await http.post("/api/long_tasks/bulk_cancel", json={})).status_code == 403
        naive = await http.post(
            "/api/long_tasks/bulk_cancel", json={"created_before": "2026-01-01T00:00:00"}
        )
        assert naive.status_code in (403, 422)
