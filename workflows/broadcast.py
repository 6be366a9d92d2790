"""The broadcast workflow: send one WhatsApp message to every recipient of a broadcast.

Input is the task id only; recipients, phone numbers and the message text stay in Postgres and
are read page by page by the `broadcast.send_page` activity.

After the last page, sends nobody could confirm (the request left, no answer came back) are
waited for durably: timers, not a held activity. `broadcast.resolve_unconfirmed` settles those a
status webhook has spoken for and applies the broadcast's policy to those whose wait is over
(`at_least_once` re-arms them and their pages run again); the task ends when every item is
settled.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from longtasks.contracts import activities as act
    from longtasks.contracts.broadcasts import UnconfirmedCheck
    from longtasks.contracts.tasks import TaskInput, TaskOutcome

from workflows.page_loop import PagedTaskWorkflow

# Added after broadcasts were deployed: runs without the marker replay without the wait.
UNCONFIRMED_PATCH = "unconfirmed-sends"
# Between looks at unconfirmed sends: 1 s, doubling, at most this long (a status webhook can be
# retried by Meta for days; ~340 looks cover 7 days and keep the history small).
MAX_LOOK_INTERVAL_S = 1800.0


@workflow.defn(name="broadcast")
class BroadcastWorkflow(PagedTaskWorkflow):
    begin_activity = act.BROADCAST_BEGIN
    page_activity = act.BROADCAST_SEND_PAGE

    @workflow.run
    async def run(self, input: TaskInput) -> TaskOutcome:
        return await self.run_task(input)

    async def before_complete(self, input: TaskInput) -> None:
        if workflow.patched(UNCONFIRMED_PATCH):
            await self._settle_unconfirmed(input.task_id)

    async def _settle_unconfirmed(self, task_id: int) -> None:
        state = self.state
        looks = 0
        while not self.cancel_requested and self.failure is None:
            review = await self.execute_short(
                act.BROADCAST_RESOLVE_UNCONFIRMED,
                UnconfirmedCheck(task_id=task_id, page_size=state.page_size),
            )
            state.succeeded += review.succeeded
            state.failed += review.failed
            if review.rearmed_pages:
                await self.rerun_pages(task_id, review.rearmed_pages)
                looks = 0
                continue
            if review.remaining == 0:
                return
            workflow.set_current_details(
                f"**waiting** for {review.remaining:,} unconfirmed send(s): their status"
                " webhooks, or the policy once the wait is over"
            )
            wait = min(2.0**looks, MAX_LOOK_INTERVAL_S)
            if review.decides_in_s > 0:
                wait = min(wait, review.decides_in_s + 0.5)
            looks += 1
            with contextlib.suppress(TimeoutError):
                await self.uninterrupted(
                    workflow.wait_condition(
                        lambda: self.cancel_requested, timeout=timedelta(seconds=wait)
                    )
                )


if __name__ == "__main__":
    # Worker validation imports workflow modules as scripts' peers; keep them import-safe.
    raise SystemExit("workflows are run by the worker: `longtasks worker`")
