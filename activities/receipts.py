"""Bulk receipt deletion: count the staged selection, then delete it page by page.

A delete has no external side effect, so a page needs no claim -> act -> settle split: the
delete, its ledger rows and the counter increment commit in one transaction. Ledger rows are
inserted with ON CONFLICT DO NOTHING and only inserted rows are counted, so a retried (or a
zombie) attempt of a page that already committed changes nothing and counts nothing.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.pages import PageTuning
from contracts.tasks import PageRequest, PageResult, TaskPlan
from db.repositories import receipts as receipt_repo
from db.repositories import tasks as task_repo


class ReceiptDeleteActivities:
    def __init__(self, engine: AsyncEngine, tuning: PageTuning, page_size: int) -> None:
        self._engine = engine
        self._tuning = tuning
        self._page_size = page_size

    @activity.defn(name="receipt_delete.begin")
    async def begin(self, task_id: int) -> TaskPlan:
        async with self._engine.connect() as conn:
            total = await receipt_repo.selection_count(conn, task_id)
        return self._tuning.plan(total, page_size=self._page_size)

    @activity.defn(name="receipt_delete.delete_page")
    async def delete_page(self, request: PageRequest) -> PageResult:
        async with self._engine.begin() as conn:
            task = await task_repo.get_task(conn, request.task_id)
            if task is None:
                raise ApplicationError("the task is gone", type="NotFound", non_retryable=True)
            if task.cancel_requested:
                # Cancel stops between batches: this batch is not started, its items count as
                # cancelled when the task finishes.
                return PageResult(stopped_by_cancel=True)
            # One statement: select the batch, delete this business's receipts, write every
            # item's ledger row. A retried batch finds its rows and counts nothing twice.
            deleted, not_found = await receipt_repo.delete_batch(
                conn,
                request.task_id,
                task.business_id,
                after_seq=request.after_seq,
                up_to_seq=request.up_to_seq,
            )
            await task_repo.add_counts(conn, request.task_id, succeeded=deleted, failed=not_found)
        return PageResult(succeeded=deleted, failed=not_found)
