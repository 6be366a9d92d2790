"""The shared page loop alone, in seconds: the real broadcast workflow on the dev server, its
activities replaced by stand-ins registered under the same names (temporalio samples' pattern)
on a worker with a fresh task queue. No Postgres, no provider: what is tested is what the loop
schedules, waits for, carries across runs and records, not what the activities do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
)
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from longtasks.contracts import activities as act
from longtasks.contracts.broadcasts import UnconfirmedCheck, UnconfirmedReview
from longtasks.contracts.ops import NotifyRequest, NotifyResult
from longtasks.contracts.tasks import (
    CancelRequest,
    CancelSignal,
    FinishRequest,
    PageRequest,
    PageResult,
    StatusReasonRequest,
    TaskInput,
    TaskOutcome,
    TaskPlan,
)
from tests.conftest import wait_until
from workflows.broadcast import BroadcastWorkflow


@dataclass
class Script:
    """What the stand-ins answer, and what the loop asked of them (in order)."""

    total_items: int
    page_size: int = 10
    window: int = 2
    pages_per_run: int = 400
    # Page number -> what that page does on its first call (later calls succeed).
    first_call: dict[int, str] = field(default_factory=dict)
    defer_s: float = 1.0
    pages: list[int] = field(default_factory=list)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    # Held pages wait for this; the test releases them.
    release: asyncio.Event = field(default_factory=asyncio.Event)
    held: int = 0
    # What `broadcast.resolve_unconfirmed` answers, one review per call (then: nothing left).
    reviews: list[UnconfirmedReview] = field(default_factory=list)

    def named(self, name: str) -> list[Any]:
        return [arg for called, arg in self.calls if called == name]


class StandIns:
    """Same names as the real activities (`longtasks.contracts.activities`)."""

    def __init__(self, script: Script) -> None:
        self.script = script

    @activity.defn(name=act.MARK_RUNNING.name)
    async def mark_running(self, task_id: int) -> bool:
        self.script.calls.append((act.MARK_RUNNING.name, task_id))
        return True

    @activity.defn(name=act.BROADCAST_BEGIN.name)
    async def begin(self, task_id: int) -> TaskPlan:
        self.script.calls.append((act.BROADCAST_BEGIN.name, task_id))
        s = self.script
        return TaskPlan(
            total_items=s.total_items,
            page_size=s.page_size,
            window=s.window,
            pages_per_run=s.pages_per_run,
            heartbeat_timeout_s=30,
        )

    @activity.defn(name=act.BROADCAST_SEND_PAGE.name)
    async def send_page(self, request: PageRequest) -> PageResult:
        s = self.script
        s.pages.append(request.page)
        s.calls.append((act.BROADCAST_SEND_PAGE.name, request))
        items = min(request.up_to_seq, s.total_items) - request.after_seq
        behaviour = s.first_call.pop(request.page, None)
        if behaviour == "defer":
            return PageResult(
                deferred_until=time.time() + s.defer_s, deferred_reason="test quota used up"
            )
        if behaviour == "explode":
            raise ApplicationError("provider exploded", non_retryable=True)
        if behaviour == "hold":
            s.held += 1
            await asyncio.wait_for(s.release.wait(), timeout=30)
        if behaviour == "rerun":
            return PageResult(succeeded=1)
        return PageResult(succeeded=items - 1, failed=1)

    @activity.defn(name=act.BROADCAST_RESOLVE_UNCONFIRMED.name)
    async def resolve_unconfirmed(self, check: UnconfirmedCheck) -> UnconfirmedReview:
        self.script.calls.append((act.BROADCAST_RESOLVE_UNCONFIRMED.name, check))
        return self.script.reviews.pop(0) if self.script.reviews else UnconfirmedReview()

    @activity.defn(name=act.REQUEST_CANCEL.name)
    async def request_cancel(self, request: CancelRequest) -> None:
        self.script.calls.append((act.REQUEST_CANCEL.name, request))

    @activity.defn(name=act.SET_STATUS_REASON.name)
    async def set_status_reason(self, request: StatusReasonRequest) -> None:
        self.script.calls.append((act.SET_STATUS_REASON.name, request))

    @activity.defn(name=act.FINISH.name)
    async def finish(self, request: FinishRequest) -> None:
        self.script.calls.append((act.FINISH.name, request))

    @activity.defn(name=act.NOTIFY_FINISHED.name)
    async def notify_finished(self, request: NotifyRequest) -> NotifyResult:
        self.script.calls.append((act.NOTIFY_FINISHED.name, request))
        return NotifyResult()


@dataclass
class Loop:
    client: Client
    queue: str

    async def start(self, task_id: int = 7) -> WorkflowHandle[Any, TaskOutcome]:
        return await self.client.start_workflow(
            BroadcastWorkflow.run,
            TaskInput(task_id=task_id, business_id=1),
            id=f"page-loop-test-{uuid.uuid4().hex[:10]}",
            task_queue=self.queue,
        )


@contextlib.asynccontextmanager
async def loop_with(env: WorkflowEnvironment, script: Script) -> AsyncIterator[Loop]:
    """A worker running the broadcast workflow and the stand-ins, on a fresh task queue."""
    queue = f"page-loop-{uuid.uuid4().hex[:8]}"
    stand_ins = StandIns(script)
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[BroadcastWorkflow],
        activities=[
            stand_ins.mark_running,
            stand_ins.begin,
            stand_ins.send_page,
            stand_ins.resolve_unconfirmed,
            stand_ins.request_cancel,
            stand_ins.set_status_reason,
            stand_ins.finish,
            stand_ins.notify_finished,
        ],
    ):
        yield Loop(env.client, queue)


async def _runs(client: Client, handle: WorkflowHandle[Any, Any]) -> int:
    """How many runs the workflow took: follow the continue-as-new chain from the first."""
    runs, run_id = 0, handle.first_execution_run_id or handle.result_run_id
    while run_id is not None:
        runs += 1
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return runs


async def test_pages_run_in_order_and_the_counts_add_up(temporal_env: WorkflowEnvironment) -> None:
    script = Script(total_items=45)
    async with loop_with(temporal_env, script) as loop:
        outcome = await (await loop.start()).result()
    assert script.pages == [0, 1, 2, 3, 4]
    requests = script.named(act.BROADCAST_SEND_PAGE.name)
    assert [(r.after_seq, r.up_to_seq) for r in requests][-1] == (40, 50)
    assert (outcome.status, outcome.succeeded, outcome.failed, outcome.cancelled) == (
        "completed",
        40,
        5,
        0,
    )
    assert [f.status for f in script.named(act.FINISH.name)] == ["completed"]
    assert script.named(act.NOTIFY_FINISHED.name), "notified after the finish"


async def test_continues_as_new_every_pages_per_run_carrying_cursor_and_counts(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = Script(total_items=50, pages_per_run=2)
    async with loop_with(temporal_env, script) as loop:
        handle = await loop.start()
        outcome = await handle.result()
        assert await _runs(loop.client, handle) == 3, "2 + 2 + 1 pages"
    # Every page once: the cursor was carried, no page was redone or skipped.
    assert sorted(script.pages) == [0, 1, 2, 3, 4]
    # The first run's steps are not repeated by the next runs.
    assert len(script.named(act.MARK_RUNNING.name)) == 1
    assert len(script.named(act.BROADCAST_BEGIN.name)) == 1
    assert (outcome.succeeded, outcome.failed) == (45, 5), "counts carried across runs"


async def test_a_quota_deferral_waits_shows_why_and_reruns_the_page(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = Script(total_items=40, window=1, first_call={1: "defer"})
    async with loop_with(temporal_env, script) as loop:
        outcome = await (await loop.start()).result()
    # Page 1 ran again after the wait; nothing after it started while it waited (window 1).
    assert script.pages == [0, 1, 1, 2, 3]
    reasons = [r.reason for r in script.named(act.SET_STATUS_REASON.name)]
    assert len(reasons) == 2 and reasons[1] is None, reasons
    assert reasons[0] is not None and reasons[0].startswith("test quota used up; resumes at")
    assert (outcome.status, outcome.succeeded + outcome.failed) == ("completed", 40)


async def test_cancel_by_signal_stops_scheduling_and_lets_pages_in_flight_finish(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = Script(total_items=100, window=2, first_call={0: "hold", 1: "hold"})
    async with loop_with(temporal_env, script) as loop:
        handle = await loop.start()

        async def both_held() -> bool:
            return script.held == 2

        await wait_until(both_held, what="two pages in flight")
        await handle.signal(BroadcastWorkflow.cancel, CancelSignal(reason="stop", source="api"))

        async def seen() -> bool:
            progress = await handle.query(BroadcastWorkflow.progress)
            return bool(progress["cancel_requested"])

        await wait_until(seen, what="the signal handled")
        script.release.set()
        outcome = await handle.result()
    assert script.pages == [0, 1], "no page started after the cancel"
    assert (outcome.status, outcome.succeeded + outcome.failed, outcome.cancelled) == (
        "cancelled",
        20,
        80,
    )
    # The REST API records its own cancel in Postgres before it signals.
    assert script.named(act.REQUEST_CANCEL.name) == []
    assert [f.status for f in script.named(act.FINISH.name)] == ["cancelled"]


async def test_cancel_through_temporal_is_recorded_and_ends_the_run_cancelled(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = Script(total_items=100, window=2, first_call={0: "hold", 1: "hold"})
    async with loop_with(temporal_env, script) as loop:
        handle = await loop.start()

        async def both_held() -> bool:
            return script.held == 2

        await wait_until(both_held, what="two pages in flight")
        await handle.cancel()  # the Web UI's Cancel button

        async def seen() -> bool:
            progress = await handle.query(BroadcastWorkflow.progress)
            return bool(progress["cancel_requested"])

        await wait_until(seen, what="the cancel turned into the graceful one")
        script.release.set()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert isinstance(failure.value.cause, CancelledError)
    assert script.pages == [0, 1]
    [cancel] = script.named(act.REQUEST_CANCEL.name)
    assert cancel.reason == "cancelled via temporal"
    # The pages in flight settled; the task row ends cancelled, not failed.
    assert [f.status for f in script.named(act.FINISH.name)] == ["cancelled"]


async def test_a_failed_page_fails_the_task_with_its_reason(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = Script(total_items=100, window=1, first_call={2: "explode"})
    async with loop_with(temporal_env, script) as loop:
        handle = await loop.start()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert script.pages == [0, 1, 2], "nothing scheduled after the failure"
    [finish] = script.named(act.FINISH.name)
    assert finish.status == "failed"
    assert finish.error_message == "page 3 failed: provider exploded"
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "TaskFailed"
    assert cause.message == "page 3 failed: provider exploded"


async def test_unconfirmed_sends_are_waited_for_and_rearmed_pages_run_again(
    temporal_env: WorkflowEnvironment,
) -> None:
    script = Script(
        total_items=30,
        reviews=[
            UnconfirmedReview(remaining=2, decides_in_s=0.2),
            UnconfirmedReview(succeeded=1, rearmed=1, rearmed_pages=[2]),
        ],
        first_call={},
    )
    async with loop_with(temporal_env, script) as loop:
        outcome = await (await loop.start()).result()
    checks = script.named(act.BROADCAST_RESOLVE_UNCONFIRMED.name)
    assert len(checks) == 3 and checks[0].page_size == 10
    assert script.pages == [0, 1, 2, 2], "the re-armed page ran again, then the wait ended"
    assert outcome.status == "completed"
    # 3 pages of 9 + 1, one settled by its status webhook, one page run again (9 + 1).
    assert (outcome.succeeded, outcome.failed) == (27 + 1 + 9, 3 + 1)
