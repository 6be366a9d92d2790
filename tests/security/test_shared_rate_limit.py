"""Request budgets that hold on more than one replica: two API processes on one database give
a caller one budget, and a flood of made-up tokens spends its sender's budget only: it cannot
clear anyone else's, and it leaves at most one row behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
from sqlalchemy import text

from tests.conftest import FaultReport, SecurityRow, Stack, _free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
BURST = 6
RATE = 0.001  # one request every 1000 s: nothing refills while a test runs, however slow


@contextlib.asynccontextmanager
async def api_process(stack: Stack) -> AsyncIterator[str]:
    """`longtasks api` as its own process, on the stack's database, with a small budget."""
    port = _free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": str(stack.settings.database_url),
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_RATE_LIMIT_PER_S": str(RATE),
        "API_RATE_LIMIT_BURST": str(BURST),
        "TEMPORAL_ADDRESS": stack.settings.temporal_address,
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for below
        [sys.executable, "-m", "cli", "api"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    async def up() -> bool:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        try:
            async with httpx.AsyncClient(base_url=url, timeout=2) as http:
                return (await http.get("/healthz")).status_code in (200, 503)
        except httpx.TransportError:
            return False

    try:
        await wait_until(up, timeout_s=60, what="the API process")
        yield url
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 20)
        if proc.stderr:
            proc.stderr.close()


async def test_two_api_processes_give_a_caller_one_budget(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    business_id = await new_business()
    token = stack.token(business_id, "viewer", user=f"two-replicas-{uuid.uuid4().hex}")
    headers = {"Authorization": f"Bearer {token}"}
    async with api_process(stack) as first, api_process(stack) as second:
        codes = []
        async with (
            httpx.AsyncClient(base_url=first, headers=headers, timeout=30) as a,
            httpx.AsyncClient(base_url=second, headers=headers, timeout=30) as b,
        ):
            for i in range(BURST * 2):  # alternate, as a load balancer would
                replica = a if i % 2 == 0 else b
                codes.append((await replica.get("/api/long_tasks")).status_code)
            # Together, concurrently: still nothing past the one budget.
            more = await asyncio.gather(
                *(c.get("/api/long_tasks") for c in (a, b) for _ in range(5))
            )
    assert codes[:BURST] == [200] * BURST, codes
    assert codes[BURST:] == [429] * BURST, codes
    assert {r.status_code for r in more} == {429}
    fault_report.add_security(
        SecurityRow(
            area="rate limit",
            check=f"two `longtasks api` processes on one database, one caller alternating"
            f" (burst {BURST}), then 10 concurrent",
            cases=BURST * 2 + 10,
            outcome=f"{BURST} admitted in all (one budget, not two); the rest 429",
        )
    )


async def test_a_flood_of_made_up_tokens_clears_no_one_budget(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    from tests.security.conftest import dedicated_api

    business_id = await new_business()
    victim = stack.token(business_id, "viewer", user=f"victim-{uuid.uuid4().hex}")
    bystander = stack.token(business_id, "viewer", user=f"bystander-{uuid.uuid4().hex}")
    flood = 1500
    async with (
        dedicated_api(stack, api_rate_limit_per_s=RATE, api_rate_limit_burst=BURST) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):

        async def get(token: str) -> int:
            response = await http.get(
                "/api/long_tasks", headers={"Authorization": f"Bearer {token}"}
            )
            return response.status_code

        assert [await get(victim) for _ in range(BURST + 1)] == [200] * BURST + [429]
        async with stack.engine.begin() as conn:
            # The flood's address starts with a full budget, whatever earlier tests spent.
            await conn.execute(text("DELETE FROM api_rate_limits WHERE key = 'ip:127.0.0.1'"))
            rows_before = (
                await conn.execute(text("SELECT count(*) FROM api_rate_limits"))
            ).scalar_one()
        made_up = [f"eyJhbGciOiJIUzI1NiJ9.{uuid.uuid4().hex}.{i}" for i in range(flood)]
        codes: list[int] = []
        for batch in range(0, flood, 100):
            codes += await asyncio.gather(*(get(t) for t in made_up[batch : batch + 100]))
        async with stack.engine.connect() as conn:
            rows_after = (
                await conn.execute(text("SELECT count(*) FROM api_rate_limits"))
            ).scalar_one()
        # Keyed by the sender's address: a burst's worth are 401 (bad token), the rest 429.
        assert codes.count(401) == BURST, codes.count(401)
        assert codes.count(429) == flood - BURST
        # The victim's budget was not reset, nor anyone else's touched.
        assert await get(victim) == 429
        assert await get(bystander) == 200
        # One row for the flood's address, one for the bystander: memory did not grow with it.
        assert rows_after - rows_before <= 2, (rows_before, rows_after)
    fault_report.add_security(
        SecurityRow(
            area="rate limit",
            check=f"{flood:,} requests with made-up tokens after a caller spent its budget",
            cases=flood,
            outcome=f"{BURST} answered 401, the rest 429 (the sender's address's budget); the"
            " spent budget stayed spent; at most 2 new budget rows",
        )
    )
