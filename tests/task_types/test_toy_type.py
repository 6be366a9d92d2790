"""The proof that a task type is one registry entry: a toy type defined in test code only
(tests/task_types/toy.py), registered on a worker and an API of its own, started through the
task service (by its intake route, and directly), watched to the end over REST and SSE."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from api.app import create_app
from api.deps import Resources
from longtasks.db.repositories import task_types as task_type_repo
from task_types import BUILTIN
from task_types.registry import Registry
from tests.conftest import (
    Stack,
    _free_port,
    running_worker,
    serve_api,
    wait_for_status,
)
from tests.task_types.toy import CREATE_TABLE, DROP_TABLE, TOY_TYPE, start_toy

WORDS = ["alpha", "beta", "", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


@dataclass
class ToyStack:
    registry: Registry
    queue: str
    api_url: str


@pytest.fixture
async def toy_stack(stack: Stack) -> AsyncIterator[ToyStack]:
    """The built-in types and the toy: a worker and an API of their own, on one task queue."""
    registry = BUILTIN.with_task_types(TOY_TYPE)
    queue, settings = stack.own_queue("toy")
    async with stack.engine.begin() as conn:
        await conn.execute(text(CREATE_TABLE))
    resources = Resources(settings=settings, engine=stack.app_engine, temporal=stack.client)
    port = _free_port()
    server, serving = await serve_api(create_app(settings, resources, registry=registry), port)
    try:
        async with running_worker(
            stack.client, settings, stack.app_engine, queue, registry=registry
        ):
            yield ToyStack(registry, queue, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await serving
        if resources.events is not None:
            await resources.events.close()
        async with stack.engine.begin() as conn:
            await conn.execute(text(DROP_TABLE))


@contextlib.asynccontextmanager
async def client_of(stack: Stack, url: str, business_id: int) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {stack.token(business_id, 'operator')}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        yield http


async def snapshots(http: httpx.AsyncClient, task_id: int) -> list[dict[str, Any]]:
    """Every SSE snapshot of the task until the stream ends (after the terminal one)."""
    seen: list[dict[str, Any]] = []
    async with http.stream("GET", f"/api/long_tasks/{task_id}/events") as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
    return seen


def assert_shouted(task: dict[str, Any]) -> None:
    assert task["task_type"] == "toy"
    assert task["status"] == "completed", task
    assert (task["total_items"], task["success_count"], task["failed_count"]) == (10, 9, 1)
    assert task["progress_pct"] == 100.0


async def test_a_toy_task_type_runs_end_to_end_from_its_registry_entry(
    stack: Stack, toy_stack: ToyStack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.engine.connect() as conn:
        assert "toy" in await task_type_repo.known(conn), "registered as the API started"

    async with client_of(stack, toy_stack.api_url, business_id) as http:
        # 1. Through its own intake route, which calls the task service.
        response = await http.post("/api/toys", json={"words": WORDS})
        assert response.status_code == 202, response.text
        started = response.json()["task"]
        assert (started["task_type"], started["status"]) == ("toy", "running")
        streamed = await snapshots(http, started["id"])
        assert_shouted(streamed[-1])
        # The stream is the shared one: snapshots in order, ending with the terminal one.
        versions = [s["version"] for s in streamed]
        assert versions == sorted(set(versions)), versions
        assert [s["status"] for s in streamed].count("completed") == 1

        # 2. Through the service directly, as a Schedule or a script would start it.
        task = await start_toy(
            stack.engine,
            stack.client,
            task_queue=toy_stack.queue,
            business_id=business_id,
            words=WORDS,
        )
        assert_shouted(await wait_for_status(http, task.id, {"completed", "failed"}))
        items = (await http.get(f"/api/long_tasks/{task.id}/items")).json()["items"]
        assert [i["provider_ref"] for i in items[:2]] == ["ALPHA", "BETA"]
        assert (items[2]["status"], items[2]["error_code"]) == ("failed", "empty")

        # Its API knows the type: filtering by it, and the spec's TaskType.
        listed = (await http.get("/api/long_tasks", params={"task_type": "toy"})).json()
        assert {t["id"] for t in listed["items"]} == {started["id"], task.id}
        spec = (await http.get("/openapi.json")).json()
        assert "toy" in spec["components"]["schemas"]["TaskType"]["enum"]
        assert "/api/toys" in spec["paths"]

    # The product's API, with the built-in registry, does not serve it.
    async with stack.http(business_id, "viewer") as product:
        refused = await product.get("/api/long_tasks", params={"task_type": "toy"})
        assert refused.status_code == 422
        spec = (await product.get("/openapi.json")).json()
        assert "toy" not in spec["components"]["schemas"]["TaskType"]["enum"]
        assert "/api/toys" not in spec["paths"]
