"""`cleanup.delete_batch`: one batch of the daily cleanup of old terminal tasks."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from longtasks.contracts import activities as act
from longtasks.contracts.ops import CleanupBatch, CleanupBatchResult
from longtasks.db.repositories import deliveries
from longtasks.db.repositories import ops as ops_repo
from longtasks.observability import metrics


class CleanupActivities:
    def __init__(self, engine: AsyncEngine, *, inbox_retention_s: float = 7 * 24 * 3600.0) -> None:
        self._engine = engine
        self._inbox_retention = dt.timedelta(seconds=inbox_retention_s)

    @activity.defn(name=act.CLEANUP_DELETE_BATCH.name)
    async def delete_batch(self, request: CleanupBatch) -> CleanupBatchResult:
        """Delete up to `batch_size` tasks (and their ledgers) in one short transaction."""
        cutoff = dt.datetime.fromtimestamp(request.cutoff_epoch, dt.UTC)
        async with self._engine.begin() as conn:
            deleted = await ops_repo.delete_terminal_before(conn, cutoff, request.batch_size)
            # Statuses of messages that never became known (another app's, or lost): also
            # bounded per batch, so each batch stays one short transaction.
            forgotten = await deliveries.prune_inbox(
                conn, dt.datetime.now(dt.UTC) - self._inbox_retention, request.batch_size
            )
        if forgotten:
            activity.logger.info("cleanup forgot %d unknown WhatsApp statuses", forgotten)
        metrics.count_cleanup(deleted)
        activity.logger.info("cleanup deleted %d tasks that ended before %s", deleted, cutoff)
        return CleanupBatchResult(deleted=deleted)
