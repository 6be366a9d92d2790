"""Per-caller rate limiting (429 with Retry-After; another caller is unaffected) and CORS (closed
by default, open only to the configured origins), each on a dedicated API instance. Budgets
shared by replicas: tests/security/test_shared_rate_limit.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from tests.conftest import FaultReport, HostileRow, Stack
from tests.security.conftest import HostileTally, dedicated_api

BURST = 5
RATE = 0.25  # a token every 4 s: the floods below take far less


async def test_rate_limit_is_per_caller_with_retry_after(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    business_id = await new_business()
    other_business = await new_business()
    flooder = stack.token(business_id, "viewer", user="flooder")
    # The same user's other token shares the budget: minting more tokens buys nothing.
    flooder_again = stack.token(business_id, "admin", user="flooder")
    # Same business, another user: a budget of its own.
    bystander = stack.token(business_id, "operator", user="bystander")
    stranger = stack.token(other_business, "viewer")
    async with (
        dedicated_api(stack, api_rate_limit_per_s=RATE, api_rate_limit_burst=BURST) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        tally = HostileTally(http)
        flood = [
            await tally.send(
                "GET", "/api/long_tasks", headers={"Authorization": f"Bearer {flooder}"}
            )
            for _ in range(BURST + 10)
        ]
        codes = [r.status_code for r in flood]
        assert codes[:BURST] == [200] * BURST, codes
        assert set(codes[BURST:]) == {429}, codes
        limited = flood[-1]
        assert limited.json() == {"detail": "rate limit exceeded"}
        retry_after = int(limited.headers["Retry-After"])
        assert 1 <= retry_after <= 1 / RATE
        response = await tally.send(
            "GET", "/api/long_tasks", headers={"Authorization": f"Bearer {flooder_again}"}
        )
        assert response.status_code == 429

        # A concurrent flood is limited the same way: at most the burst gets through.
        flooder2 = stack.token(other_business, "admin", user="flooder2")
        burst = await asyncio.gather(
            *(
                tally.send(
                    "GET", "/api/long_tasks", headers={"Authorization": f"Bearer {flooder2}"}
                )
                for _ in range(BURST * 4)
            )
        )
        passed = sum(r.status_code == 200 for r in burst)
        assert passed in (BURST, BURST + 1), [r.status_code for r in burst]
        assert sum(r.status_code == 429 for r in burst) == BURST * 4 - passed

        # Other callers are not affected.
        for token in (bystander, stranger):
            response = await http.get(
                "/api/long_tasks", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.text
        # Outside /api (health checks, the web page) there is no limit.
        assert (await http.get("/healthz")).status_code == 200

        # After Retry-After the flooder gets through again.
        await asyncio.sleep(retry_after)
        response = await http.get("/api/long_tasks", headers={"Authorization": f"Bearer {flooder}"})
        assert response.status_code == 200, response.text
    fault_report.add_hostile(
        HostileRow(
            scenario=f"request flood by one caller (burst {BURST}, {RATE}/s), serial, concurrent"
            " and with a second token",
            requests=tally.sent,
            server_errors=len(tally.server_errors),
            outcome="429 with Retry-After past the burst; other callers unaffected",
        )
    )
    assert not tally.server_errors


FOREIGN = "https://evil.example"
ALLOWED = "https://app.example"


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }


async def test_cors_is_closed_by_default(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    assert stack.settings.cors_origins == []
    business_id = await new_business()
    async with stack.http(business_id, "viewer") as http:
        tally = HostileTally(http)
        response = await tally.send("GET", "/api/long_tasks", headers={"Origin": FOREIGN})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-credentials" not in response.headers
        preflight = await tally.send("OPTIONS", "/api/broadcasts", headers=_preflight(FOREIGN))
        assert preflight.status_code >= 400, preflight.status_code
        assert "access-control-allow-origin" not in preflight.headers
        assert "access-control-allow-methods" not in preflight.headers
    fault_report.add_hostile(
        HostileRow(
            scenario="cross-origin reads and preflights, CORS not configured",
            requests=tally.sent,
            server_errors=len(tally.server_errors),
            outcome="no Access-Control-Allow-Origin; preflight refused",
        )
    )
    assert not tally.server_errors


async def test_cors_opens_only_to_configured_origins(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    business_id = await new_business()
    token = stack.token(business_id, "viewer")
    async with (
        dedicated_api(stack, cors_origins=[ALLOWED]) as base_url,
        httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http,
    ):
        tally = HostileTally(http)
        response = await tally.send("GET", "/api/long_tasks", headers={"Origin": ALLOWED})
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ALLOWED
        preflight = await tally.send("OPTIONS", "/api/broadcasts", headers=_preflight(ALLOWED))
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ALLOWED
        assert "POST" in preflight.headers["access-control-allow-methods"]

        for origin in (FOREIGN, "null", ALLOWED + ".evil.example", "http://app.example"):
            response = await tally.send("GET", "/api/long_tasks", headers={"Origin": origin})
            assert "access-control-allow-origin" not in response.headers, origin
            preflight = await tally.send("OPTIONS", "/api/broadcasts", headers=_preflight(origin))
            assert preflight.status_code >= 400, (origin, preflight.status_code)
            assert "access-control-allow-origin" not in preflight.headers, origin
        # A method the API does not allow cross-origin is refused even for the allowed origin.
        put = {**_preflight(ALLOWED), "Access-Control-Request-Method": "PUT"}
        assert (await tally.send("OPTIONS", "/api/broadcasts", headers=put)).status_code >= 400
    fault_report.add_hostile(
        HostileRow(
            scenario="cross-origin reads and preflights, one origin configured",
            requests=tally.sent,
            server_errors=len(tally.server_errors),
            outcome="only the configured origin is allowed (exact match)",
        )
    )
    assert not tally.server_errors
