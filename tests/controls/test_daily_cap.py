"""The business's daily send cap holds across its concurrent tasks; over it a task waits
`paused` with the reason, and raising the cap lets it go on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import text

from tests.conftest import (
    Stack,
    configure_sender,
    israeli_numbers,
    sender_report,
    start_broadcast,
    wait_for_status,
    wait_until,
)

CAP = 150
# Each task alone is over the cap: however their pages interleave, both end up held.
EACH = 160


async def test_the_cap_holds_across_two_concurrent_tasks_until_it_is_raised(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await configure_sender(stack, business_id, latency_ms=5)
    async with stack.http(business_id, "admin", user="ana") as admin:
        assert (await admin.put("/api/policy", json={"daily_send_cap": CAP})).status_code == 200
        first, second = [
            (await start_broadcast(admin, israeli_numbers(EACH, start=start)))["task"]["id"]
            for start in (450_000, 451_000)
        ]
        held = [await wait_for_status(admin, t, {"paused", "completed"}) for t in (first, second)]
        assert all(t["status"] == "paused" for t in held), held
        for task in held:
            assert "daily send cap is reached (150 messages per day)" in task["status_reason"]
            assert task["paused_by"] == "system" and task["pause_requested"] is False
        assert sum(t["success_count"] for t in held) == CAP
        assert (await sender_report(stack, business_id))["accepted"] == CAP
        async with stack.engine.connect() as conn:
            reserved = (
                await conn.execute(
                    text("SELECT reserved FROM business_send_days WHERE business_id = :b"),
                    {"b": business_id},
                )
            ).scalar_one()
        assert reserved == CAP

        # Raising the cap wakes both at once.
        raised = await admin.put("/api/policy", json={"daily_send_cap": 1000})
        assert raised.status_code == 200
        done = [
            await wait_for_status(admin, t, {"completed", "failed", "cancelled"})
            for t in (first, second)
        ]
    assert [(t["status"], t["success_count"]) for t in done] == [("completed", EACH)] * 2
    assert all(t["status_reason"] is None for t in done)
    report = await sender_report(stack, business_id)
    assert (report["accepted"], report["max_per_recipient"]) == (2 * EACH, 1)

    async def reserved_all() -> bool:
        async with stack.engine.connect() as conn:
            value = (
                await conn.execute(
                    text("SELECT reserved FROM business_send_days WHERE business_id = :b"),
                    {"b": business_id},
                )
            ).scalar_one()
        return bool(value == 2 * EACH)

    # Every reservation was either sent or given back: the day counts what went out.
    await wait_until(reserved_all, what="the day's count to match the sends")
