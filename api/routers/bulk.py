"""`POST /api/long_tasks/bulk_cancel`: cancel every unfinished task of the business that matches.

Each task goes the ordinary cancel path (`longtasks.tasks.cancel_task`: flag, then signal), so
a bulk cancel ends each task gracefully with exact counts, like one cancel at a time. Included
before the tasks router so `bulk_cancel` is never read as a task id.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import Operator, ResourcesDep, require_registered_task_type
from api.errors import AppError
from api.schemas import TaskTypeName
from api.transactions import TransactionsDep
from longtasks.db.models import LongRunningTask
from longtasks.db.repositories import ops as ops_repo
from longtasks.tasks import CancelNotDelivered, cancel_task

router = APIRouter(prefix="/api/long_tasks", tags=["long_tasks"])

# One request cancels at most this many; the answer says when more are left (`remaining`).
MAX_PER_REQUEST = 1000
_SIGNALS_IN_FLIGHT = 16


class BulkCancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    task_type: TaskTypeName | None = None
    created_before: dt.datetime | None = None
    reason: str = Field(default="bulk cancel", max_length=500)

    @field_validator("created_before")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("created_before needs a time zone, e.g. 2026-12-01T09:00:00Z")
        return value


class BulkCancelOut(BaseModel):
    cancelled: list[int] = Field(description="tasks now cancelling (or cancelled)")
    already_terminal: int = Field(description="matching tasks that had already ended")
    count: int = Field(description="len(cancelled)")
    # Cancel recorded (activities stop on the flag), but Temporal could not be told yet:
    # repeating the request signals them again.
    not_signalled: list[int] = Field(default_factory=list)
    remaining: bool = Field(default=False, description="more matched: repeat the request")


@router.post("/bulk_cancel", response_model=BulkCancelOut)
async def bulk_cancel(
    request: Request,
    resources: ResourcesDep,
    principal: Operator,
    transactions: TransactionsDep,
    body: BulkCancelIn | None = None,
) -> BulkCancelOut:
    """Cancel every running or scheduled task of the business matching the filter."""
    body = body or BulkCancelIn()
    if body.task_type is not None:
        require_registered_task_type(request, body.task_type, ("body", "task_type"))
    # Not one request transaction: each task's cancel commits its flag before Temporal is told
    # (`cancel_task`, in transactions of its own); the selection is one short snapshot.
    async with transactions.read() as conn:
        candidates = await ops_repo.list_unfinished(
            conn,
            principal.business_id,
            task_type=body.task_type,
            created_before=body.created_before,
            limit=MAX_PER_REQUEST + 1,
        )
        already_terminal = await ops_repo.count_terminal(
            conn,
            principal.business_id,
            task_type=body.task_type,
            created_before=body.created_before,
        )
    remaining = len(candidates) > MAX_PER_REQUEST
    candidates = candidates[:MAX_PER_REQUEST]
    gate = asyncio.Semaphore(_SIGNALS_IN_FLIGHT)
    cancelled: list[int] = []
    not_signalled: list[int] = []

    async def cancel_one(task: LongRunningTask) -> None:
        nonlocal already_terminal
        async with gate:
            try:
                updated = await cancel_task(
                    resources.engine,
                    resources.temporal_client,
                    task,
                    body.reason,
                    bulk=True,
                )
            except (CancelNotDelivered, AppError):  # AppError: Temporal unreachable
                not_signalled.append(task.id)
                cancelled.append(task.id)
                return
        if updated is task:  # it ended between the listing and the cancel
            already_terminal += 1
        else:
            cancelled.append(task.id)

    await asyncio.gather(*(cancel_one(t) for t in candidates))
    cancelled.sort()
    return BulkCancelOut(
        cancelled=cancelled,
        already_terminal=already_terminal,
        count=len(cancelled),
        not_signalled=sorted(not_signalled),
        remaining=remaining,
    )
