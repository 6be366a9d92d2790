"""Server-Sent Events: a task's snapshots as they change, and a business-wide stream.

Each event is `id: <task version>` and `data: <the same JSON as GET /api/long_tasks/{id}>`.
A reconnecting client sends `Last-Event-ID`; it gets the current snapshot at once only if the
task changed since. Keep-alive comments hold proxies open; the task stream ends after the
terminal snapshot.

A stream never holds a database transaction: it lives for minutes or hours, and a transaction
held that long would pin its snapshot (and vacuum) and a pool connection per watcher. It reads
each snapshot in a short transaction of its own (`Transactions.read`), only when the task changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from api.deps import Resources, ResourcesDep, Viewer
from api.events import Subscription, TaskEventHub
from api.routers.tasks import load_task
from api.schemas import TaskOut
from api.task_views import task_view, task_views
from api.transactions import ReadConn, Transactions, TransactionsDep
from longtasks.auth.tokens import Principal
from longtasks.db.models import LongRunningTask
from longtasks.db.repositories import revocations
from longtasks.db.repositories import tasks as task_repo

router = APIRouter(prefix="/api/long_tasks", tags=["events"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}


def hub_of(resources: Resources) -> TaskEventHub:
    if resources.events is None:
        resources.events = TaskEventHub(resources.engine.url.render_as_string(False))
    return resources.events


def sse(view: TaskOut, *, event_id: str | None = None) -> str:
    data = view.model_dump_json()
    return f"id: {event_id or view.version}\nevent: task\ndata: {data}\n\n"


async def _get(
    resources: Resources, transactions: Transactions, task_id: int, business_id: int
) -> tuple[LongRunningTask, TaskOut] | None:
    """The task's row and its snapshot (the same JSON as GET /api/long_tasks/{id}); None when
    it is gone or another business's (never read)."""
    async with transactions.read() as conn:
        task = await task_repo.get_task(conn, task_id, business_id=business_id)
        if task is None:
            return None
        return task, await task_view(resources, conn, task)


def _wait_s(resources: Resources, principal: Principal) -> float:
    """Until the next keep-alive, or the token's expiry if that comes first."""
    left = principal.expires_at - time.time()
    return max(0.05, min(resources.settings.sse_keepalive_s, left))


async def _token_ended(
    transactions: Transactions, principal: Principal, sub: Subscription, resync: bool
) -> bool:
    if sub.revoked or time.time() >= principal.expires_at:
        return True
    if not resync:
        return False
    # The LISTEN connection was lost: a revocation may have gone by unheard.
    async with transactions.read() as conn:
        return await revocations.is_revoked(
            conn, business_id=principal.business_id, jti=principal.jti
        )


@router.get("/events", response_class=StreamingResponse)
async def business_events(
    request: Request, resources: ResourcesDep, principal: Viewer, transactions: TransactionsDep
) -> StreamingResponse:
    """Every change of any of the business's tasks (new ones included), as task snapshots."""
    settings = resources.settings
    hub = hub_of(resources)

    async def stream() -> AsyncIterator[str]:
        token = (principal.business_id, principal.jti)
        async with hub.subscribe(token=token, business_id=principal.business_id) as sub:
            yield "retry: 2000\n\n"
            async with transactions.read() as conn:
                recent = await task_repo.list_tasks(conn, principal.business_id, limit=50)
                active = [t for t in recent if not t.is_terminal]
                views = await task_views(resources, conn, active)
            for view in views:
                yield sse(view, event_id=f"{view.id}.{view.version}")
            while not await request.is_disconnected():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        sub.changed.wait(), timeout=_wait_s(resources, principal)
                    )
                if await _token_ended(transactions, principal, sub, resync=False):
                    return
                if not sub.changed.is_set():
                    yield ": keep-alive\n\n"
                    continue
                await asyncio.sleep(settings.sse_coalesce_s)
                dirty, resync = sub.take()
                if await _token_ended(transactions, principal, sub, resync):
                    return
                for task_id in sorted(dirty):
                    changed = await _get(resources, transactions, task_id, principal.business_id)
                    if changed is not None:
                        view = changed[1]
                        yield sse(view, event_id=f"{view.id}.{view.version}")

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/{task_id}/events", response_class=StreamingResponse)
async def task_events(
    task_id: int,
    request: Request,
    resources: ResourcesDep,
    principal: Viewer,
    conn: ReadConn,
    transactions: TransactionsDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """A snapshot at each change of one task; ends after the terminal snapshot."""
    # `conn` ends when this function returns, before the stream's first byte.
    await load_task(conn, task_id, principal.business_id)
    settings = resources.settings
    hub = hub_of(resources)
    # A version is a bigint in ASCII digits: '²'.isdigit() is True but int('²') raises
    # (headers are latin-1), and int() refuses more than 4300 digits.
    last_sent = (
        int(last_event_id)
        if last_event_id
        and len(last_event_id) <= 19
        and last_event_id.isascii()
        and last_event_id.isdigit()
        else 0
    )

    async def stream() -> AsyncIterator[str]:
        nonlocal last_sent
        token = (principal.business_id, principal.jti)
        async with hub.subscribe(token=token, task_id=task_id) as sub:
            yield "retry: 2000\n\n"
            while True:
                current = await _get(resources, transactions, task_id, principal.business_id)
                if current is None:  # deleted while watched
                    return
                task, view = current
                if task.version > last_sent:
                    last_sent = task.version
                    yield sse(view)
                if task.is_terminal:
                    return
                while not sub.changed.is_set():
                    if await request.is_disconnected():
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            sub.changed.wait(), timeout=_wait_s(resources, principal)
                        )
                    if await _token_ended(transactions, principal, sub, resync=False):
                        return
                    if not sub.changed.is_set():
                        yield ": keep-alive\n\n"
                # Coalesce a burst of commits into one snapshot.
                await asyncio.sleep(settings.sse_coalesce_s)
                _, resync = sub.take()
                if await _token_ended(transactions, principal, sub, resync):
                    return

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)
