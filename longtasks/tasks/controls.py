"""Pause, resume, approve and reject a task: the database first, then a signal.

As with cancel, the row changes first (visible at once; the pause flag is what page
activities obey), then the workflow is told. A signal that cannot be sent is reported
(`SignalNotDelivered`), and repeating the request sends it again: every function here is
idempotent and answers the row as it is now, with whether this call changed anything.

The workflow moves the status itself (`paused` once its pages have drained, `running` again
after a resume), so the row says what really happens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from longtasks.contracts.tasks import (
    APPROVE_SIGNAL,
    PAUSE_SIGNAL,
    RECHECK_QUOTA_SIGNAL,
    RESUME_SIGNAL,
)
from longtasks.db.models import LongRunningTask
from longtasks.db.repositories import audit
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.audit import AuditAction
from longtasks.domain import TaskStatus
from longtasks.tasks.cancel import cancel_task
from longtasks.tasks.errors import ControlRefused, SignalNotDelivered
from longtasks.temporal.tasks import signal_control

TemporalClient = Callable[[], Awaitable[Client]]


@dataclass(frozen=True)
class Controlled:
    task: LongRunningTask
    # False when the task already was as asked (a repeated request): the API answers 200.
    changed: bool


async def _signal(temporal: TemporalClient, task: LongRunningTask, signal: str) -> None:
    assert task.workflow_id is not None
    try:
        await signal_control(await temporal(), task.workflow_id, signal)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return  # the run ended meanwhile: nothing left to tell
        raise SignalNotDelivered(
            task.id,
            f"{signal} recorded, but Temporal could not be told yet ({exc}); repeat the request",
        ) from exc


async def _current(engine: AsyncEngine, task: LongRunningTask) -> LongRunningTask:
    async with engine.connect() as conn:
        return await task_repo.get_task(conn, task.id) or task


async def pause_task(
    engine: AsyncEngine, temporal: TemporalClient, task: LongRunningTask, *, by: str
) -> Controlled:
    """No new item starts; items in flight settle; then the task is `paused` until resumed."""
    if task.is_terminal:
        raise ControlRefused(task.id, f"task {task.id} is {task.status}: nothing to pause")
    if task.status == TaskStatus.awaiting_approval:
        raise ControlRefused(task.id, f"task {task.id} waits for approval: approve or reject it")
    async with engine.begin() as conn:
        updated = await task_repo.request_pause(conn, task.id, by=by)
        if updated is not None:
            await audit.record(conn, AuditAction.task_paused, task_id=task.id)
    if updated is None:
        now = await _current(engine, task)
        if now.cancel_requested:
            raise ControlRefused(task.id, f"task {task.id} is being cancelled")
        if not now.pause_requested:
            raise ControlRefused(task.id, f"task {task.id} is {now.status}: it cannot pause")
        await _signal(temporal, now, PAUSE_SIGNAL)  # the earlier signal may have been lost
        return Controlled(now, changed=False)
    await _signal(temporal, updated, PAUSE_SIGNAL)
    return Controlled(updated, changed=True)


async def resume_task(
    engine: AsyncEngine, temporal: TemporalClient, task: LongRunningTask
) -> Controlled:
    """Go on where the task stopped. A task the daily cap holds looks at its quota again."""
    if task.is_terminal:
        raise ControlRefused(task.id, f"task {task.id} is {task.status}: nothing to resume")
    async with engine.begin() as conn:
        updated = await task_repo.request_resume(conn, task.id)
        if updated is not None:
            await audit.record(conn, AuditAction.task_resumed, task_id=task.id)
    if updated is not None:
        await _signal(temporal, updated, RESUME_SIGNAL)
        return Controlled(updated, changed=True)
    now = await _current(engine, task)
    if now.status == TaskStatus.paused:
        # Resumed already but not running yet (the signal may have been lost), or held by
        # the daily cap: tell the run again / let it look at the quota again.
        await _signal(temporal, now, RESUME_SIGNAL)
        await _signal(temporal, now, RECHECK_QUOTA_SIGNAL)
    return Controlled(now, changed=False)


async def approve_task(
    engine: AsyncEngine, temporal: TemporalClient, task: LongRunningTask, *, by: str
) -> Controlled:
    """An admin other than the creator lets a task over the approval threshold start."""
    if task.created_by is not None and task.created_by == by:
        raise ControlRefused(
            task.id, "the person who created a task cannot approve it", forbidden=True
        )
    if task.approved_by is not None and not task.is_terminal:
        await _signal(temporal, task, APPROVE_SIGNAL)  # a repeat: the signal may have been lost
        return Controlled(task, changed=False)
    if task.status != TaskStatus.awaiting_approval:
        raise ControlRefused(task.id, f"task {task.id} is {task.status}: nothing to approve")
    async with engine.begin() as conn:
        updated = await task_repo.approve(conn, task.id, by=by)
        if updated is not None:
            await audit.record(conn, AuditAction.task_approved, task_id=task.id)
    if updated is None:
        now = await _current(engine, task)
        raise ControlRefused(task.id, f"task {task.id} is {now.status}: nothing to approve")
    await _signal(temporal, updated, APPROVE_SIGNAL)
    return Controlled(updated, changed=True)


async def reject_task(
    engine: AsyncEngine, temporal: TemporalClient, task: LongRunningTask, *, by: str, reason: str
) -> Controlled:
    """An admin refuses a task that waits for approval: it ends `cancelled`, nothing sent."""
    if task.status != TaskStatus.awaiting_approval:
        raise ControlRefused(task.id, f"task {task.id} is {task.status}: nothing to reject")
    async with engine.begin() as conn:
        updated = await task_repo.reject(conn, task.id, by=by, reason=reason)
        if updated is not None:
            await audit.record(
                conn, AuditAction.task_rejected, task_id=task.id, details={"reason": reason}
            )
    if updated is None:
        now = await _current(engine, task)
        if now.rejected_by is not None:
            return Controlled(now, changed=False)
        raise ControlRefused(task.id, f"task {task.id} is {now.status}: nothing to reject")
    # The cancel path ends it: the flag is set, so this only signals (and closes a row whose
    # run is gone).
    return Controlled(await cancel_task(engine, temporal, updated, reason), changed=True)
