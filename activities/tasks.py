"""Activities on the task row itself, shared by every task type."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from longtasks.contracts import activities as act
from longtasks.contracts.tasks import (
    ApprovalOutcome,
    CancelRequest,
    FinishRequest,
    PauseState,
    StatusReasonRequest,
)
from longtasks.db.repositories import tasks as task_repo
from longtasks.domain import TaskStatus
from longtasks.observability import metrics


class TaskActivities:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @activity.defn(name=act.MARK_RUNNING.name)
    async def mark_running(self, task_id: int) -> bool:
        """Running from now on; False if the task already ended (e.g. cancelled while scheduled)."""
        async with self._engine.begin() as conn:
            return await task_repo.mark_running(conn, task_id)

    @activity.defn(name=act.REQUEST_CANCEL.name)
    async def request_cancel(self, request: CancelRequest) -> None:
        """Raise the cancel flag (for cancels that did not come through the REST API)."""
        async with self._engine.begin() as conn:
            await task_repo.request_cancel(conn, request.task_id, request.reason)

    @activity.defn(name=act.SET_STATUS_REASON.name)
    async def set_status_reason(self, request: StatusReasonRequest) -> None:
        async with self._engine.begin() as conn:
            await task_repo.set_status_reason(conn, request.task_id, request.reason)

    @activity.defn(name=act.FINISH.name)
    async def finish(self, request: FinishRequest) -> None:
        """Terminal status, once; items never processed are counted as cancelled."""
        async with self._engine.begin() as conn:
            finished = await task_repo.finish(
                conn,
                request.task_id,
                TaskStatus(request.status),
                error_message=request.error_message,
            )
        if finished is not None:  # counted once: a retried finish changes no row
            metrics.count_finished(finished.task_type, finished.status)

    # -- pause, resume, approval -------------------------------------------------------------

    @activity.defn(name=act.MARK_PAUSED.name)
    async def mark_paused(self, task_id: int) -> PauseState:
        """`paused` now that the pages have settled what was in flight; not paused when a
        resume lowered the flag meanwhile, or when the task paused itself and nothing is left
        to hold back."""
        async with self._engine.begin() as conn:
            await task_repo.drop_pause_with_nothing_left(conn, task_id)
            row = await task_repo.mark_paused(conn, task_id)
        if row is None:
            return PauseState(paused=False)
        return PauseState(
            paused=True, by=row.paused_by, reason=row.status_reason, auto_pauses=row.auto_pauses
        )

    @activity.defn(name=act.MARK_RESUMED.name)
    async def mark_resumed(self, task_id: int) -> None:
        async with self._engine.begin() as conn:
            await task_repo.mark_resumed(conn, task_id)

    @activity.defn(name=act.MARK_WAITING.name)
    async def mark_waiting(self, request: StatusReasonRequest) -> None:
        """`paused` with the reason while a quota of the business's own (the daily cap) holds it."""
        async with self._engine.begin() as conn:
            await task_repo.mark_waiting(conn, request.task_id, request.reason or "waiting")

    @activity.defn(name=act.EXPIRE_APPROVAL.name)
    async def expire_approval(self, task_id: int) -> str:
        """Expire the task if still undecided; else say what was decided (a signal may be late)."""
        async with self._engine.begin() as conn:
            expired = await task_repo.expire(
                conn, task_id, "nobody approved it in time; nothing was sent"
            )
            if expired is not None:
                metrics.count_finished(expired.task_type, expired.status)
                return ApprovalOutcome.expired
            row = await task_repo.get_task(conn, task_id)
        if row is None or row.cancel_requested or row.is_terminal:
            return ApprovalOutcome.cancelled
        return ApprovalOutcome.approved
