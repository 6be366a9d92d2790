"""Tickets: what a browser puts in a stream or download URL instead of its token."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable

import httpx

from tests.api.test_events import events
from tests.conftest import Stack, israeli_numbers, start_broadcast, wait_for_status
from tests.security.conftest import dedicated_api


async def test_a_ticket_opens_its_stream_and_its_csv_and_nothing_else(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "viewer") as viewer:
        async with stack.http(business_id, "operator") as operator:
            started = await start_broadcast(operator, [*israeli_numbers(3, start=610_000), "12"])
        task_id = started["task"]["id"]
        await wait_for_status(viewer, task_id, {"completed"})
        stream_path = f"/api/long_tasks/{task_id}/events"
        csv_path = f"/api/long_tasks/{task_id}/items.csv"
        stream = (await viewer.post("/api/tickets", json={"path": stream_path})).json()
        download = (await viewer.post("/api/tickets", json={"path": csv_path})).json()
        assert stream["url"] == f"{stream_path}?ticket={stream['ticket']}"
        refused = await viewer.post("/api/tickets", json={"path": f"/api/long_tasks/{task_id}"})
        assert refused.status_code == 422
        assert (await viewer.post("/api/tickets", json={"path": "/docs"})).status_code == 422

    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as anonymous:
        async with anonymous.stream("GET", stream["url"]) as response:
            assert response.status_code == 200
            snapshots = [task async for _, task in events(response)]
        assert snapshots[-1]["status"] == "completed"

        # The CSV's own parameters ride beside the ticket.
        response = await anonymous.get(download["url"] + "&status=failed")
        assert response.status_code == 200, response.text
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [r["label"] for r in rows] == ["12"]

        # Bound to its path: not the task itself, not the other ticket's path.
        for path, ticket in (
            (f"/api/long_tasks/{task_id}", stream["ticket"]),
            (csv_path, stream["ticket"]),
            (stream_path, download["ticket"]),
        ):
            response = await anonymous.get(path, params={"ticket": ticket})
            assert response.status_code == 401, (path, response.text)
        # GETs only.
        response = await anonymous.post(
            "/api/tickets", params={"ticket": stream["ticket"]}, json={"path": stream_path}
        )
        assert response.status_code == 401
        assert response.json()["detail"] == "tickets open GET requests only"
        # A forged or altered ticket.
        prefix, body, signature = stream["ticket"].split(".")
        for forged in (
            f"{prefix}.{body}.{signature[::-1]}",
            f"{prefix}.{body[:-2]}.{signature}",
            "t1..",
            "x" * 5000,
        ):
            response = await anonymous.get(stream_path, params={"ticket": forged})
            assert response.status_code == 401, forged[:40]


async def test_a_ticket_stops_opening_its_url_once_it_expires(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    token = stack.token(business_id, "viewer")
    async with (
        dedicated_api(stack, ticket_ttl_s=1) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=30) as http,
    ):
        minted = await http.post(
            "/api/tickets",
            json={"path": "/api/long_tasks/events"},
            headers={"Authorization": f"Bearer {token}"},
        )
        url = minted.json()["url"]
        await asyncio.sleep(2.1)
        response = await http.get(url)
        assert response.status_code == 401
        assert response.json()["detail"].startswith("ticket expired")
