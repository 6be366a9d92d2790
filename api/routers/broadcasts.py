"""`POST /api/broadcasts`: intake (normalize, dedupe, explain invalid numbers, or an audience
and its columns) and start."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection

from api.deps import Operator, Resources, ResourcesDep
from api.errors import AppError, Conflict
from api.routers.audiences import load_audience
from api.schemas import BroadcastIn, BroadcastStarted, PreviewOut, TaskOut
from api.transactions import Transactions, TransactionsDep
from longtasks.audiences import template_params
from longtasks.auth.tokens import Principal
from longtasks.db.models import Audience, LongRunningTask
from longtasks.db.repositories import audiences as audience_repo
from longtasks.db.repositories import broadcasts as broadcast_repo
from longtasks.db.repositories.broadcasts import MessageSpec, RecipientInput
from longtasks.db.repositories.previews import broadcast_preview
from longtasks.domain import Priority, TaskStatus, TaskType, UnconfirmedPolicy
from longtasks.phones import normalize_recipients
from longtasks.tasks import NewTask, start_task

router = APIRouter(prefix="/api/broadcasts", tags=["broadcasts"])


async def launch_broadcast(
    resources: Resources,
    principal: Principal,
    *,
    name: str,
    message: MessageSpec,
    recipients: Sequence[RecipientInput],
    duplicates_dropped: int = 0,
    priority: Priority = Priority.normal,
    start_at: dt.datetime | None = None,
    parent_task_id: int | None = None,
    audience: Audience | None = None,
    unconfirmed_policy: UnconfirmedPolicy = UnconfirmedPolicy.at_most_once,
) -> tuple[LongRunningTask, int]:
    """Write the broadcast and its task, start the workflow; (the task, the broadcast id).

    To an `audience` (ready, checked by the caller) with no `recipients`: its members, read
    page by page at send time, nothing copied. With `recipients` too (a retry): those of its
    members (`RecipientInput.member_seq`), each still personalized from its row.
    """
    total = len(recipients) if recipients or audience is None else audience.valid_count or 0

    async def create_rows(conn: AsyncConnection, task: LongRunningTask) -> int:
        # Held until the transaction ends: a DELETE of the audience waits for this broadcast
        # to exist, then refuses (it is sending).
        if audience is not None and await audience_repo.lock_ready(conn, audience.id) is None:
            raise Conflict(f"audience {audience.id} is not ready")
        return await broadcast_repo.create_broadcast(
            conn,
            business_id=principal.business_id,
            task_id=task.id,
            name=name,
            message=message,
            recipient_list=recipients,
            duplicates_dropped=duplicates_dropped,
            audience_id=audience.id if audience is not None else None,
            recipient_count=total,
            unconfirmed_policy=unconfirmed_policy,
        )

    def summary(task: LongRunningTask, broadcast_id: int) -> str:
        # Shown in the Temporal UI: ids and counts only, never numbers or message text.
        retry = f" (retry of task {parent_task_id})" if parent_task_id is not None else ""
        to = f" to audience #{audience.id}" if audience is not None else ""
        return (
            f"broadcast #{broadcast_id} of business {principal.business_id}{to}:"
            f" {total:,} recipients{retry}"
        )

    return await start_task(
        resources.engine,
        await resources.temporal_client(),
        NewTask(
            business_id=principal.business_id,
            task_type=TaskType.broadcast,
            total_items=total,
            priority=priority,
            start_at=start_at,
            created_by=principal.subject,
            parent_task_id=parent_task_id,
            # The business's approval threshold counts the numbers a broadcast will message.
            approval_items=sum(1 for r in recipients if r.invalid_reason is None)
            if recipients or audience is None
            else total,
        ),
        task_queue=resources.settings.temporal_task_queue,
        summary=summary,
        create_domain_rows=create_rows,
        approval_ttl_s=resources.settings.approval_ttl_s,
    )


@router.post("", status_code=202, response_model=BroadcastStarted)
async def start_broadcast(
    body: BroadcastIn, resources: ResourcesDep, principal: Operator, transactions: TransactionsDep
) -> BroadcastStarted:
    """Start a broadcast to a list of numbers or to a ready audience; 202 with the task.
    Invalid numbers in a list become failed items (`invalid_phone`), duplicates are dropped.
    To an audience, template parameters may name its columns, filled per member at send."""
    settings = resources.settings
    if body.audience_id is not None:
        return await _to_audience(body, body.audience_id, resources, principal, transactions)
    assert body.recipients is not None
    if len(body.recipients) > settings.max_recipients_per_broadcast:
        raise AppError(
            f"at most {settings.max_recipients_per_broadcast} recipients per broadcast"
            f" ({len(body.recipients)} given)",
            status_code=413,
        )
    normalized = normalize_recipients(body.recipients, settings.default_phone_region)
    recipients = [RecipientInput(phone=p) for p in normalized.valid] + [
        RecipientInput(phone=raw, invalid_reason=reason) for raw, reason in normalized.invalid
    ]
    message = MessageSpec(
        text=body.message.text,
        template_name=body.message.template.name if body.message.template else None,
        template_language=body.message.template.language if body.message.template else None,
        template_params=[str(p) for p in body.message.template.params]
        if body.message.template
        else None,
    )
    task, broadcast_id = await launch_broadcast(
        resources,
        principal,
        name=body.name,
        message=message,
        recipients=recipients,
        duplicates_dropped=normalized.duplicates_dropped,
        priority=body.priority,
        start_at=body.start_at,
        unconfirmed_policy=body.unconfirmed_policy,
    )
    return BroadcastStarted(
        task=TaskOut.of(task),
        broadcast_id=broadcast_id,
        recipients_accepted=len(normalized.valid),
        recipients_invalid=len(normalized.invalid),
        duplicates_dropped=normalized.duplicates_dropped,
        preview=await _preview(resources, transactions, task),
    )


async def _preview(
    resources: Resources, transactions: Transactions, task: LongRunningTask
) -> PreviewOut | None:
    """What a broadcast waiting for approval will do, for the approver."""
    if task.status != TaskStatus.awaiting_approval:
        return None
    # After `start_task` committed the task in its own transaction: a short read of its own.
    async with transactions.read() as conn:
        found = await broadcast_preview(
            conn, task.id, default_messages_per_s=resources.settings.whatsapp_default_messages_per_s
        )
    return PreviewOut.of(task.id, found) if found is not None else None


def _message(body: BroadcastIn) -> MessageSpec:
    template = body.message.template
    params: list[template_params.Param] = []
    if template is not None:
        params = [
            p if isinstance(p, str) else template_params.Column(p.column, p.default)
            for p in template.params
        ]
    return MessageSpec(
        text=body.message.text,
        template_name=template.name if template else None,
        template_language=template.language if template else None,
        template_params=template_params.to_json(params) if template else None,
    )


async def _to_audience(
    body: BroadcastIn,
    audience_id: int,
    resources: Resources,
    principal: Principal,
    transactions: Transactions,
) -> BroadcastStarted:
    """Members are read page by page at send time, each message built from its row: nothing
    is copied, and two broadcasts to one audience share its members."""
    async with transactions.read() as conn:
        audience = await load_audience(conn, audience_id, principal.business_id)
    _check_audience(audience, body)
    task, broadcast_id = await launch_broadcast(
        resources,
        principal,
        name=body.name,
        message=_message(body),
        recipients=[],
        priority=body.priority,
        start_at=body.start_at,
        audience=audience,
        unconfirmed_policy=body.unconfirmed_policy,
    )
    return BroadcastStarted(
        task=TaskOut.of(task),
        broadcast_id=broadcast_id,
        audience_id=audience_id,
        recipients_accepted=audience.valid_count or 0,
        recipients_invalid=0,
        duplicates_dropped=0,
        preview=await _preview(resources, transactions, task),
    )


def _check_audience(audience: Audience, body: BroadcastIn) -> None:
    if audience.status != audience_repo.READY:
        why = f" ({audience.failure_reason})" if audience.failure_reason else ""
        raise Conflict(f"audience {audience.id} is {audience.status}{why}; it cannot be sent to")
    template = body.message.template
    unknown = [c for c in (template.columns if template else []) if c not in audience.variables]
    if unknown:
        raise AppError(
            f"the audience has no column {', '.join(repr(c) for c in unknown)}; its columns"
            f" are {', '.join(repr(v) for v in audience.variables) or 'none but the phone'}",
            status_code=422,
        )
