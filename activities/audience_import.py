"""Audience import activities: plan the pages, normalize one staged chunk, finish, or fail.

Normalizing is CPU work (phonenumbers: tens of microseconds a number), so it runs in a pool of
processes: the worker's event loop keeps serving other tasks' pages and heartbeats, and the
pages of an import use every core instead of one. A page writes its chunk's outcome and the
task's counters in one transaction, only if no earlier attempt has: a retried page (a worker
killed mid-page) counts nothing twice and imports every row once.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from concurrent.futures import Executor
from functools import partial
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.cpu_pool import cpu_pool
from activities.pages import PageTuning
from longtasks.audiences.rows import NormalizedChunk, normalize_chunk
from longtasks.contracts import activities as act
from longtasks.contracts.audiences import ImportFailed, ImportFinished
from longtasks.contracts.tasks import PageRequest, PageResult, TaskPlan
from longtasks.db.models import Audience
from longtasks.db.repositories import audiences as audience_repo
from longtasks.db.repositories import tasks as task_repo

T = TypeVar("T")


async def heartbeating(work: Awaitable[T], every_s: float = 2.0) -> T:
    """Await `work` while heartbeating, so a long wait is not taken for a dead worker."""
    task = asyncio.ensure_future(work)
    while True:
        done, _ = await asyncio.wait({task}, timeout=every_s)
        if done:
            return task.result()
        activity.heartbeat()


class AudienceImportActivities:
    def __init__(
        self, engine: AsyncEngine, tuning: PageTuning, *, region: str, processes: int | None
    ) -> None:
        self._engine = engine
        self._tuning = tuning
        self._region = region
        self._processes = (os.cpu_count() or 1) if processes is None else processes
        self._pool: Executor | None = None

    def _executor(self) -> Executor | None:
        if self._processes <= 0:
            return None
        if self._pool is None:
            self._pool = cpu_pool(self._processes)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def _audience(self, task_id: int) -> Audience:
        async with self._engine.connect() as conn:
            audience = await audience_repo.get_for_task(conn, task_id)
        if audience is None:
            raise ApplicationError(
                f"task {task_id} imports no audience (deleted?)",
                type="NotFound",
                non_retryable=True,
            )
        return audience

    @activity.defn(name=act.AUDIENCE_IMPORT_BEGIN.name)
    async def begin(self, task_id: int) -> TaskPlan:
        audience = await self._audience(task_id)
        # Pages are the chunks the upload was cut into, whatever this worker's setting says.
        return self._tuning.plan(audience.row_count, page_size=audience.chunk_rows)

    @activity.defn(name=act.AUDIENCE_IMPORT_PAGE.name)
    async def normalize_page(self, request: PageRequest) -> PageResult:
        audience = await self._audience(request.task_id)
        async with self._engine.connect() as conn:
            if await task_repo.is_cancel_requested(conn, request.task_id):
                return PageResult(stopped_by_cancel=True)
            chunk = await audience_repo.staged_chunk(conn, audience.id, request.page)
        if chunk is None or chunk.normalized_at is not None or chunk.records is None:
            return PageResult()  # an earlier attempt wrote and counted it
        work = partial(
            normalize_chunk,
            chunk.lines,
            chunk.records,
            phone_index=audience.phone_column,
            columns=len(audience.columns),
            region=self._region,
        )
        executor = self._executor()
        loop = asyncio.get_running_loop()
        result: NormalizedChunk = await heartbeating(
            loop.run_in_executor(executor, work) if executor else asyncio.to_thread(work)
        )
        valid, invalid = len(result.valid_lines), len(result.errors)
        async with self._engine.begin() as conn:
            if not await audience_repo.save_normalized(conn, audience.id, request.page, result):
                return PageResult()
            await task_repo.add_counts(conn, request.task_id, succeeded=valid, failed=invalid)
        return PageResult(succeeded=valid, failed=invalid)

    @activity.defn(name=act.AUDIENCE_IMPORT_FINISH.name)
    async def finish(self, task_id: int) -> ImportFinished:
        """Members out of the normalized chunks (first-seen wins, suppressed stay out), in
        one transaction with the audience's counts; the duplicates and suppressed rows count
        as the task's skipped items."""
        audience = await self._audience(task_id)

        async def run() -> ImportFinished:
            async with self._engine.begin() as conn:
                counts = await audience_repo.finalize(conn, audience)
                if counts is None:
                    return ImportFinished()
                await task_repo.add_counts(
                    conn,
                    task_id,
                    succeeded=0,
                    failed=0,
                    skipped=counts.duplicates + counts.suppressed,
                )
            return ImportFinished(
                members=counts.valid,
                duplicates=counts.duplicates,
                suppressed=counts.suppressed,
                invalid=counts.invalid,
            )

        return await heartbeating(run())

    @activity.defn(name=act.AUDIENCE_IMPORT_FAIL.name)
    async def fail(self, request: ImportFailed) -> None:
        async with self._engine.begin() as conn:
            audience = await audience_repo.get_for_task(conn, request.task_id)
            if audience is not None:
                await audience_repo.mark_failed(conn, audience.id, request.reason)


__all__ = ["AudienceImportActivities", "heartbeating"]
