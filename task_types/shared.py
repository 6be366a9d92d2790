"""Components every worker runs beside its task types: the task-row activities the page loop
calls (mark running, cancel flag, status reason, finish, notify) and the daily cleanup."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from temporalio.client import Client

from activities.cleanup import CleanupActivities
from activities.notify import NotifyActivities
from activities.tasks import TaskActivities
from longtasks.settings import Settings
from longtasks.temporal.cleanup_schedule import ensure_cleanup_schedule
from task_types.registry import Component, WorkerContext
from workflows.cleanup import CleanupWorkflow


def task_row_activities(context: WorkerContext) -> Sequence[object]:
    return [TaskActivities(context.engine), NotifyActivities(context.engine, context.settings)]


log = logging.getLogger("longtasks.worker")


async def ensure_schedule(client: Client, settings: Settings) -> None:
    schedule_id = await ensure_cleanup_schedule(client, settings)
    log.info("cleanup schedule %s is in place", schedule_id)


def cleanup_activities(context: WorkerContext) -> Sequence[object]:
    return [
        CleanupActivities(
            context.engine, inbox_retention_s=context.settings.whatsapp_inbox_retention_s
        )
    ]


# Needed by every paged task type: a worker without it cannot run one.
TASK_ROWS = Component(name="task_rows", activities=task_row_activities)
# A worker that starts creates (or updates) the daily Schedule that starts the cleanup.
CLEANUP = Component(
    name="cleanup",
    workflows=[CleanupWorkflow],
    activities=cleanup_activities,
    on_worker_start=ensure_schedule,
)
