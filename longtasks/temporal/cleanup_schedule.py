"""The daily cleanup's Temporal Schedule, created idempotently when a worker starts.

`{TEMPORAL_TASK_QUEUE}-cleanup` starts the `cleanup` workflow (workflows/cleanup.py) once a day
(`CLEANUP_CRON`, UTC). A worker that starts creates it, or brings its spec and action up to date
with the settings while keeping its state: a schedule ops paused in the Temporal UI stays paused
across deploys. Many workers starting at once is fine: one creates, the others update.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from longtasks.contracts.ops import CleanupInput
from longtasks.settings import Settings

CLEANUP_WORKFLOW = "cleanup"


def cleanup_schedule_id(settings: Settings) -> str:
    return f"{settings.temporal_task_queue}-cleanup"


def cleanup_schedule(settings: Settings) -> Schedule:
    days = settings.cleanup_retention_days
    return Schedule(
        action=ScheduleActionStartWorkflow(
            CLEANUP_WORKFLOW,
            CleanupInput(retention_days=days, batch_size=settings.cleanup_batch_size),
            id=cleanup_schedule_id(settings),
            task_queue=settings.temporal_task_queue,
            static_summary=f"delete terminal tasks older than {days} days, with their ledgers",
        ),
        spec=ScheduleSpec(cron_expressions=[settings.cleanup_cron]),
        # A day's run still going (a huge backlog) is not joined by the next one.
        policy=SchedulePolicy(
            overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(hours=12)
        ),
        state=ScheduleState(note="created by the longtasks worker; pausing it is safe"),
    )


async def ensure_cleanup_schedule(client: Client, settings: Settings) -> str:
    schedule_id = cleanup_schedule_id(settings)
    wanted = cleanup_schedule(settings)
    try:
        await client.create_schedule(schedule_id, wanted)
    except ScheduleAlreadyRunningError:

        def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
            # Keep what ops set in the UI (paused, note); update what the settings own.
            wanted.state = current.description.schedule.state
            return ScheduleUpdate(schedule=wanted)

        await client.get_schedule_handle(schedule_id).update(update)
    return schedule_id
