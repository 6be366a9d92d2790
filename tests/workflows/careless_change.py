"""A careless change to the broadcast workflow, for the replay test to catch.

Its own module: the workflow sandbox re-imports a workflow's module, which must do no I/O.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from longtasks.contracts import activities as act
    from longtasks.contracts.tasks import TaskInput, TaskOutcome

from workflows.page_loop import PagedTaskWorkflow


@workflow.defn(name="broadcast")
class BroadcastWithAnExtraStep(PagedTaskWorkflow):
    """A new activity before the first one: runs already in flight cannot replay this."""

    begin_activity = act.BROADCAST_BEGIN
    page_activity = act.BROADCAST_SEND_PAGE

    @workflow.run
    async def run(self, input: TaskInput) -> TaskOutcome:
        await workflow.execute_activity(
            act.SET_STATUS_REASON.name, None, start_to_close_timeout=timedelta(seconds=5)
        )
        return await self.run_task(input)


if __name__ == "__main__":
    raise SystemExit("imported by tests/workflows/test_replay.py only")
