"""Bulk receipt deletion, page by page.

A delete has no external side effect, so a page needs no claim -> act -> settle split: the
delete and its ledger record commit in one transaction, and a retried (or a zombie) attempt of
a page that already committed changes nothing and counts nothing.

Two kinds of selection, cut at intake by the API:
- by ids: the caller's ids numbered 1..N (`task_receipt_selection`); every id gets its own
  ledger row, so the caller learns which of the ids it named were not found;
- by filter: receipt-id ranges (`receipt_delete_pages`); a page is one DELETE over its range,
  and one row records the ids it deleted.
"""

from __future__ import annotations

from psycopg.errors import SerializationFailure
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.pages import PageTuning
from longtasks.contracts import activities as act
from longtasks.contracts.tasks import PageRequest, PageResult, TaskPlan
from longtasks.db.repositories import receipts as receipt_repo
from longtasks.db.repositories import tasks as task_repo


class ReceiptDeleteActivities:
    def __init__(self, engine: AsyncEngine, tuning: PageTuning) -> None:
        self._engine = engine
        self._tuning = tuning

    @activity.defn(name=act.RECEIPT_DELETE_BEGIN.name)
    async def begin(self, task_id: int) -> TaskPlan:
        async with self._engine.connect() as conn:
            by_filter = await receipt_repo.filter_delete_plan(conn, task_id)
            if by_filter is not None:
                # The pages were cut at intake: keep their size, whatever this worker's setting.
                return self._tuning.plan(by_filter.total, page_size=by_filter.page_size)
            total = await receipt_repo.selection_count(conn, task_id)
        return self._tuning.plan(total)

    @activity.defn(name=act.RECEIPT_DELETE_PAGE.name)
    async def delete_page(self, request: PageRequest) -> PageResult:
        # A delete by filter's page runs in this REPEATABLE READ transaction (see
        # `receipt_repo.delete_filter_page`); the task is read, and cancel checked, once here
        # for both kinds.
        async with self._engine.connect() as conn:
            await conn.execution_options(isolation_level="REPEATABLE READ")
            try:
                async with conn.begin():
                    task = await task_repo.get_task(conn, request.task_id)
                    if task is None:
                        raise ApplicationError(
                            "the task is gone", type="NotFound", non_retryable=True
                        )
                    if task.cancel_requested:
                        # Cancel stops between pages: this one is not started, its receipts
                        # count as cancelled when the task finishes.
                        return PageResult(stopped_by_cancel=True)
                    by_filter = await receipt_repo.delete_filter_page(
                        conn, request.task_id, request.page
                    )
            except DBAPIError as err:
                if not isinstance(err.orig, SerializationFailure):
                    raise
                raise ApplicationError(
                    "a receipt of this page was deleted by someone else, or another attempt of"
                    " the page ran, while it was being deleted; nothing was committed, the page"
                    " is retried",
                    type="PageRaced",
                ) from err
        if by_filter is None:
            return await self._delete_id_batch(request, task.business_id)
        # The counters are recomputed from the committed page records rather than incremented
        # in the page's transaction: under REPEATABLE READ, pages running side by side would
        # fail each other on the task row. A recompute is idempotent and only ever raises them.
        async with self._engine.begin() as conn:
            counts = await receipt_repo.filter_delete_counts(conn, request.task_id)
            await task_repo.raise_counts(
                conn,
                request.task_id,
                total=counts.total,
                succeeded=counts.succeeded,
                skipped=counts.skipped,
            )
        gone = by_filter.already_gone
        return PageResult(succeeded=by_filter.deleted + gone, skipped=gone)

    async def _delete_id_batch(self, request: PageRequest, business_id: int) -> PageResult:
        """A page of a delete by ids. One statement: select the batch, delete this business's
        receipts, write every item's ledger row; the counters move in the same transaction.
        A retried batch finds its rows and counts nothing twice."""
        async with self._engine.begin() as conn:
            deleted, not_found = await receipt_repo.delete_batch(
                conn,
                request.task_id,
                business_id,
                after_seq=request.after_seq,
                up_to_seq=request.up_to_seq,
            )
            await task_repo.add_counts(conn, request.task_id, succeeded=deleted, failed=not_found)
        return PageResult(succeeded=deleted, failed=not_found)
