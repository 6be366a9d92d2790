"""`cancel_task`: the flag first (visible at once, and what page activities stop on), then the
signal to the workflow; the Temporal UI's Cancel button takes the same graceful path inside
the workflow. Idempotent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from longtasks.contracts.tasks import CancelSignal
from longtasks.db.models import LongRunningTask
from longtasks.db.repositories import audit
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.audit import AuditAction
from longtasks.db.tenancy import acting_for
from longtasks.domain import TaskStatus
from longtasks.tasks.errors import CancelNotDelivered
from longtasks.temporal.tasks import signal_cancel


async def cancel_task(
    engine: AsyncEngine,
    temporal: Callable[[], Awaitable[Client]],
    task: LongRunningTask,
    reason: str,
    *,
    bulk: bool = False,
) -> LongRunningTask:
    """Cancel a task; the row as it is now (the same row when it had already ended).

    `temporal` gives the client only once the flag is set: a cancel is recorded even while
    Temporal is unreachable. Raises `CancelNotDelivered` when the signal could not be sent.
    The audit log records the cancel (by the request's actor) when it is the first: a
    repeat changes nothing. It acts for the task's business (db.tenancy), whoever calls.
    """
    with acting_for(task.business_id):
        return await _cancel(engine, temporal, task, reason, bulk)


async def _cancel(
    engine: AsyncEngine,
    temporal: Callable[[], Awaitable[Client]],
    task: LongRunningTask,
    reason: str,
    bulk: bool,
) -> LongRunningTask:
    async with engine.begin() as conn:
        updated = await task_repo.request_cancel(conn, task.id, reason)
        if updated is not None and not task.cancel_requested:
            details: dict[str, object] = {"reason": reason}
            if bulk:
                details["bulk"] = True
            await audit.record(conn, AuditAction.task_cancelled, task_id=task.id, details=details)
    if updated is None:  # already terminal
        return task
    client = await temporal()
    assert updated.workflow_id is not None
    try:
        # `api`: the flag is in Postgres already; the workflow need not record it again.
        signal = CancelSignal(reason=reason, source="api")
        await signal_cancel(client, updated.workflow_id, signal)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise CancelNotDelivered(
                task.id,
                f"cancel recorded, but Temporal could not be told yet ({exc}); the task's"
                " activities stop on the flag and the cancel can be repeated",
            ) from exc
        # No running workflow behind a non-terminal row: close the row here, nothing else will.
        async with engine.begin() as conn:
            closed = await task_repo.finish(conn, task.id, TaskStatus.cancelled)
        return closed or updated
    return updated
