"""The circuit breaker: a task pauses itself when too many of its recent sends fail, says why,
tells the business, and waits for a person."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import text

from tests.conftest import (
    Stack,
    israeli_numbers,
    ledger_counts,
    sender_report,
    start_broadcast,
    wait_for_status,
    wait_until,
)
from tests.ops.test_notifications import SECRET, webhook_receiver

# The sandbox answers numbers ending in 0000 with 131026 ("not on WhatsApp"). Enough of them
# that failures are still to come after the first pause however late it takes hold: pages in
# flight settle what they started, and on a loaded machine that was once 50 more sends, after
# which too few failures were left to trip the breaker a second time.
UNREACHABLE = [f"052-{n:03d}0000" for n in range(310, 430)]


async def _paused_events(requests: list[tuple[dict[str, str], bytes]]) -> list[dict[str, Any]]:
    bodies = [json.loads(body) for _, body in requests]
    return [b for b in bodies if b["event"] == "task.paused"]


async def _paused(
    http: httpx.AsyncClient, task_id: int, after: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The task once it paused (again, when `after` is the previous pause's snapshot)."""
    seen: dict[str, Any] = {}

    async def paused() -> bool:
        seen.update((await http.get(f"/api/long_tasks/{task_id}")).json())
        if seen["status"] in ("completed", "failed", "cancelled"):
            return True
        fresh = after is None or seen["paused_at"] not in (None, after["paused_at"])
        return bool(seen["status"] == "paused" and fresh)

    await wait_until(paused, timeout_s=60, what="the task to pause itself")
    assert seen["status"] == "paused", seen
    return seen


async def test_too_many_failures_pause_the_task_until_a_person_resumes_it(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    # Paced, as a real sender is: the breaker trips while most of the list is still to go.
    async with stack.engine.begin() as conn:
        await conn.execute(
            text("UPDATE businesses SET whatsapp_messages_per_s = 20 WHERE id = :b"),
            {"b": business_id},
        )
    good = israeli_numbers(40, start=440_000)
    numbers = [*good[:30], *UNREACHABLE, *good[30:]]
    async with webhook_receiver() as receiver, stack.http(business_id, "admin") as admin:
        policy = {"auto_pause_failure_share": 0.5, "auto_pause_window": 20}
        assert (await admin.put("/api/policy", json=policy)).status_code == 200
        hook = {"webhook_url": receiver.url, "webhook_secret": SECRET}
        assert (await admin.put("/api/notifications", json=hook)).status_code == 200

        task_id = (await start_broadcast(admin, numbers))["task"]["id"]
        paused = await _paused(admin, task_id)
        assert paused["paused_by"] == "system"
        reason = paused["status_reason"]
        assert reason.startswith("paused itself: ") and "of the last 20 sends failed" in reason
        assert "most often 131026" in reason
        assert paused["processed_items"] < len(numbers)
        assert "sending" not in await ledger_counts(stack.engine, task_id)

        async def told() -> bool:
            return len(await _paused_events(receiver.requests)) == 1

        await wait_until(told, what="the pause notification")
        [event] = await _paused_events(receiver.requests)
        assert event["delivery_id"] == f"{task_id}:notify-webhook:pause-1"
        assert event["task"]["status"] == "paused"
        assert event["task"]["status_reason"] == reason

        # A person resumes: the window starts afresh, and the failures that follow trip it
        # again (a second pause, a second notification).
        assert (await admin.post(f"/api/long_tasks/{task_id}/resume")).status_code == 202
        again = await _paused(admin, task_id, after=paused)
        assert again["processed_items"] > paused["processed_items"]

        async def told_twice() -> bool:
            return len(await _paused_events(receiver.requests)) == 2

        await wait_until(told_twice, what="the second pause notification")
        # The business turns the breaker off and resumes: the task finishes, counts exact.
        off = await admin.put("/api/policy", json={"auto_pause_failure_share": None})
        assert off.status_code == 200
        assert (await admin.post(f"/api/long_tasks/{task_id}/resume")).status_code == 202
        done = await wait_for_status(admin, task_id, {"completed", "failed", "cancelled"})
    assert (done["status"], done["success_count"], done["failed_count"]) == (
        "completed",
        len(good),
        len(UNREACHABLE),
    )
    report = await sender_report(stack, business_id)
    assert report["accepted"] == len(good)
    assert report["max_per_recipient"] == 1


async def test_a_breaker_tripped_by_the_last_sends_lets_the_task_finish(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """One unpaced page of unreachable numbers: every send is in flight before the first answer
    trips the breaker, so nothing is left to hold back; paused at 100% it would only wait for a
    person to resume it into finishing (seen from the CLI on retries of undeliverable lists)."""
    business_id = await new_business()
    numbers = UNREACHABLE[:30]
    async with stack.http(business_id, "admin") as admin:
        policy = {"auto_pause_failure_share": 0.5, "auto_pause_window": 20}
        assert (await admin.put("/api/policy", json=policy)).status_code == 200
        task_id = (await start_broadcast(admin, numbers))["task"]["id"]
        done = await wait_for_status(admin, task_id, {"completed", "failed", "cancelled", "paused"})
    async with stack.engine.connect() as conn:
        tripped = (
            await conn.execute(
                text("SELECT auto_pauses FROM long_running_tasks WHERE id = :t"), {"t": task_id}
            )
        ).scalar_one()
    assert tripped == 1, "the breaker tripped"
    assert (done["status"], done["processed_items"], done["failed_count"]) == (
        "completed",
        len(numbers),
        len(numbers),
    )
    assert done["status_reason"] is None and not done["pause_requested"]
