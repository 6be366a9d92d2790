"""Server-Sent Events driven by LISTEN/NOTIFY: order, reconnect, tenant rules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from tests.conftest import Stack, configure_sender, israeli_numbers, start_broadcast


async def events(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    event_id, data = "", ""
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            yield event_id, json.loads(data)
            event_id, data = "", ""


async def test_snapshots_arrive_in_order_and_the_stream_ends_at_the_terminal_one(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await configure_sender(stack, business_id, latency_ms=20)
    async with (
        stack.http(business_id, "viewer") as viewer,
        stack.http(business_id, "operator") as operator,
    ):
        started = await start_broadcast(operator, israeli_numbers(3000, start=80_000))
        task_id = started["task"]["id"]
        seen: list[tuple[int, dict[str, Any]]] = []
        async with viewer.stream("GET", f"/api/long_tasks/{task_id}/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for event_id, task in events(response):
                seen.append((int(event_id), task))
    versions = [v for v, _ in seen]
    processed = [t["processed_items"] for _, t in seen]
    assert versions == sorted(set(versions)), "ids strictly increase"
    assert processed == sorted(processed), "progress never goes back"
    assert len({p for p in processed if 0 < p < 3000}) >= 3, processed
    assert seen[-1][1]["status"] == "completed"
    assert seen[-1][1]["processed_items"] == 3000


async def test_reconnect_with_last_event_id_resumes_after_it(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await configure_sender(stack, business_id, latency_ms=20)
    async with stack.http(business_id, "operator") as http:
        started = await start_broadcast(http, israeli_numbers(2000, start=90_000))
        task_id = started["task"]["id"]
        first_ids: list[int] = []
        async with http.stream("GET", f"/api/long_tasks/{task_id}/events") as response:
            async for event_id, _ in events(response):
                first_ids.append(int(event_id))
                if len(first_ids) == 2:
                    break
        await asyncio.sleep(0.5)
        last = first_ids[-1]
        async with http.stream(
            "GET", f"/api/long_tasks/{task_id}/events", headers={"Last-Event-ID": str(last)}
        ) as response:
            resumed = [int(event_id) async for event_id, _ in events(response)]
    assert resumed, "the stream went on to the end"
    assert min(resumed) > last


async def test_another_business_cannot_subscribe(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    owner, intruder = await new_business(), await new_business()
    async with stack.http(owner, "operator") as http:
        started = await start_broadcast(http, israeli_numbers(5, start=95_000))
    task_id = started["task"]["id"]
    async with stack.http(intruder, "admin") as http:
        assert (await http.get(f"/api/long_tasks/{task_id}/events")).status_code == 404
        # Nor can it mint a ticket (what EventSource uses instead of a header) for that stream.
        minted = await http.post("/api/tickets", json={"path": f"/api/long_tasks/{task_id}/events"})
        assert minted.status_code == 404, minted.text
        # A ticket for its own business stream does not open another path.
        minted = await http.post("/api/tickets", json={"path": "/api/long_tasks/events"})
        assert minted.status_code == 201, minted.text
        ticket = minted.json()["ticket"]
    async with stack.http() as http:
        response = await http.get(f"/api/long_tasks/{task_id}/events")
        assert response.status_code == 401
        response = await http.get(f"/api/long_tasks/{task_id}/events", params={"ticket": ticket})
        assert response.status_code == 401
        assert response.json()["detail"] == "this ticket is for another resource"
        # A token in the URL is refused outright (it would sit in every access log).
        token = stack.token(intruder, "admin")
        response = await http.get(
            f"/api/long_tasks/{task_id}/events", params={"access_token": token}
        )
        assert response.status_code == 401
        assert "not accepted in URLs" in response.json()["detail"]


async def test_business_stream_announces_new_tasks_of_that_business_only(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id, other = await new_business(), await new_business()
    received: list[dict[str, Any]] = []
    async with stack.http(business_id, "viewer") as viewer:

        async def listen() -> None:
            async with viewer.stream("GET", "/api/long_tasks/events") as response:
                assert response.status_code == 200
                async for _, task in events(response):
                    received.append(task)
                    if task["status"] == "completed":
                        return

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.5)
        async with stack.http(other, "operator") as http:
            await start_broadcast(http, israeli_numbers(5, start=96_000))
        async with stack.http(business_id, "operator") as http:
            mine = await start_broadcast(http, israeli_numbers(5, start=97_000))
        await asyncio.wait_for(listener, timeout=30)
    assert {t["business_id"] for t in received} == {business_id}
    assert received[-1]["id"] == mine["task"]["id"]
