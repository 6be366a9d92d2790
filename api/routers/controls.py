"""What a person does to a task beyond cancelling it: look before it sends (a preview), and
retry its failed items as a new task.

`GET /api/long_tasks/{id}/preview`: what a broadcast will do (read now, for whoever decides
on it): recipients after normalization, invalid ones, duplicates removed, suppressed ones,
the duration at the sender's pace, and WhatsApp's daily tier's headroom.

`POST /api/long_tasks/{id}/retry_failed` on a finished task starts a new task of the same type
holding only the items that failed retryably (never an invalid number or a recipient who opted
out), linked by `parent_task_id`; the parent lists it in `child_task_ids`. Broadcasts only: a
receipt delete's failures are ids that are not the business's (`not_found`), and a sync's are
messages the parser refused, both the same on every attempt.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Operator, ResourcesDep, Viewer
from api.errors import Conflict
from api.routers.broadcasts import launch_broadcast
from api.routers.tasks import load_task
from api.schemas import TaskOut
from longtasks.db.repositories import broadcasts as broadcast_repo
from longtasks.db.repositories.broadcasts import RecipientInput
from longtasks.db.repositories.previews import BroadcastPreview, broadcast_preview
from longtasks.domain import Priority, TaskType

router = APIRouter(prefix="/api/long_tasks", tags=["controls"])


class PreviewOut(BaseModel):
    task_id: int
    broadcast_id: int
    submitted: int = Field(description="numbers the request carried")
    duplicates_removed: int
    invalid: int
    recipients: int = Field(description="valid numbers after normalization, duplicates removed")
    suppressed: int = Field(description="of those, opted out: not messaged")
    to_send: int
    messages_per_s: float | None = Field(description="the sender's pace; null: unpaced")
    estimated_duration_s: int | None = Field(description="at the sender's pace")
    tier_limit: int | None = Field(description="WhatsApp's unique recipients per 24 h")
    tier_used_24h: int
    tier_headroom: int | None
    exceeds_tier: bool

    @classmethod
    def of(cls, task_id: int, preview: BroadcastPreview) -> PreviewOut:
        return cls(task_id=task_id, exceeds_tier=preview.exceeds_tier, **preview.__dict__)


@router.get("/{task_id}/preview", response_model=PreviewOut)
async def preview(task_id: int, resources: ResourcesDep, principal: Viewer) -> PreviewOut:
    """What a broadcast will do; 409 for other task types."""
    task = await load_task(resources, task_id, principal.business_id)
    async with resources.engine.connect() as conn:
        found = await broadcast_preview(
            conn,
            task.id,
            default_messages_per_s=resources.settings.whatsapp_default_messages_per_s,
        )
    if found is None:
        raise Conflict(f"a {task.task_type} task has no preview; broadcasts do")
    return PreviewOut.of(task.id, found)


class RetryFailedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error_codes: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        default=None,
        max_length=100,
        description="only items that failed with one of these codes (default: every"
        " retryable failure)",
    )


class RetryStarted(BaseModel):
    task: TaskOut
    parent_task_id: int
    broadcast_id: int
    items: int


@router.post("/{task_id}/retry_failed", status_code=202, response_model=RetryStarted)
async def retry_failed(
    task_id: int,
    resources: ResourcesDep,
    principal: Operator,
    body: RetryFailedIn | None = None,
) -> RetryStarted:
    """A new task of the same type for the items that failed retryably; 202 with it. 409 while
    the task runs, for a type whose failures a retry cannot fix, or when nothing qualifies."""
    parent = await load_task(resources, task_id, principal.business_id)
    if not parent.is_terminal:
        raise Conflict(f"task {task_id} is {parent.status}; retry its failures once it ends")
    if parent.task_type != TaskType.broadcast:
        raise Conflict(
            f"a {parent.task_type} task's failures fail the same way again; only broadcasts"
            " are retried"
        )
    codes = body.error_codes if body is not None else None
    async with resources.engine.connect() as conn:
        intake = await broadcast_repo.intake_of_task(conn, parent.id)
        if intake is None:
            raise Conflict(f"task {task_id} has no broadcast to retry")
        phones = await broadcast_repo.retryable_failures(
            conn, parent.id, intake.broadcast_id, error_codes=codes
        )
    if not phones:
        raise Conflict(f"task {task_id} has no retryable failed items")
    task, broadcast_id = await launch_broadcast(
        resources,
        principal,
        name=intake.name[:180] + f" (retry of #{parent.id})",
        message=intake.message,
        recipients=[RecipientInput(phone=p) for p in phones],
        priority=Priority(parent.priority),
        parent_task_id=parent.id,
    )
    return RetryStarted(
        task=TaskOut.of(task),
        parent_task_id=parent.id,
        broadcast_id=broadcast_id,
        items=len(phones),
    )
