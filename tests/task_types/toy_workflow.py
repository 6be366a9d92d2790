"""The toy task type's workflow: the shared page loop, naming the toy's two activities.

Its own module, like every workflow module: the workflow sandbox re-imports it.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from longtasks.contracts.activities import ActivityName
    from longtasks.contracts.tasks import PageRequest, PageResult, TaskInput, TaskOutcome, TaskPlan

from workflows.page_loop import PagedTaskWorkflow

TOY = "toy"
TOY_BEGIN = ActivityName("toy.begin", int, TaskPlan)
TOY_SHOUT_PAGE = ActivityName("toy.shout_page", PageRequest, PageResult)


@workflow.defn(name=TOY)
class ToyWorkflow(PagedTaskWorkflow):
    begin_activity = TOY_BEGIN
    page_activity = TOY_SHOUT_PAGE

    @workflow.run
    async def run(self, input: TaskInput) -> TaskOutcome:
        return await self.run_task(input)


if __name__ == "__main__":
    raise SystemExit("run by a test's worker only")
