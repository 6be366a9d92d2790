"""receipt_sync: receipts out of a business's Gmail mailbox; and the per-business Schedule's
kick that starts one periodically (a component: it is not a task itself)."""

from __future__ import annotations

from collections.abc import Sequence

from activities.pages import PageTuning
from activities.receipt_sync import ReceiptSyncActivities, SyncTuning
from activities.sync_kick import SyncKickActivities
from api.routers import receipts
from longtasks.db.repositories.gmail import TokenCipher
from longtasks.domain import TaskType
from task_types.registry import Component, TaskTypeSpec, WorkerContext
from workflows.receipts import ReceiptSyncKickWorkflow, ReceiptSyncWorkflow


def receipt_sync_activities(context: WorkerContext, pages: PageTuning) -> Sequence[object]:
    settings = context.settings
    tuning = SyncTuning(
        pages=pages,
        list_page_size=settings.gmail_list_page_size,
        fetch_concurrency=settings.gmail_fetch_concurrency,
    )
    cipher = TokenCipher(settings.encryption_keys)
    return [ReceiptSyncActivities(context.engine, context.deps.gmail, cipher, tuning)]


RECEIPT_SYNC = TaskTypeSpec(
    name=TaskType.receipt_sync,
    workflow=ReceiptSyncWorkflow,
    activities=receipt_sync_activities,
    # Fetch pages (messages per page); listing pages are GMAIL_LIST_PAGE_SIZE ids.
    page_size=lambda settings: settings.gmail_fetch_page_size,
    intake=[receipts.sync_intake],
)


def sync_kick_activities(context: WorkerContext) -> Sequence[object]:
    return [
        SyncKickActivities(context.engine, client=context.client, task_queue=context.task_queue)
    ]


GMAIL_SYNC_SCHEDULE = Component(
    name="gmail_sync_schedule",
    workflows=[ReceiptSyncKickWorkflow],
    activities=sync_kick_activities,
)
