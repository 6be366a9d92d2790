"""`eta_seconds`: the measured rate, the limits that bound it, and when there is none."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text

from longtasks.db.models import LongRunningTask
from longtasks.eta import SendLimits, estimate
from tests.conftest import Stack, israeli_numbers, start_broadcast, wait_for_status, wait_until

NOW = dt.datetime(2026, 11, 5, 12, 0, tzinfo=dt.UTC)


def _task(**changes: Any) -> LongRunningTask:
    # A row as read (every column set), built in memory: `estimate` only reads attributes.
    values: dict[str, Any] = {column.key: None for column in LongRunningTask.__table__.columns}
    values.update(
        id=1,
        business_id=1,
        task_type="broadcast",
        status="running",
        total_items=1300,
        processed_items=300,
        success_count=300,
        failed_count=0,
        skipped_count=0,
        cancelled_count=0,
        cancel_requested=False,
        pause_requested=False,
        auto_pauses=0,
        priority="normal",
        version=1,
        created_at=NOW,
        updated_at=NOW,
        # 300 items in the last 10 seconds: 30/s.
        rate_prev_at=NOW - dt.timedelta(seconds=10),
        rate_prev_items=0,
        rate_mark_at=NOW - dt.timedelta(seconds=2),
        rate_mark_items=240,
    )
    values.update(changes)
    return LongRunningTask(**values)


def test_remaining_items_at_the_measured_rate() -> None:
    assert estimate(_task(), None, NOW) == 34  # 1000 left at 30/s
    # Only the newer mark (a run that just started): the rate since it.
    only_mark = _task(rate_prev_at=None, rate_prev_items=None, rate_mark_items=0)
    assert only_mark.rate_mark_at is not None
    assert (
        estimate(
            _task(
                rate_prev_at=None,
                rate_prev_items=None,
                rate_mark_items=0,
                rate_mark_at=NOW - dt.timedelta(seconds=10),
            ),
            None,
            NOW,
        )
        == 34
    )


def test_no_estimate_without_a_measured_rate_or_while_not_running() -> None:
    assert estimate(_task(rate_prev_at=None, rate_mark_at=None), None, NOW) is None
    # Too short to be a rate.
    assert (
        estimate(
            _task(rate_prev_at=None, rate_mark_at=NOW - dt.timedelta(seconds=1), rate_mark_items=0),
            None,
            NOW,
        )
        is None
    )
    for status in ("paused", "awaiting_approval", "scheduled", "completed", "expired"):
        assert estimate(_task(status=status), None, NOW) is None
    assert estimate(_task(pause_requested=True), None, NOW) is None
    assert estimate(_task(cancel_requested=True), None, NOW) is None
    assert estimate(_task(processed_items=1300), None, NOW) == 0


def test_pacing_bounds_a_rate_faster_than_the_sender_may_go() -> None:
    assert estimate(_task(), SendLimits(messages_per_s=10), NOW) == 100
    assert estimate(_task(), SendLimits(messages_per_s=100), NOW) == 34


def test_the_daily_cap_and_tier_push_the_end_to_a_later_day() -> None:
    until_midnight = 12 * 3600
    # 200 left today of a 500 cap, 1000 to go: tomorrow's 500 and the day after's 300.
    capped = SendLimits(daily_cap=500, cap_used_today=300)
    assert estimate(_task(), capped, NOW) == until_midnight + 86_400
    # Under the cap: no effect.
    assert estimate(_task(), SendLimits(daily_cap=5000, cap_used_today=300), NOW) == 34
    tier = SendLimits(tier_limit=1000, tier_used=900, tier_frees_at=NOW + dt.timedelta(hours=3))
    assert estimate(_task(), tier, NOW) == 3 * 3600
    # Waiting on a quota with no rate (nothing moves): the quota still says when.
    stalled = _task(rate_prev_at=None, rate_mark_at=None)
    assert estimate(stalled, capped, NOW) == until_midnight + 86_400
    # A cap of zero never lets it end: no honest estimate.
    assert estimate(_task(), SendLimits(daily_cap=0), NOW) is None


async def test_a_running_paced_broadcast_has_an_eta_and_a_finished_one_none(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.engine.begin() as conn:
        await conn.execute(
            text("UPDATE businesses SET whatsapp_messages_per_s = 50 WHERE id = :b"),
            {"b": business_id},
        )
    total = 400
    async with stack.http(business_id, "operator", user="olga") as http:
        started = await start_broadcast(http, israeli_numbers(total, start=300_000))
        task_id = started["task"]["id"]
        assert started["task"]["created_by"] == "olga"
        seen: dict[str, Any] = {}

        async def estimated() -> bool:
            seen.update((await http.get(f"/api/long_tasks/{task_id}")).json())
            return seen["eta_seconds"] is not None or seen["status"] != "running"

        await wait_until(estimated, what="an estimate")
        assert seen["status"] == "running", seen
        remaining = total - seen["processed_items"]
        # Never sooner than the sender's pace allows.
        assert seen["eta_seconds"] >= remaining / 50
        listed = (await http.get("/api/long_tasks", params={"status": "running"})).json()
        assert any(t["id"] == task_id and t["eta_seconds"] is not None for t in listed["items"])
        done = await wait_for_status(http, task_id, {"completed", "failed", "cancelled"})
    assert done["status"] == "completed"
    assert done["eta_seconds"] is None
    assert done["child_task_ids"] == []
    assert done["parent_task_id"] is None
