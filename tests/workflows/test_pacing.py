"""Sends are paced per sender number across all workers, not per worker."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy import text
from temporalio.client import Client

from tests.conftest import (
    Stack,
    configure_sender,
    israeli_numbers,
    running_worker,
    sender_report,
    start_broadcast,
    wait_for_status,
)


async def test_two_workers_together_keep_the_sender_under_its_rate(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    limit = 40.0
    async with stack.engine.begin() as conn:
        await conn.execute(
            text("UPDATE businesses SET whatsapp_messages_per_s = :r WHERE id = :id"),
            {"r": limit, "id": business_id},
        )
    # The provider refuses (429) anything above the limit in any one-second window.
    await configure_sender(stack, business_id, rate_limit_per_s=limit, latency_ms=10)
    rate_limited_before = stack.sandbox.whatsapp.stats.rate_limited
    total = 240
    # A second worker (its own connection, as another process would have) on the same queue.
    second = await Client.connect(stack.client.service_client.config.target_host)
    async with (
        running_worker(second, stack.settings, stack.app_engine, stack.task_queue),
        stack.http(business_id, "operator") as http,
    ):
        started = await start_broadcast(http, israeli_numbers(total, start=120_000))
        task = await wait_for_status(http, started["task"]["id"], {"completed", "failed"})
    assert (task["status"], task["success_count"]) == ("completed", total)
    # Paced, not hammering: at most a stray 429 when a loaded machine wakes a send late
    # (the bench measures the clean case: zero 429s at >= 95% of the limit).
    assert stack.sandbox.whatsapp.stats.rate_limited - rate_limited_before <= total // 50
    async with httpx.AsyncClient(base_url=stack.sandbox_url) as http:
        times = sorted(
            (
                await http.get(f"/sandbox/whatsapp/senders/pn-{business_id}", params={"times": "1"})
            ).json()["accept_times"]
        )
    achieved = (len(times) - 1) / (times[-1] - times[0])
    # Never faster than the sender's rate, however the two workers interleave. How close to the
    # rate they get is a speed figure, so the benchmark shows it (rate limit scenario, >= 95%);
    # a lower bound here failed only when the machine was overloaded (load average 10+).
    assert achieved <= limit, achieved
    assert (await sender_report(stack, business_id))["accepted"] == total
