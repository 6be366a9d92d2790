"""The broadcast workflow: send one WhatsApp message to every recipient of a broadcast.

Input is the task id only; recipients, phone numbers and the message text stay in Postgres and
are read page by page by the `broadcast.send_page` activity.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from longtasks.contracts import activities as act
    from longtasks.contracts.tasks import TaskInput, TaskOutcome

from workflows.page_loop import PagedTaskWorkflow


@workflow.defn(name="broadcast")
class BroadcastWorkflow(PagedTaskWorkflow):
    begin_activity = act.BROADCAST_BEGIN
    page_activity = act.BROADCAST_SEND_PAGE

    @workflow.run
    async def run(self, input: TaskInput) -> TaskOutcome:
        return await self.run_task(input)


if __name__ == "__main__":
    # Worker validation imports workflow modules as scripts' peers; keep them import-safe.
    raise SystemExit("workflows are run by the worker: `longtasks worker`")
