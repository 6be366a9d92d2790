"""Revocation: `POST /api/tokens/revoke` ends a token on every replica, its tickets with it, and
the streams opened with it, within moments; an admin revokes their own business's tokens only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import httpx

from tests.conftest import FaultReport, SecurityRow, Stack, israeli_numbers, start_broadcast
from tests.security.conftest import dedicated_api


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_revoked_token_is_refused_and_only_that_one(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    business_id = await new_business()
    jti = f"revoke-me-{uuid.uuid4().hex}"
    victim = stack.token(business_id, "operator", user="sam", jti=jti)
    same_user_other_token = stack.token(business_id, "operator", user="sam")
    async with stack.http() as http:
        assert (await http.get("/api/long_tasks", headers=bearer(victim))).status_code == 200
        # A ticket minted before the revocation...
        minted = await http.post(
            "/api/tickets", json={"path": "/api/long_tasks/events"}, headers=bearer(victim)
        )
        assert minted.status_code == 201, minted.text
        ticket = minted.json()["ticket"]

        operator_try = await http.post(
            "/api/tokens/revoke", json={"jti": jti}, headers=bearer(victim)
        )
        assert operator_try.status_code == 403
        admin = stack.token(business_id, "admin", user="alex")
        for _ in range(2):  # idempotent
            revoked = await http.post(
                "/api/tokens/revoke", json={"jti": jti}, headers=bearer(admin)
            )
            assert revoked.status_code == 200, revoked.text
            assert revoked.json()["jti"] == jti
            assert revoked.json()["revoked_by"] == "alex"

        refused = await http.get("/api/long_tasks", headers=bearer(victim))
        assert refused.status_code == 401
        assert refused.json()["detail"] == "token revoked"
        # ...no longer opens its URL either.
        response = await http.get("/api/long_tasks/events", params={"ticket": ticket})
        assert response.status_code == 401
        # The same user's other tokens are not affected.
        assert (
            await http.get("/api/long_tasks", headers=bearer(same_user_other_token))
        ).status_code == 200
    fault_report.add_security(
        SecurityRow(
            area="tokens",
            check="revoked token: its requests and its tickets; an operator revoking",
            cases=4,
            outcome="401 'token revoked' for both; operator 403; other tokens unaffected",
        )
    )


async def test_an_admin_cannot_revoke_another_business_token(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    mine, theirs = await new_business(), await new_business()
    jti = f"shared-{uuid.uuid4().hex}"
    their_token = stack.token(theirs, "viewer", jti=jti)
    my_token_with_that_jti = stack.token(mine, "viewer", jti=jti)
    async with stack.http(mine, "admin") as http:
        revoked = await http.post("/api/tokens/revoke", json={"jti": jti})
        assert revoked.status_code == 200
        # The denylist entry is this business's: the other business's token still works.
        assert (await http.get("/api/long_tasks", headers=bearer(their_token))).status_code == 200
        assert (
            await http.get("/api/long_tasks", headers=bearer(my_token_with_that_jti))
        ).status_code == 401


async def _read_until_closed(response: httpx.Response) -> int:
    lines = 0
    async for _ in response.aiter_lines():
        lines += 1
    return lines


async def test_open_streams_end_when_their_token_is_revoked_on_another_replica(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "operator") as http:
        # A scheduled task: its stream would stay open for an hour.
        started = await start_broadcast(
            http, israeli_numbers(2, start=700_000), start_at="2100-01-01T00:00:00Z"
        )
    task_id = started["task"]["id"]
    jti = f"streamer-{uuid.uuid4().hex}"
    watcher = stack.token(business_id, "viewer", jti=jti)
    async with (
        dedicated_api(stack) as replica_url,
        httpx.AsyncClient(base_url=replica_url, headers=bearer(watcher), timeout=60) as replica,
    ):
        minted = await replica.post("/api/tickets", json={"path": "/api/long_tasks/events"})
        ticket_url = minted.json()["url"]
        async with (
            replica.stream("GET", f"/api/long_tasks/{task_id}/events") as task_stream,
            replica.stream("GET", "/api/long_tasks/events") as business_stream,
            httpx.AsyncClient(base_url=replica_url, timeout=60) as anonymous,
            anonymous.stream("GET", ticket_url) as ticket_stream,
        ):
            for response in (task_stream, business_stream, ticket_stream):
                assert response.status_code == 200
            readers = [
                asyncio.create_task(_read_until_closed(r))
                for r in (task_stream, business_stream, ticket_stream)
            ]
            await asyncio.sleep(1.0)
            assert not any(r.done() for r in readers), "the streams stay open until revoked"
            async with stack.http(business_id, "admin") as admin:  # the other replica
                revoked = await admin.post("/api/tokens/revoke", json={"jti": jti})
                assert revoked.status_code == 200
            # A liveness bound, not a timing claim: the NOTIFY reaches the replica in moments.
            lines = await asyncio.wait_for(asyncio.gather(*readers), timeout=30)
            assert all(n > 0 for n in lines)
    fault_report.add_security(
        SecurityRow(
            area="tokens",
            check="open SSE streams (task, business, ticket-opened) on replica B;"
            " token revoked on replica A",
            cases=3,
            outcome="all three streams ended",
        )
    )
