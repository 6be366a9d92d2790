"""The cleanup workflow: delete terminal tasks older than the retention, in batches.

Started daily by a Temporal Schedule (`temporal_client/cleanup_schedule.py`, created when a worker
starts), so ops see, pause and trigger it in the Temporal UI like any schedule. Each batch is one
short activity (one transaction of up to `batch_size` tasks with their ledgers), so a crash
loses at most a batch's work, a big backlog never holds one huge transaction, and the history
continues as new when it grows.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from longtasks.contracts import activities as act
    from longtasks.contracts.ops import (
        CleanupBatch,
        CleanupInput,
        CleanupOutcome,
    )


@workflow.defn(name="cleanup")
class CleanupWorkflow:
    @workflow.run
    async def run(self, input: CleanupInput) -> CleanupOutcome:
        cutoff = workflow.now() - timedelta(days=input.retention_days)
        deleted = input.deleted_so_far
        batches = 0
        while True:
            result = await workflow.execute_activity(
                act.CLEANUP_DELETE_BATCH.name,
                CleanupBatch(cutoff_epoch=cutoff.timestamp(), batch_size=input.batch_size),
                result_type=act.CLEANUP_DELETE_BATCH.result,
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=5),
                    maximum_interval=timedelta(minutes=2),
                    maximum_attempts=20,
                ),
                summary=f"batch {batches + 1}",
            )
            deleted += result.deleted
            batches += 1
            workflow.set_current_details(
                f"**{deleted:,}** terminal tasks deleted that ended before"
                f" {cutoff:%Y-%m-%d %H:%M} UTC ({batches} batches of up to {input.batch_size:,})"
            )
            if result.deleted < input.batch_size:
                return CleanupOutcome(deleted=deleted, batches=batches)
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    CleanupInput(
                        retention_days=input.retention_days,
                        batch_size=input.batch_size,
                        deleted_so_far=deleted,
                    )
                )


if __name__ == "__main__":
    raise SystemExit("workflows are run by the worker: `longtasks worker`")
