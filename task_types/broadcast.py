"""broadcast: one WhatsApp message to every recipient of a list."""

from __future__ import annotations

from collections.abc import Sequence

from activities.broadcast import BroadcastActivities, BroadcastTuning
from activities.pacing import SenderPacer
from activities.pages import PageTuning
from api.routers import broadcasts
from longtasks.domain import TaskType
from task_types.registry import TaskTypeSpec, WorkerContext
from workflows.broadcast import BroadcastWorkflow


def broadcast_activities(context: WorkerContext, pages: PageTuning) -> Sequence[object]:
    settings = context.settings
    tuning = BroadcastTuning(
        pages=pages,
        send_concurrency=settings.send_concurrency,
        default_messages_per_s=settings.whatsapp_default_messages_per_s,
        unconfirmed_grace_s=settings.whatsapp_unconfirmed_grace_s,
        unconfirmed_max_wait_s=settings.whatsapp_unconfirmed_max_wait_s,
    )
    pacer = SenderPacer(context.engine)
    return [BroadcastActivities(context.engine, context.deps.whatsapp, tuning, pacer)]


BROADCAST = TaskTypeSpec(
    name=TaskType.broadcast,
    workflow=BroadcastWorkflow,
    activities=broadcast_activities,
    page_size=lambda settings: settings.broadcast_page_size,
    intake=[broadcasts.router],
    sends_messages=True,
)
