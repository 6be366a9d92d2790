"""receipt_delete: delete a business's receipts by id or by filter, page by page."""

from __future__ import annotations

from collections.abc import Sequence

from activities.pages import PageTuning
from activities.receipts import ReceiptDeleteActivities
from api.routers import receipts
from longtasks.domain import TaskType
from task_types.registry import TaskTypeSpec, WorkerContext
from workflows.receipts import ReceiptDeleteWorkflow


def receipt_delete_activities(context: WorkerContext, pages: PageTuning) -> Sequence[object]:
    return [ReceiptDeleteActivities(context.engine, pages)]


RECEIPT_DELETE = TaskTypeSpec(
    name=TaskType.receipt_delete,
    workflow=ReceiptDeleteWorkflow,
    activities=receipt_delete_activities,
    # A delete by ids cuts pages of this size; a delete by filter keeps the size its pages
    # were cut with at intake (the same setting, read by the API).
    page_size=lambda settings: settings.receipt_delete_page_size,
    intake=[receipts.delete_intake],
)
