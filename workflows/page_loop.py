"""The shared page loop every paged task workflow runs.

A task's items are numbered 1..N (`seq`), so page n is the keyset range
`n*page_size < seq <= (n+1)*page_size` and the workflow needs no data to plan the work, only the
count. A sliding window keeps `window` page activities in flight. Between pages the loop checks
its cancel flag, updates the search attributes and the run's current details, and continues as
new when the server suggests it (or after `pages_per_run` pages), carrying counts and cursor.

Cancellation has one graceful path, whoever asks:
- the `cancel` signal (the REST API sets the database flag first, so activities see it at once);
- Temporal's own cancel (the Web UI's button, `handle.cancel()`): the loop catches it, records
  the flag in Postgres through an activity, and then behaves exactly like the signal.
Either way no new page is scheduled, pages in flight finish the items they started and release
the rest, and a final activity writes `cancelled` with exact counts.

Pause works the same way, and ends in a durable wait instead of the end: the `pause` signal (or
a page that saw the database flag: a person's pause, or the task's own circuit breaker) stops
the scheduling of pages; pages in flight settle what they started and release the rest; then
an activity marks the task `paused` and the run waits on its signal state alone (no timer, no
activity held) for `resume` or a cancel. Resume re-runs from the lowest page that released
items; the ledger skips what was settled, so nothing is skipped and nothing is sent twice.

A task over its business's approval threshold starts waiting the same way, for `approve`, a
cancel (a rejection is one), or its deadline, when an activity expires it if still undecided.

None of this needs `workflow.patched`: the new commands follow only from signals, inputs and
page results that histories recorded before these paths existed cannot contain.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from longtasks.contracts import activities as act
    from longtasks.contracts.activities import ActivityName
    from longtasks.contracts.ops import NotifyPausedRequest, NotifyRequest
    from longtasks.contracts.tasks import (
        APPROVE_SIGNAL,
        CANCEL_SIGNAL,
        PAUSE_SIGNAL,
        PAUSED_BY_SYSTEM,
        RECHECK_QUOTA_SIGNAL,
        RESUME_SIGNAL,
        ApprovalOutcome,
        CancelRequest,
        CancelSignal,
        FinishRequest,
        LoopState,
        PageRequest,
        PageResult,
        StatusReasonRequest,
        TaskInput,
        TaskOutcome,
        TaskPlan,
    )
    from longtasks.domain import TaskStatus
    from longtasks.temporal import search_attributes as sa

T = TypeVar("T")
ArgT = TypeVar("ArgT")

NOTIFY_PATCH = "notify-on-finish"
# A receiver that is down gets ~18 minutes of retries with backoff (1 s doubling to 5 min).
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=12,
)

SHORT_TIMEOUT = timedelta(seconds=60)
SHORT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
PAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    # ~25 minutes of provider or database trouble before the task gives up with a reason.
    maximum_attempts=50,
)


class PagedTaskWorkflow:
    """Base of every paged task workflow; a subclass names its begin and page activities.

    What a subclass may use: `execute_short` (a short activity that a Temporal cancel does not
    interrupt), `uninterrupted`, `fail`, `failure`, `cancel_requested`, `state`,
    `record_cancel_if_needed`, `pause_if_requested` and `rerun_pages`, and the hooks
    `before_plan` and `before_complete`. The rest is the loop's own state.
    """

    begin_activity: ClassVar[ActivityName[int, TaskPlan]]
    page_activity: ClassVar[ActivityName[PageRequest, PageResult]]

    @workflow.init
    def __init__(self, input: TaskInput) -> None:
        # Set here, not in run(): a cancel signal can arrive before run() starts.
        carried = input.state
        self._cancel_requested = carried.cancel_requested if carried else False
        self._cancel_source: str | None = carried.cancel_source if carried else None
        self._cancel_recorded = True
        self._state: LoopState | None = carried
        self._failure: str | None = None
        self._recheck_quota = False
        self._pause_requested = carried.pause_requested if carried else False
        self._approved = False
        # The last pause notice, delivered beside the wait: a receiver that is down must not
        # hold up a resume; the run waits for it only before it ends.
        self._pause_notice: asyncio.Task[None] | None = None

    # -- what subclasses use -----------------------------------------------------------------

    @property
    def cancel_requested(self) -> bool:
        """Whoever asked (the REST API, the Temporal UI, a page that saw the flag)."""
        return self._cancel_requested

    @property
    def state(self) -> LoopState:
        """Where the run stands (totals, counts, pages); set once the task has planned."""
        assert self._state is not None, "the task has not planned its pages yet"
        return self._state

    @property
    def failure(self) -> str | None:
        """Why the task fails, once something failed it; the loop then schedules no page."""
        return self._failure

    def fail(self, reason: str) -> None:
        """Fail the task with this reason (the first reason wins): no new page is scheduled,
        pages in flight finish, and the task ends `failed` with the reason as its error."""
        if self._failure is None:
            self._failure = reason

    async def record_cancel_if_needed(self, task_id: int) -> None:
        """A cancel that did not come through the REST API reaches Postgres here, where the
        page activities look for it and users see it. Call it before deciding what to run."""
        if self._cancel_requested and not self._cancel_recorded:
            self._cancel_recorded = True
            await self.execute_short(
                act.REQUEST_CANCEL,
                CancelRequest(task_id=task_id, reason=f"cancelled via {self._cancel_source}"),
            )

    async def uninterrupted(self, awaitable: Awaitable[T]) -> T:
        """Await through Temporal cancellation: it turns into our graceful cancel instead."""
        future = asyncio.ensure_future(awaitable)
        while True:
            try:
                return await asyncio.shield(future)
            except asyncio.CancelledError:
                if future.cancelled():
                    raise
                self._request_cancel("temporal", recorded=False)

    async def execute_short(self, activity: ActivityName[ArgT, T], arg: ArgT) -> T:
        """A short activity (a minute at most, retried with backoff), through cancellation."""
        result: T = await self.uninterrupted(
            workflow.execute_activity(
                activity.name,
                arg,
                result_type=activity.result,
                start_to_close_timeout=SHORT_TIMEOUT,
                retry_policy=SHORT_RETRY,
            )
        )
        return result

    @property
    def pause_requested(self) -> bool:
        """A person or the circuit breaker asked the task to pause; not yet resumed."""
        return self._pause_requested

    async def pause_if_requested(self, task_id: int) -> None:
        """Where the task may stop for a pause (between pages, between listing pages): once
        nothing is in flight, mark it paused and wait durably for a resume or a cancel."""
        if self._pause_requested and not self._cancel_requested and self._failure is None:
            await self._pause(task_id)

    async def before_plan(self, input: TaskInput) -> None:
        """Hook: runs once, after the task is marked running and before the begin activity.

        May call `fail(reason)`; the loop then schedules no page and fails the task with it.
        """

    async def before_complete(self, input: TaskInput) -> None:
        """Hook: runs once all pages settled, before the task is marked completed."""

    # -- signals and queries -----------------------------------------------------------------

    @workflow.signal(name=RECHECK_QUOTA_SIGNAL)
    def recheck_quota(self) -> None:
        """Ops: the provider quota changed (e.g. a higher tier); stop waiting and try again."""
        self._recheck_quota = True

    @workflow.signal(name=CANCEL_SIGNAL)
    def cancel(self, signal: CancelSignal) -> None:
        self._request_cancel(signal.source, recorded=signal.source == "api")

    @workflow.signal(name=PAUSE_SIGNAL)
    def pause(self) -> None:
        """The REST API raised the pause flag; stop scheduling pages."""
        self._pause_requested = True

    @workflow.signal(name=RESUME_SIGNAL)
    def resume(self) -> None:
        """The REST API lowered the pause flag; go on where the task stopped."""
        self._pause_requested = False

    @workflow.signal(name=APPROVE_SIGNAL)
    def approve(self) -> None:
        """An admin approved the task (recorded in the database before this signal)."""
        self._approved = True

    @workflow.query(name="progress")
    def progress(self) -> dict[str, Any]:
        state = self._state
        return {
            "cancel_requested": self._cancel_requested,
            "pause_requested": self._pause_requested,
            "next_page": state.next_page if state else 0,
            "total_pages": state.total_pages if state else None,
            "settled": (state.succeeded + state.failed) if state else 0,
        }

    # -- the loop ----------------------------------------------------------------------------

    def _request_cancel(self, source: str, *, recorded: bool) -> None:
        if self._cancel_requested:
            return
        self._cancel_requested = True
        self._cancel_source = source
        # A cancel that did not come through the REST API still has to reach Postgres.
        self._cancel_recorded = recorded

    async def run_task(self, input: TaskInput) -> TaskOutcome:
        state = self._state
        if state is None:
            # A run that continued as new mid-listing has started already: it only resumes.
            if input.listing is None:
                if input.approval_deadline_epoch is not None:
                    decision = await self._wait_for_approval(input)
                    if decision == ApprovalOutcome.expired:
                        return await self._expired(input)
                    if decision == ApprovalOutcome.cancelled:
                        return await self._finish(input, TaskStatus.cancelled)
                if input.start_at_epoch is not None and not await self._wait_for_start(input):
                    return await self._finish(input, TaskStatus.cancelled)
                started = await self.execute_short(act.MARK_RUNNING, input.task_id)
                if not started:
                    # Ended before it began (cancelled while scheduled and already finished).
                    return TaskOutcome(input.task_id, TaskStatus.cancelled, 0, 0, 0, 0)
            # Work some task types do before they know their total (e.g. listing a mailbox);
            # nothing for others, so their command sequence (and stored histories) is unchanged.
            await self.before_plan(input)
            plan = await self.execute_short(self.begin_activity, input.task_id)
            state = LoopState(
                total_items=plan.total_items,
                page_size=plan.page_size,
                window=plan.window,
                pages_per_run=plan.pages_per_run,
                heartbeat_timeout_s=plan.heartbeat_timeout_s,
            )
            self._state = state
        workflow.upsert_search_attributes([sa.TASK_STATUS.value_set(TaskStatus.running)])

        continue_as_new = await self._run_pages(input.task_id, state)
        if continue_as_new and self._failure is None:
            if self._pause_notice is not None:
                await self.uninterrupted(self._pause_notice)
            state.cancel_requested = self._cancel_requested
            state.cancel_source = self._cancel_source
            state.pause_requested = self._pause_requested
            state.runs += 1
            workflow.continue_as_new(
                TaskInput(task_id=input.task_id, business_id=input.business_id, state=state)
            )
        if self._failure is not None:
            await self._finish(input, TaskStatus.failed, self._failure)
            raise ApplicationError(self._failure, type="TaskFailed", non_retryable=True)
        if not self._cancel_requested:
            await self.before_complete(input)
        status = TaskStatus.cancelled if self._cancel_requested else TaskStatus.completed
        outcome = await self._finish(input, status)
        if self._cancel_source == "temporal":
            # Cancelled from Temporal itself: let the run show as Canceled in the Web UI.
            raise asyncio.CancelledError("cancelled through Temporal")
        return outcome

    async def _wait_for_start(self, input: TaskInput) -> bool:
        """Sleep until start_at unless cancelled first; True when the task should run."""
        assert input.start_at_epoch is not None
        delay = input.start_at_epoch - workflow.now().timestamp()
        starts = workflow.now() + timedelta(seconds=max(delay, 0))
        workflow.set_current_details(f"scheduled to start at {starts:%Y-%m-%d %H:%M:%S} UTC")
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await self.uninterrupted(
                    workflow.wait_condition(
                        lambda: self._cancel_requested, timeout=timedelta(seconds=delay)
                    )
                )
        await self.record_cancel_if_needed(input.task_id)
        return not self._cancel_requested

    async def _wait_for_approval(self, input: TaskInput) -> str:
        """Wait (a timer and the signal state) for an approval, a cancel or the deadline."""
        assert input.approval_deadline_epoch is not None
        deadline = dt.datetime.fromtimestamp(input.approval_deadline_epoch, dt.UTC)
        workflow.set_current_details(
            f"**awaiting approval** by an admin until {deadline:%Y-%m-%d %H:%M} UTC;"
            " nothing is sent before"
        )
        delay = input.approval_deadline_epoch - workflow.now().timestamp()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await self.uninterrupted(
                    workflow.wait_condition(
                        lambda: self._approved or self._cancel_requested,
                        timeout=timedelta(seconds=delay),
                    )
                )
        await self.record_cancel_if_needed(input.task_id)
        if self._cancel_requested:
            return ApprovalOutcome.cancelled
        if self._approved:
            return ApprovalOutcome.approved
        # The deadline passed with no signal: the database decides (an approval or a rejection
        # whose signal was lost or late wins over the timer if it was recorded first).
        decision = await self.execute_short(act.EXPIRE_APPROVAL, input.task_id)
        if decision == ApprovalOutcome.cancelled:
            self._request_cancel("api", recorded=True)
        return decision

    async def _expired(self, input: TaskInput) -> TaskOutcome:
        """Nobody approved it: the row says `expired` already; tell the business."""
        workflow.upsert_search_attributes([sa.TASK_STATUS.value_set(TaskStatus.expired)])
        workflow.set_current_details("**expired**: nobody approved it in time; nothing was sent")
        if workflow.patched(NOTIFY_PATCH):
            await self._notify_finished(input.task_id)
        return TaskOutcome(input.task_id, TaskStatus.expired, 0, 0, 0, 0)

    async def _pause(self, task_id: int) -> None:
        paused = await self.execute_short(act.MARK_PAUSED, task_id)
        if not paused.paused:
            # A resume lowered the flag before the pages drained (its signal may follow).
            self._pause_requested = False
            return
        workflow.upsert_search_attributes([sa.TASK_STATUS.value_set(TaskStatus.paused)])
        by_itself = paused.by == PAUSED_BY_SYSTEM
        who = "itself" if by_itself else (paused.by or "a person")
        why = f": {paused.reason}" if paused.reason else ""
        lines = [f"**paused** by {who} at {workflow.now():%Y-%m-%d %H:%M:%S} UTC{why}"]
        if self._state is not None:
            settled = self._state.succeeded + self._state.failed
            lines.append(f"{settled:,} of {self._state.total_items:,} items settled")
        lines.append("waiting for a resume (or a cancel)")
        workflow.set_current_details("\n\n".join(lines))
        if by_itself:
            self._pause_notice = asyncio.ensure_future(
                self._notify_paused(task_id, paused.auto_pauses)
            )
        await self.uninterrupted(
            workflow.wait_condition(lambda: not self._pause_requested or self._cancel_requested)
        )
        if self._cancel_requested:
            return
        await self.execute_short(act.MARK_RESUMED, task_id)
        workflow.upsert_search_attributes([sa.TASK_STATUS.value_set(TaskStatus.running)])

    async def _run_pages(self, task_id: int, state: LoopState) -> bool:
        """Run pages until done, cancelled, failed, or time to continue as new (returns True)."""
        pending: dict[int, workflow.ActivityHandle[PageResult]] = {}
        pages_this_run = 0
        deferred: tuple[float, str, bool] | None = None
        while True:
            await self.record_cancel_if_needed(task_id)
            rolling_over = (
                pages_this_run >= state.pages_per_run
                or workflow.info().is_continue_as_new_suggested()
            )
            stop = (
                self._cancel_requested
                or self._failure is not None
                or rolling_over
                or deferred is not None
                or self._pause_requested
            )
            while not stop and len(pending) < state.window and state.next_page < state.total_pages:
                page = state.next_page
                pending[page] = self._start_page(task_id, state, page)
                state.next_page += 1
                pages_this_run += 1
            if not pending:
                if self._pause_requested and not self._cancel_requested and not self._failure:
                    await self._pause(task_id)
                    continue
                if deferred is not None and not self._cancel_requested and not self._failure:
                    await self._wait_for_quota(task_id, *deferred)
                    deferred = None
                    continue
                break
            await self.uninterrupted(
                workflow.wait(list(pending.values()), return_when=asyncio.FIRST_COMPLETED)
            )
            for page, handle in list(pending.items()):
                if not handle.done():
                    continue
                del pending[page]
                try:
                    result = handle.result()
                except ActivityError as err:
                    cause = err.cause if err.cause is not None else err
                    self.fail(f"page {page + 1} failed: {cause}")
                    continue
                state.succeeded += result.succeeded
                state.failed += result.failed
                state.skipped += result.skipped
                if result.stopped_by_cancel:
                    # The page saw the database flag before our signal arrived (or the signal
                    # was lost): stop scheduling all the same.
                    self._request_cancel("api", recorded=True)
                if result.stopped_by_pause:
                    # The page saw the pause flag (a person's, or the circuit breaker's) and
                    # released what it had not started: run it again after the resume.
                    self._pause_requested = True
                    state.next_page = min(state.next_page, page)
                if result.deferred_until is not None:
                    # Quota used up: run this page again once budget frees; its settled items
                    # are skipped by the ledger, so re-running later pages is harmless too.
                    state.next_page = min(state.next_page, page)
                    until = max(result.deferred_until, deferred[0] if deferred else 0.0)
                    by_cap = result.deferred_by_cap or (deferred[2] if deferred else False)
                    why = result.deferred_reason or "waiting for provider quota"
                    deferred = (until, why, by_cap)
            self._describe(state, len(pending))
        return state.next_page < state.total_pages and not self._cancel_requested

    def _start_page(
        self, task_id: int, state: LoopState, page: int
    ) -> workflow.ActivityHandle[PageResult]:
        return workflow.start_activity(
            self.page_activity.name,
            PageRequest(
                task_id=task_id,
                page=page,
                after_seq=page * state.page_size,
                up_to_seq=(page + 1) * state.page_size,
            ),
            result_type=PageResult,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(seconds=state.heartbeat_timeout_s),
            retry_policy=PAGE_RETRY,
            summary=f"page {page + 1} of {state.total_pages}",
        )

    async def rerun_pages(self, task_id: int, pages: list[int]) -> None:
        """Run these pages again (their settled items are skipped): e.g. sends re-armed by a
        policy. Counts join the loop's; a quota wait or a pause holds them as in the loop; a
        failed page fails the task."""
        state = self.state
        todo = sorted(set(pages))
        while todo and not self._cancel_requested and self._failure is None:
            batch, todo = todo[: state.window], todo[state.window :]
            handles = {page: self._start_page(task_id, state, page) for page in batch}
            deferred: tuple[float, str, bool] | None = None
            for page, handle in handles.items():
                try:
                    result = await self.uninterrupted(handle)
                except ActivityError as err:
                    self.fail(f"page {page + 1} failed: {err.cause or err}")
                    continue
                state.succeeded += result.succeeded
                state.failed += result.failed
                state.skipped += result.skipped
                if result.stopped_by_cancel:
                    self._request_cancel("api", recorded=True)
                if result.stopped_by_pause:
                    self._pause_requested = True
                    todo.append(page)
                elif result.deferred_until is not None:
                    why = result.deferred_reason or "waiting for provider quota"
                    deferred = (result.deferred_until, why, result.deferred_by_cap)
                    todo.append(page)
            await self.pause_if_requested(task_id)
            if deferred is not None and not self._cancel_requested and self._failure is None:
                await self._wait_for_quota(task_id, *deferred)
            todo.sort()

    async def _wait_for_quota(
        self, task_id: int, until_epoch: float, reason: str, by_cap: bool = False
    ) -> None:
        """Wait durably (a timer, no worker busy) until the quota frees, showing why. The
        business's own daily cap shows the task `paused`; a provider's quota keeps it running
        with the reason. A recheck (the quota changed), a pause or a cancel ends the wait."""
        resumes = dt.datetime.fromtimestamp(until_epoch, dt.UTC)
        why = f"{reason}; resumes at {resumes:%Y-%m-%d %H:%M} UTC"
        if by_cap:
            await self.execute_short(act.MARK_WAITING, StatusReasonRequest(task_id, why))
            workflow.upsert_search_attributes([sa.TASK_STATUS.value_set(TaskStatus.paused)])
        else:
            await self.execute_short(act.SET_STATUS_REASON, StatusReasonRequest(task_id, why))
        workflow.set_current_details(f"**waiting**: {why}")
        delay = until_epoch - workflow.now().timestamp()
        self._recheck_quota = False
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await self.uninterrupted(
                    workflow.wait_condition(
                        lambda: (
                            self._cancel_requested or self._recheck_quota or self._pause_requested
                        ),
                        timeout=timedelta(seconds=delay),
                    )
                )
        if by_cap:
            if not self._cancel_requested:
                await self.execute_short(act.MARK_RESUMED, task_id)
                workflow.upsert_search_attributes([sa.TASK_STATUS.value_set(TaskStatus.running)])
        else:
            await self.execute_short(act.SET_STATUS_REASON, StatusReasonRequest(task_id, None))

    def _describe(self, state: LoopState, in_flight: int) -> None:
        settled = state.succeeded + state.failed
        pct = 100.0 * settled / state.total_items if state.total_items else 100.0
        lines = [
            f"**{settled:,} of {state.total_items:,}** items settled ({pct:.1f}%):"
            f" {state.succeeded:,} succeeded, {state.failed:,} failed",
            f"page {min(state.next_page, state.total_pages)} of {state.total_pages},"
            f" {in_flight} in flight, run {state.runs}",
        ]
        if self._cancel_requested:
            lines.append(f"cancelling (requested via {self._cancel_source})")
        elif self._pause_requested:
            lines.append("pausing: pages in flight settle what they started")
        workflow.set_current_details("\n\n".join(lines))

    async def _notify_finished(self, task_id: int) -> None:
        """The business's webhook and email; a notification never changes the task's outcome."""
        try:
            await self.uninterrupted(
                workflow.execute_activity(
                    act.NOTIFY_FINISHED.name,
                    NotifyRequest(task_id=task_id),
                    result_type=act.NOTIFY_FINISHED.result,
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=NOTIFY_RETRY,
                    summary="notify the business (webhook, email)",
                )
            )
        except ActivityError as err:
            workflow.logger.warning(
                "task %s: notification not delivered: %s", task_id, err.cause or err
            )

    async def _notify_paused(self, task_id: int, pause: int) -> None:
        """Tell the business the task paused itself; a notice never changes the task."""
        try:
            await self.uninterrupted(
                workflow.execute_activity(
                    act.NOTIFY_PAUSED.name,
                    NotifyPausedRequest(task_id=task_id, pause=pause),
                    result_type=act.NOTIFY_PAUSED.result,
                    start_to_close_timeout=timedelta(seconds=60),
                    retry_policy=NOTIFY_RETRY,
                    summary="tell the business the task paused itself",
                )
            )
        except ActivityError as err:
            workflow.logger.warning(
                "task %s: pause notification not delivered: %s", task_id, err.cause or err
            )

    async def _finish(
        self, input: TaskInput, status: TaskStatus, error: str | None = None
    ) -> TaskOutcome:
        if self._pause_notice is not None:
            await self.uninterrupted(self._pause_notice)
        await self.execute_short(
            act.FINISH,
            FinishRequest(task_id=input.task_id, status=status, error_message=error),
        )
        workflow.upsert_search_attributes([sa.TASK_STATUS.value_set(status)])
        state = self._state
        succeeded = state.succeeded if state else 0
        failed = state.failed if state else 0
        total = state.total_items if state else 0
        workflow.set_current_details(f"**{status}**: {succeeded:,} succeeded, {failed:,} failed")
        # Added after runs were deployed: `patched` records a marker in new histories, and
        # runs whose history has no marker here (started before) replay without the activity.
        # README "Changing a workflow safely"; tests/workflows/test_notify_patch.py.
        if workflow.patched(NOTIFY_PATCH):
            await self._notify_finished(input.task_id)
        return TaskOutcome(
            task_id=input.task_id,
            status=status,
            succeeded=succeeded,
            failed=failed,
            skipped=state.skipped if state else 0,
            cancelled=max(total - succeeded - failed, 0),
        )
