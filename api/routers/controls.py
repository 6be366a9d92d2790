"""What a person does to a task beyond cancelling it: pause and resume it, approve or reject
one that waits for approval (and look at what it will do first), retry its failed items.

- `POST /{id}/pause` (operator): no new item starts; items in flight settle; the task is
  `paused` (`paused_by`, `paused_at`) until resumed. 202 when this call paused it, 200 when it
  was pausing or paused already. `POST /{id}/resume` (operator): it goes on where it stopped;
  202, or 200 when it was not paused. Cancel works while paused.
- `POST /{id}/approve` and `/reject` (admin) for a task `awaiting_approval`: the person who
  created it cannot approve it (403). Approved, it starts (or waits for its `start_at`);
  rejected, it ends `cancelled` with nothing sent. Unanswered, it expires.

`GET /api/long_tasks/{id}/preview`: what a broadcast will do (read now, for whoever decides
on it): recipients after normalization, invalid ones, duplicates removed, suppressed ones,
the duration at the sender's pace, and WhatsApp's daily tier's headroom.

`POST /api/long_tasks/{id}/retry_failed` on a finished task starts a new task of the same type
holding only the items that failed retryably (never an invalid number or a recipient who opted
out), linked by `parent_task_id`; the parent lists it in `child_task_ids`. Broadcasts only: a
receipt delete's failures are ids that are not the business's (`not_found`), and a sync's are
messages the parser refused, both the same on every attempt.

Pause, resume, approve and reject are not one request transaction: each service
(`longtasks.tasks`) commits its flag or status before it tells Temporal, so the change stays
recorded when Temporal cannot be reached; the task is loaded and shown in short transactions of
their own (`Transactions`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Admin, Operator, Resources, ResourcesDep, Viewer
from api.errors import Conflict
from api.routers.broadcasts import launch_broadcast
from api.routers.tasks import load_in_own_transaction, load_task, render
from api.schemas import PreviewOut, TaskEnvelope, TaskOut
from api.transactions import ReadConn, Transactions, TransactionsDep
from longtasks.db.repositories import audiences as audience_repo
from longtasks.db.repositories import broadcasts as broadcast_repo
from longtasks.db.repositories.previews import broadcast_preview
from longtasks.domain import Priority, TaskType
from longtasks.tasks import Controlled, approve_task, pause_task, reject_task, resume_task

router = APIRouter(prefix="/api/long_tasks", tags=["controls"])

CONTROL_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": TaskEnvelope, "description": "it already was as asked; nothing changed"}
}


async def _answer(
    resources: Resources, transactions: Transactions, done: Controlled, response: Response
) -> TaskEnvelope:
    if not done.changed:
        response.status_code = 200
    return TaskEnvelope(task=await render(resources, transactions, done.task))


@router.post(
    "/{task_id}/pause", response_model=TaskEnvelope, status_code=202, responses=CONTROL_RESPONSES
)
async def pause(
    task_id: int,
    resources: ResourcesDep,
    principal: Operator,
    transactions: TransactionsDep,
    response: Response,
) -> TaskEnvelope:
    """Pause: nothing new starts, what is in flight settles, then `paused` until resumed."""
    task = await load_in_own_transaction(transactions, task_id, principal.business_id)
    done = await pause_task(resources.engine, resources.temporal_client, task, by=principal.subject)
    return await _answer(resources, transactions, done, response)


@router.post(
    "/{task_id}/resume", response_model=TaskEnvelope, status_code=202, responses=CONTROL_RESPONSES
)
async def resume(
    task_id: int,
    resources: ResourcesDep,
    principal: Operator,
    transactions: TransactionsDep,
    response: Response,
) -> TaskEnvelope:
    """Resume a paused task where it stopped: nothing skipped, nothing done twice."""
    task = await load_in_own_transaction(transactions, task_id, principal.business_id)
    done = await resume_task(resources.engine, resources.temporal_client, task)
    return await _answer(resources, transactions, done, response)


@router.post(
    "/{task_id}/approve",
    response_model=TaskEnvelope,
    status_code=202,
    responses=CONTROL_RESPONSES,
)
async def approve(
    task_id: int,
    resources: ResourcesDep,
    principal: Admin,
    transactions: TransactionsDep,
    response: Response,
) -> TaskEnvelope:
    """Let a task that waits for approval start; not by the person who created it (403)."""
    task = await load_in_own_transaction(transactions, task_id, principal.business_id)
    done = await approve_task(
        resources.engine, resources.temporal_client, task, by=principal.subject
    )
    return await _answer(resources, transactions, done, response)


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500)


@router.post(
    "/{task_id}/reject", response_model=TaskEnvelope, status_code=202, responses=CONTROL_RESPONSES
)
async def reject(
    task_id: int,
    resources: ResourcesDep,
    principal: Admin,
    transactions: TransactionsDep,
    response: Response,
    body: RejectIn | None = None,
) -> TaskEnvelope:
    """Refuse a task that waits for approval: it ends `cancelled`, nothing sent."""
    task = await load_in_own_transaction(transactions, task_id, principal.business_id)
    why = f": {body.reason}" if body is not None and body.reason else ""
    done = await reject_task(
        resources.engine,
        resources.temporal_client,
        task,
        by=principal.subject,
        reason=f"rejected by {principal.subject}{why}",
    )
    return await _answer(resources, transactions, done, response)


@router.get("/{task_id}/preview", response_model=PreviewOut)
async def preview(
    task_id: int, resources: ResourcesDep, principal: Viewer, conn: ReadConn
) -> PreviewOut:
    """What a broadcast will do; 409 for other task types."""
    task = await load_task(conn, task_id, principal.business_id)
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
    transactions: TransactionsDep,
    body: RetryFailedIn | None = None,
) -> RetryStarted:
    """A new task of the same type for the items that failed retryably; 202 with it. 409 while
    the task runs, for a type whose failures a retry cannot fix, or when nothing qualifies."""
    # Not one request transaction: the new task is written and committed by `start_task` in its
    # own, before its workflow starts; what it retries is read here, in one snapshot.
    async with transactions.read() as conn:
        parent = await load_task(conn, task_id, principal.business_id)
        if not parent.is_terminal:
            raise Conflict(f"task {task_id} is {parent.status}; retry its failures once it ends")
        if parent.task_type != TaskType.broadcast:
            raise Conflict(
                f"a {parent.task_type} task's failures fail the same way again; only broadcasts"
                " are retried"
            )
        codes = body.error_codes if body is not None else None
        sent = await broadcast_repo.get_broadcast_of_task(conn, parent.id)
        if sent is None:
            raise Conflict(f"task {task_id} has no broadcast to retry")
        retried = await broadcast_repo.retryable_failures(conn, parent.id, sent, error_codes=codes)
        # To an audience: the retry sends to those members, personalized from their rows.
        audience = None
        if sent.audience_id is not None:
            audience = await audience_repo.get(conn, sent.audience_id, principal.business_id)
    if not retried:
        raise Conflict(f"task {task_id} has no retryable failed items")
    task, broadcast_id = await launch_broadcast(
        resources,
        principal,
        name=sent.name[:180] + f" (retry of #{parent.id})",
        message=broadcast_repo.message_of(sent),
        recipients=retried,
        priority=Priority(parent.priority),
        parent_task_id=parent.id,
        audience=audience,
    )
    return RetryStarted(
        task=TaskOut.of(task),
        parent_task_id=parent.id,
        broadcast_id=broadcast_id,
        items=len(retried),
    )
