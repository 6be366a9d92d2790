"""The per-business Temporal Schedule that syncs a connected Gmail mailbox periodically.

`gmail-sync-{business_id}` starts the tiny `receipt_sync_kick` workflow every interval; its one
activity creates an ordinary `receipt_sync` task (row + workflow), so scheduled syncs show in
`/api/long_tasks` like any other and can be cancelled the same way. The schedule is visible
(and can be paused or triggered) in the Temporal Web UI under Schedules.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from longtasks.contracts.receipts import KickInput
from longtasks.temporal import search_attributes as sa

KICK_WORKFLOW = "receipt_sync_kick"


def gmail_schedule_id(business_id: int) -> str:
    return f"gmail-sync-{business_id}"


def gmail_sync_schedule(business_id: int, *, task_queue: str, interval_s: int) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            KICK_WORKFLOW,
            KickInput(business_id=business_id),
            id=f"gmail-sync-kick-{business_id}",
            task_queue=task_queue,
            typed_search_attributes=TypedSearchAttributes(
                [SearchAttributePair(sa.BUSINESS_ID, business_id)]
            ),
            static_summary=f"scheduled Gmail sync kick of business {business_id}",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=interval_s))]),
        # A kick lasts a second; a still-running sync is skipped by the kick itself.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=f"incremental Gmail receipt sync of business {business_id}"),
    )


async def ensure_gmail_sync_schedule(
    client: Client, business_id: int, *, task_queue: str, interval_s: int
) -> str:
    """Create the business's schedule, or bring an existing one to this interval and queue."""
    schedule_id = gmail_schedule_id(business_id)
    schedule = gmail_sync_schedule(business_id, task_queue=task_queue, interval_s=interval_s)
    try:
        await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:

        def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
            # Keep a pause an operator set in the UI.
            schedule.state = current.description.schedule.state
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(update)
    return schedule_id
