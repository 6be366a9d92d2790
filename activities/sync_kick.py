"""`receipt_sync.start_scheduled`: what the per-business Gmail Schedule's kick runs.

It starts an ordinary `receipt_sync` task through the task service (`longtasks.tasks`), like
`POST /api/receipts/sync`, so scheduled syncs are listed, cancellable and counted like any
other; skipped while a sync of the business still runs. Idempotent per kick (`schedule_key`):
a retried attempt finds the task its earlier attempt made, and starts its workflow unless that
attempt did.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.client import Client

from longtasks.contracts import activities as act
from longtasks.contracts.receipts import KickRequest, KickResult
from longtasks.db.models import LongRunningTask
from longtasks.db.repositories import audit
from longtasks.db.repositories import gmail as gmail_repo
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.audit import Actor
from longtasks.domain import Priority, TaskType
from longtasks.tasks import NewTask, TaskNotStarted, launch, start_task


class SyncKickActivities:
    def __init__(self, engine: AsyncEngine, *, client: Client, task_queue: str) -> None:
        self._engine = engine
        self._client = client
        self._task_queue = task_queue

    @activity.defn(name=act.RECEIPT_SYNC_START_SCHEDULED.name)
    async def start_scheduled(self, request: KickRequest) -> KickResult:
        business_id = request.business_id
        summary = f"scheduled Gmail sync of business {business_id}"
        async with self._engine.connect() as conn:
            earlier = await gmail_repo.task_for_schedule_key(conn, request.schedule_key)
            task = await task_repo.get_task(conn, earlier) if earlier is not None else None
            if task is None:
                if await gmail_repo.get_connection(conn, business_id) is None:
                    return KickResult(None, "no Gmail connection")
                running = await gmail_repo.running_sync_task(conn, business_id)
                if running is not None:
                    return KickResult(None, f"sync task {running} is still running")
        try:
            if task is None:
                # Nobody asked in a request: the audit log names the schedule.
                with audit.acting_as(Actor.system(business_id, "gmail-schedule")):
                    task, _ = await start_task(
                        self._engine,
                        self._client,
                        NewTask(
                            business_id,
                            TaskType.receipt_sync,
                            total_items=0,
                            priority=Priority.low,
                        ),
                        task_queue=self._task_queue,
                        create_domain_rows=self._sync_run(request),
                        summary=lambda task, _: summary,
                    )
            elif not task.is_terminal:
                # This kick's earlier attempt committed the task, and may have died before
                # starting its workflow.
                await launch(
                    self._engine,
                    self._client,
                    task,
                    task_queue=self._task_queue,
                    summary=summary,
                    retried=True,
                )
        except TaskNotStarted as exc:
            # The task is `failed` with the reason; the next interval's kick tries again.
            return KickResult(exc.task_id, exc.reason)
        return KickResult(task.id)

    @staticmethod
    def _sync_run(
        request: KickRequest,
    ) -> Callable[[AsyncConnection, LongRunningTask], Awaitable[None]]:
        async def create(conn: AsyncConnection, task: LongRunningTask) -> None:
            await gmail_repo.create_sync_run(
                conn,
                task_id=task.id,
                business_id=request.business_id,
                query=None,
                since=None,
                schedule_key=request.schedule_key,
            )

        return create
