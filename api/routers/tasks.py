"""`/api/long_tasks`: list, read, cancel, delete, per-item outcomes and their CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from api.deps import Admin, Operator, Resources, ResourcesDep, TaskTypeFilter, Viewer
from api.errors import AppError, Conflict, NotFound
from api.exports import csv_cell
from api.schemas import (
    MAX_BIGINT,
    ItemOut,
    ItemPage,
    Limit,
    TaskEnvelope,
    TaskOut,
    TaskPage,
    cursor_int,
    decode_cursor,
    encode_cursor,
)
from api.task_views import task_view, task_views
from api.transactions import ExportConn, ReadConn, Transactions, TransactionsDep, WriteConn
from longtasks.db.models import LongRunningTask
from longtasks.db.repositories import audit, ledger
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.audit import AuditAction
from longtasks.domain import ItemStatus, TaskStatus
from longtasks.tasks import cancel_task

router = APIRouter(prefix="/api/long_tasks", tags=["long_tasks"])


async def load_task(conn: AsyncConnection, task_id: int, business_id: int) -> LongRunningTask:
    """Another business's task is 404, not 403: its existence is not revealed."""
    if not 0 < task_id <= MAX_BIGINT:  # not an id Postgres can hold
        raise NotFound(f"task {task_id} not found")
    task = await task_repo.get_task(conn, task_id, business_id=business_id)
    if task is None:
        raise NotFound(f"task {task_id} not found")
    return task


@router.get("", response_model=TaskPage)
async def list_tasks(
    resources: ResourcesDep,
    principal: Viewer,
    conn: ReadConn,
    task_type: TaskTypeFilter,
    status: TaskStatus | None = None,
    parent_task_id: Annotated[int | None, Query(gt=0, le=MAX_BIGINT)] = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> TaskPage:
    """The business's tasks, newest first (`parent_task_id`: the retries of one task)."""
    before_id = None
    if cursor is not None:
        before_id = cursor_int(decode_cursor(cursor))
    rows = await task_repo.list_tasks(
        conn,
        principal.business_id,
        limit=limit + 1,
        task_type=task_type,
        status=status,
        before_id=before_id,
        parent_task_id=parent_task_id,
    )
    items = await task_views(resources, conn, rows[:limit])
    next_cursor = encode_cursor(str(rows[limit - 1].id)) if len(rows) > limit else None
    return TaskPage(items=items, next_cursor=next_cursor)


async def render(
    resources: Resources, transactions: Transactions, task: LongRunningTask
) -> TaskOut:
    """A task as GET /api/long_tasks/{id} shows it, in a short transaction of its own: for the
    routes whose work is several transactions (see `Transactions`)."""
    async with transactions.read() as conn:
        return await task_view(resources, conn, task)


async def load_in_own_transaction(
    transactions: Transactions, task_id: int, business_id: int
) -> LongRunningTask:
    async with transactions.read() as conn:
        return await load_task(conn, task_id, business_id)


@router.get("/{task_id}", response_model=TaskOut)
async def get_task(
    task_id: int, resources: ResourcesDep, principal: Viewer, conn: ReadConn
) -> TaskOut:
    return await task_view(resources, conn, await load_task(conn, task_id, principal.business_id))


class CancelIn(BaseModel):
    reason: str = Field(default="cancelled by user", max_length=500)


@router.post(
    "/{task_id}/cancel",
    response_model=TaskEnvelope,
    status_code=202,
    responses={200: {"model": TaskEnvelope, "description": "already terminal"}},
)
async def cancel(
    task_id: int,
    resources: ResourcesDep,
    principal: Operator,
    transactions: TransactionsDep,
    response: Response,
    body: CancelIn | None = None,
) -> TaskEnvelope:
    """Idempotent: 202 while the task runs (cancelling), 200 with its state once terminal."""
    # Not one request transaction: `cancel_task` commits the flag before it tells Temporal
    # (so the cancel stays recorded when Temporal is down), in transactions of its own.
    async with transactions.read() as conn:
        task = await load_task(conn, task_id, principal.business_id)
        if task.is_terminal:  # nothing to cancel: shown from the snapshot it was read in
            response.status_code = 200
            return TaskEnvelope(task=await task_view(resources, conn, task))
    reason = body.reason if body is not None else "cancelled by user"
    updated = await cancel_task(resources.engine, resources.temporal_client, task, reason)
    if updated.is_terminal:
        response.status_code = 200
    return TaskEnvelope(task=await render(resources, transactions, updated))


@router.delete("/{task_id}", status_code=204, response_class=Response)
async def delete_task(task_id: int, principal: Admin, conn: WriteConn) -> Response:
    """Removes a terminal task and its ledger; 409 while it runs (cancel it first)."""
    task = await load_task(conn, task_id, principal.business_id)
    if not task.is_terminal:
        raise Conflict(f"task {task_id} is {task.status}; cancel it first")
    await task_repo.delete_task(conn, task_id)
    await audit.record(
        conn,
        AuditAction.task_deleted,
        task_id=task_id,
        details={"task_type": task.task_type, "status": task.status},
    )
    return Response(status_code=204)


def _item_cursor(cursor: str | None) -> tuple[int, str] | None:
    if cursor is None:
        return None
    seq, sep, key = decode_cursor(cursor).partition(":")
    if not sep:
        raise AppError("invalid cursor")
    return cursor_int(seq), key


@router.get("/{task_id}/items", response_model=ItemPage)
async def list_items(
    task_id: int,
    principal: Viewer,
    conn: ReadConn,
    status: ItemStatus | None = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> ItemPage:
    """Per-item outcomes in item order, with the provider's error code and message."""
    # The task and its items in one snapshot: a task deleted meanwhile is still found, with
    # the items it had.
    await load_task(conn, task_id, principal.business_id)
    items = await ledger.list_items(
        conn, task_id, status=status, after=_item_cursor(cursor), limit=limit + 1
    )
    next_cursor = None
    if len(items) > limit:
        last = items[limit - 1]
        next_cursor = encode_cursor(f"{last['seq']}:{last['item_key']}")
    return ItemPage(
        items=[ItemOut.model_validate(i) for i in items[:limit]], next_cursor=next_cursor
    )


CSV_COLUMNS = [
    "seq",
    "item_key",
    "label",
    "status",
    "error_code",
    "error_message",
    "provider_ref",
    "attempts",
    "updated_at",
    "delivery",
    "delivery_error_code",
    "accepted_at",
    "delivered_at",
    "read_at",
    "failed_at",
    "resends",
]


@router.get("/{task_id}/items.csv", response_class=StreamingResponse)
async def export_items(
    task_id: int,
    principal: Viewer,
    conn: ExportConn,
    status: ItemStatus | None = None,
) -> StreamingResponse:
    """The whole ledger of a task (or one status of it) as CSV, streamed in pages."""
    # The pages are read after the response has started, all in the snapshot of this first
    # read (`ExportConn` lasts until the last byte): the file is the ledger as of one moment.
    task = await load_task(conn, task_id, principal.business_id)

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        after: tuple[int, str] | None = None
        while True:
            items = await ledger.list_items(conn, task.id, status=status, after=after, limit=2000)
            for item in items:
                row = ItemOut.model_validate(item)
                writer.writerow([csv_cell(getattr(row, c)) for c in CSV_COLUMNS])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(items) < 2000:
                return
            after = (items[-1]["seq"], items[-1]["item_key"])

    filename = f"task-{task.id}-{status or 'all'}.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


__all__ = ["ItemOut", "router"]
