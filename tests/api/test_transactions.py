"""The request's transaction (api/transactions.py): on an app with a test-only router mounted,
and on the task routes that read a task and its items.

The app has an engine of its own, so the pool's count of checked-out connections is this
test's alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from api.app import create_app
from api.deps import Resources
from api.errors import Conflict
from api.transactions import ExportConn, ReadConn, WriteConn
from longtasks.db.engine import create_engine
from longtasks.db.repositories import ledger
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.ledger import ClaimRequest, Outcome
from longtasks.domain import ItemStatus
from tests.conftest import (
    Stack,
    _free_port,
    create_broadcast_task,
    israeli_numbers,
    serve_api,
    wait_until,
)

PROBE = "test_transaction_probe"


@dataclass
class Gates:
    """Lets a test step a streaming route: it waits on `resume` after its first chunk."""

    resume: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)


def probe_router(gates: Gates) -> APIRouter:
    router = APIRouter(prefix="/api/test/tx")

    @router.post("/{key}")
    async def write(key: str, conn: WriteConn, then: str = "return") -> dict[str, str]:
        await conn.execute(text(f"INSERT INTO {PROBE} (key) VALUES (:k)"), {"k": key})
        if then == "raise":
            raise Conflict("refused after the write")
        if then == "fail_commit":
            # The unique constraint is deferred: the second row fails the COMMIT, not this
            # statement, so only a commit before the response can turn it into an error.
            await conn.execute(text(f"INSERT INTO {PROBE} (key) VALUES (:k)"), {"k": key})
        return {"written": key}

    @router.get("/settings")
    async def settings(conn: ReadConn) -> dict[str, str]:
        row = (
            await conn.execute(
                text(
                    "SELECT current_setting('transaction_read_only'),"
                    " current_setting('transaction_isolation')"
                )
            )
        ).one()
        return {"read_only": row[0], "isolation": row[1]}

    @router.get("/stream")
    async def stream(conn: ExportConn, prefix: str) -> StreamingResponse:
        count = text(f"SELECT count(*) FROM {PROBE} WHERE key LIKE :p")

        async def chunks() -> AsyncIterator[str]:
            try:
                first = (await conn.execute(count, {"p": f"{prefix}%"})).scalar_one()
                yield f"{first}\n"
                await gates.resume.wait()
                later = (await conn.execute(count, {"p": f"{prefix}%"})).scalar_one()
                yield f"{later}\n"
            finally:
                gates.finished.set()

        return StreamingResponse(chunks(), media_type="text/plain")

    return router


@dataclass
class ProbeApi:
    http: httpx.AsyncClient
    engine: AsyncEngine
    gates: Gates
    stack: Stack
    url: str

    def client(self, business_id: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.stack.token(business_id, 'viewer')}"},
            timeout=30,
        )

    async def rows(self, prefix: str) -> list[str]:
        async with self.engine.connect() as conn:
            result = await conn.execute(
                text(f"SELECT key FROM {PROBE} WHERE key LIKE :p ORDER BY key"),
                {"p": f"{prefix}%"},
            )
            return [r[0] for r in result]


@pytest.fixture
async def probe_api(stack: Stack) -> AsyncIterator[ProbeApi]:
    engine = create_engine(stack.settings.database_url or "", pool_size=4)
    # The owner creates the probe table (the application's role may not) and lets the
    # application's role, which the app's engine connects as, use it.
    app_role = make_url(stack.settings.database_url or "").username
    async with stack.engine.begin() as conn:
        await conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {PROBE} (key text,"
                " CONSTRAINT test_transaction_probe_key UNIQUE (key) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        await conn.execute(text(f'GRANT SELECT, INSERT ON {PROBE} TO "{app_role}"'))
    gates = Gates()
    app = create_app(stack.settings, Resources(settings=stack.settings, engine=engine))
    app.include_router(probe_router(gates))
    port = _free_port()
    server, task = await serve_api(app, port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {stack.token(1, 'viewer')}"},
            timeout=30,
        ) as http:
            yield ProbeApi(http=http, engine=engine, gates=gates, stack=stack, url=url)
    finally:
        server.should_exit = True
        await task
        async with stack.engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {PROBE}"))
        await engine.dispose()


def new_key() -> str:
    return uuid.uuid4().hex


async def test_a_write_commits_when_the_route_returns(probe_api: ProbeApi) -> None:
    key = new_key()
    response = await probe_api.http.post(f"/api/test/tx/{key}")
    assert response.status_code == 200, response.text
    assert await probe_api.rows(key) == [key]


async def test_an_error_raised_after_a_write_rolls_it_back(probe_api: ProbeApi) -> None:
    key = new_key()
    response = await probe_api.http.post(f"/api/test/tx/{key}", params={"then": "raise"})
    assert response.status_code == 409
    assert response.json() == {"detail": "refused after the write"}
    assert await probe_api.rows(key) == []


async def test_a_commit_that_fails_is_the_answer_not_a_200(probe_api: ProbeApi) -> None:
    """The transaction ends before the response is sent, so its failure is what the client
    hears (503, as for any database error) and nothing of it stays."""
    key = new_key()
    response = await probe_api.http.post(f"/api/test/tx/{key}", params={"then": "fail_commit"})
    assert response.status_code == 503, response.text
    assert await probe_api.rows(key) == []
    # The connection went back to the pool, not left in a failed transaction.
    assert probe_api.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_reads_are_one_read_only_snapshot(probe_api: ProbeApi) -> None:
    response = await probe_api.http.get("/api/test/tx/settings")
    assert response.status_code == 200, response.text
    assert response.json() == {"read_only": "on", "isolation": "repeatable read"}
    # The pool resets both when the connection comes back: the next write is a plain one.
    key = new_key()
    assert (await probe_api.http.post(f"/api/test/tx/{key}")).status_code == 200
    assert await probe_api.rows(key) == [key]


async def test_an_export_reads_one_snapshot_until_its_last_byte(probe_api: ProbeApi) -> None:
    """A streamed response's transaction outlives the route (which returned before the first
    chunk was read) and sees the snapshot of its first read to the end."""
    prefix = new_key()
    assert (await probe_api.http.post(f"/api/test/tx/{prefix}-a")).status_code == 200
    async with probe_api.http.stream(
        "GET", "/api/test/tx/stream", params={"prefix": prefix}
    ) as response:
        assert response.status_code == 200
        lines = response.aiter_lines()
        assert await anext(lines) == "1"
        # Committed while the stream is open, after its first read.
        assert (await probe_api.http.post(f"/api/test/tx/{prefix}-b")).status_code == 200
        assert probe_api.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        probe_api.gates.resume.set()
        assert await anext(lines) == "1"
    await wait_until(
        lambda: _no_connection_out(probe_api.engine), what="the export's connection returned"
    )
    assert await probe_api.rows(prefix) == [f"{prefix}-a", f"{prefix}-b"]


async def test_a_client_leaving_an_export_gives_its_connection_back(probe_api: ProbeApi) -> None:
    prefix = new_key()
    async with probe_api.http.stream(
        "GET", "/api/test/tx/stream", params={"prefix": prefix}
    ) as response:
        lines = response.aiter_lines()
        assert await anext(lines) == "0"
        assert probe_api.engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    # The client hung up while the route waits: the stream ends and the transaction with it.
    await asyncio.wait_for(probe_api.gates.finished.wait(), timeout=30)
    await wait_until(
        lambda: _no_connection_out(probe_api.engine), what="the export's connection returned"
    )


# -- the task routes --------------------------------------------------------------------------


async def task_with_items(stack: Stack, business_id: int, count: int) -> int:
    """A running task (no workflow behind it) whose `count` items all succeeded."""
    task_id = await create_broadcast_task(stack.engine, business_id, israeli_numbers(count))
    keys = [f"item-{i:05d}" for i in range(1, count + 1)]
    async with stack.engine.begin() as conn:
        await ledger.claim(
            conn, task_id, [ClaimRequest(key, seq, None) for seq, key in enumerate(keys, 1)]
        )
        await ledger.settle(conn, task_id, [Outcome(key, ItemStatus.succeeded) for key in keys])
    return task_id


@contextlib.asynccontextmanager
async def items_changed_while_read(stack: Stack, task_id: int) -> AsyncIterator[None]:
    """Holds the ledger locked while the block sends a request; once that request waits to
    read the ledger (it has read its task by then), marks every item of the task failed and
    commits, which lets the request's read go on. A read in the request's first snapshot sees
    the items as they were; a read in a later one sees them failed."""
    async with stack.engine.connect() as locker, locker.begin():
        await locker.execute(text("LOCK TABLE task_items IN ACCESS EXCLUSIVE MODE"))
        yield
        await wait_until(lambda: _waits_for_the_ledger(stack), what="the request to read items")
        await locker.execute(
            text("UPDATE task_items SET status = 'failed' WHERE task_id = :t"), {"t": task_id}
        )


async def _waits_for_the_ledger(stack: Stack) -> bool:
    async with stack.engine.connect() as conn:
        waiting = await conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%FROM task_ledger%'"
            )
        )
        return bool(waiting.scalar_one())


async def test_a_task_and_its_items_are_read_in_one_snapshot(
    probe_api: ProbeApi, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    task_id = await task_with_items(probe_api.stack, business_id, 3)
    async with probe_api.client(business_id) as http:
        async with items_changed_while_read(probe_api.stack, task_id):
            request = asyncio.create_task(http.get(f"/api/long_tasks/{task_id}/items"))
        response = await request
    assert response.status_code == 200, response.text
    assert [i["status"] for i in response.json()["items"]] == ["succeeded"] * 3


async def test_a_csv_export_is_the_ledger_of_one_moment(
    probe_api: ProbeApi, new_business: Callable[[], Awaitable[int]]
) -> None:
    """2,500 items: two pages, both read after the response started, in the snapshot of the
    task's read."""
    business_id = await new_business()
    task_id = await task_with_items(probe_api.stack, business_id, 2500)
    async with probe_api.client(business_id) as http:
        async with items_changed_while_read(probe_api.stack, task_id):
            request = asyncio.create_task(http.get(f"/api/long_tasks/{task_id}/items.csv"))
        response = await request
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2500
    assert {r["status"] for r in rows} == {"succeeded"}
    await wait_until(lambda: _no_connection_out(probe_api.engine), what="the connection back")


async def test_an_event_stream_holds_no_connection_between_changes(
    probe_api: ProbeApi, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    task_id = await create_broadcast_task(probe_api.stack.engine, business_id, israeli_numbers(1))
    async with (
        probe_api.client(business_id) as http,
        http.stream("GET", f"/api/long_tasks/{task_id}/events") as response,
    ):
        assert response.status_code == 200
        lines = response.aiter_lines()
        first = await _next_data(lines)
        assert first["id"] == task_id
        assert checked_out(probe_api.engine) == 0
        async with probe_api.stack.engine.begin() as conn:
            await task_repo.set_status_reason(conn, task_id, "changed while watched")
        changed = await _next_data(lines)
        assert changed["status_reason"] == "changed while watched"
        assert checked_out(probe_api.engine) == 0


async def _next_data(lines: AsyncIterator[str]) -> dict[str, Any]:
    async for line in lines:
        if line.startswith("data: "):
            data: dict[str, Any] = json.loads(line[len("data: ") :])
            return data
    raise AssertionError("the stream ended")


def checked_out(engine: AsyncEngine) -> int:
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedout()


async def _no_connection_out(engine: AsyncEngine) -> bool:
    return checked_out(engine) == 0
