"""`receipt_sync.start_scheduled`: what the per-business Gmail Schedule's kick runs.

It creates an ordinary `receipt_sync` task and starts its workflow, as the REST API would, so
scheduled syncs are listed, cancellable and counted like any other; skipped while a sync of the
business still runs. Idempotent per kick (`schedule_key`): a retried attempt finds its task.
"""

from __future__ import annotations

import contextlib

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from longtasks.contracts import activities as act
from longtasks.contracts.receipts import KickRequest, KickResult
from longtasks.db.repositories import gmail as gmail_repo
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.gmail import TokenCipher
from longtasks.domain import TaskType
from longtasks.temporal.tasks import start_task_workflow


class SyncKickActivities:
    def __init__(
        self, engine: AsyncEngine, cipher: TokenCipher, *, client: Client, task_queue: str
    ) -> None:
        self._engine = engine
        self._cipher = cipher
        self._client = client
        self._task_queue = task_queue

    @activity.defn(name=act.RECEIPT_SYNC_START_SCHEDULED.name)
    async def start_scheduled(self, request: KickRequest) -> KickResult:
        """Create a `receipt_sync` task and start its workflow, as the REST API would; skipped
        while a sync of this business still runs. Idempotent per kick (`schedule_key`)."""
        async with self._engine.begin() as conn:
            task_id = await gmail_repo.task_for_schedule_key(conn, request.schedule_key)
            if task_id is None:
                if await gmail_repo.get_connection(conn, self._cipher, request.business_id) is None:
                    return KickResult(None, "no Gmail connection")
                running = await gmail_repo.running_sync_task(conn, request.business_id)
                if running is not None:
                    return KickResult(None, f"sync task {running} is still running")
                task = await task_repo.create_task(
                    conn,
                    business_id=request.business_id,
                    task_type=TaskType.receipt_sync.value,
                    total_items=0,
                    priority="low",
                )
                task_id = task.id
                await gmail_repo.create_sync_run(
                    conn,
                    task_id=task_id,
                    business_id=request.business_id,
                    query=None,
                    since=None,
                    schedule_key=request.schedule_key,
                )
        with contextlib.suppress(WorkflowAlreadyStartedError):
            # Already started by an earlier attempt of this kick: nothing more to do.
            await start_task_workflow(
                self._client,
                workflow_name=TaskType.receipt_sync.value,
                task_queue=self._task_queue,
                task_id=task_id,
                business_id=request.business_id,
                task_type=TaskType.receipt_sync.value,
                summary=f"scheduled Gmail sync of business {request.business_id}",
                priority="low",
            )
        return KickResult(task_id)
