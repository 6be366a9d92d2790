"""Starting and cancelling tasks: the steps every task type shares.

Start: one transaction writes the domain rows and the task row, then the workflow is started
with ids only. If Temporal refuses, the row says so (`failed` with the reason) and the caller
gets 503: a row is never left `running` with no workflow behind it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Resources
from api.errors import Unavailable
from longtasks.contracts.tasks import CancelSignal
from longtasks.db.repositories import businesses
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.tasks import TaskRow
from longtasks.domain import TaskStatus
from longtasks.temporal.tasks import signal_cancel, start_task_workflow

log = logging.getLogger("longtasks.api")

T = TypeVar("T")


async def start_task(
    resources: Resources,
    *,
    business_id: int,
    task_type: str,
    total_items: int,
    priority: str,
    start_at: dt.datetime | None,
    summary: Callable[[TaskRow, T], str],
    create_domain_rows: Callable[[AsyncConnection, TaskRow], Awaitable[T]],
) -> tuple[TaskRow, T]:
    client = await resources.temporal_client()
    async with resources.engine.begin() as conn:
        await businesses.ensure_business(conn, business_id)
        task = await task_repo.create_task(
            conn,
            business_id=business_id,
            task_type=task_type,
            total_items=total_items,
            priority=priority,
            start_at=start_at,
        )
        domain = await create_domain_rows(conn, task)
    try:
        await start_task_workflow(
            client,
            workflow_name=task_type,
            task_queue=resources.settings.temporal_task_queue,
            task_id=task.id,
            business_id=business_id,
            task_type=task_type,
            summary=summary(task, domain),
            priority=priority,
            start_at=start_at,
        )
    except Exception as exc:
        log.exception("starting workflow for task %s failed", task.id)
        async with resources.engine.begin() as conn:
            await task_repo.finish(
                conn,
                task.id,
                TaskStatus.failed,
                error_message=f"could not start the workflow: {exc}",
            )
        raise Unavailable(f"the task could not be started (Temporal: {exc}); retry later") from exc
    return task, domain


async def cancel_task(resources: Resources, task: TaskRow, reason: str) -> TaskRow:
    """Raise the flag (visible at once), then signal the workflow. Idempotent."""
    async with resources.engine.begin() as conn:
        updated = await task_repo.request_cancel(conn, task.id, reason)
    if updated is None:  # already terminal
        return task
    client = await resources.temporal_client()
    try:
        await signal_cancel(client, task.id, CancelSignal(reason=reason, source="api"))
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise Unavailable(
                f"cancel recorded, but Temporal could not be told yet ({exc}); the task's"
                " activities stop on the flag and the cancel can be repeated"
            ) from exc
        # No running workflow behind a non-terminal row: close the row here, nothing else will.
        async with resources.engine.begin() as conn:
            closed = await task_repo.finish(conn, task.id, TaskStatus.cancelled)
        return closed or updated
    return updated
