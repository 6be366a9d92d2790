"""The audience import: normalize an uploaded customer list, page by page, into members.

The API has staged the upload in chunks (`audience_upload_chunks`), one per page. Each page
normalizes its chunk's phone numbers (E.164 through phonenumbers; pages run in parallel) and
writes the outcome back into the chunk's row with the counts, once. When every page has
settled, one finishing activity numbers the valid rows 1..N as members, first-seen wins for a
number that appears twice, suppressed numbers stay out, and the staging goes; the audience is
then `ready`. A cancelled or failed import leaves the audience `failed` with the reason.

Input and history carry the task id and counts only, never a cell of the list.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from longtasks.contracts import activities as act
    from longtasks.contracts.audiences import ImportFailed
    from longtasks.contracts.tasks import TaskInput, TaskOutcome
    from longtasks.domain import TaskStatus

from workflows.page_loop import PagedTaskWorkflow

# The finishing step is one statement over every row (seconds for a million): idempotent, so
# it is retried until it succeeds, with its heartbeats showing it alive meanwhile.
FINISH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=60)
)


@workflow.defn(name="audience_import")
class AudienceImportWorkflow(PagedTaskWorkflow):
    begin_activity = act.AUDIENCE_IMPORT_BEGIN
    page_activity = act.AUDIENCE_IMPORT_PAGE

    @workflow.run
    async def run(self, input: TaskInput) -> TaskOutcome:
        try:
            outcome = await self.run_task(input)
        except ApplicationError as err:
            # The loop has recorded the task's failure; the audience says it too.
            await self._audience_failed(input.task_id, f"the import failed: {err.message}")
            raise
        except asyncio.CancelledError:
            # Cancelled from Temporal: the task row says cancelled already.
            await self._audience_failed(input.task_id, "the import was cancelled")
            raise
        if outcome.status != TaskStatus.completed:
            await self._audience_failed(input.task_id, "the import was cancelled")
        return outcome

    async def before_complete(self, input: TaskInput) -> None:
        finished = await self.uninterrupted(
            workflow.execute_activity(
                act.AUDIENCE_IMPORT_FINISH.name,
                input.task_id,
                result_type=act.AUDIENCE_IMPORT_FINISH.result,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=FINISH_RETRY,
                summary="number the members, drop duplicates and suppressed numbers",
            )
        )
        workflow.set_current_details(
            f"**{finished.members:,}** members; {finished.invalid:,} invalid,"
            f" {finished.duplicates:,} duplicates, {finished.suppressed:,} suppressed"
        )

    async def _audience_failed(self, task_id: int, reason: str) -> None:
        await self.execute_short(act.AUDIENCE_IMPORT_FAIL, ImportFailed(task_id, reason))


if __name__ == "__main__":
    raise SystemExit("workflows are run by the worker: `longtasks worker`")
