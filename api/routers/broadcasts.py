"""`POST /api/broadcasts`: intake (normalize, dedupe, explain invalid numbers) and start."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection

from api.auth import Principal
from api.deps import Operator, Resources, ResourcesDep
from api.errors import AppError
from api.schemas import BroadcastIn, BroadcastStarted, PreviewOut, TaskOut
from longtasks.db.repositories import broadcasts as broadcast_repo
from longtasks.db.repositories.broadcasts import MessageSpec, RecipientInput
from longtasks.db.repositories.previews import broadcast_preview
from longtasks.db.repositories.tasks import TaskRow
from longtasks.domain import Priority, TaskStatus, TaskType
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
) -> tuple[TaskRow, int]:
    """Write the broadcast and its task, start the workflow; (the task, the broadcast id)."""

    async def create_rows(conn: AsyncConnection, task: TaskRow) -> int:
        return await broadcast_repo.create_broadcast(
            conn,
            business_id=principal.business_id,
            task_id=task.id,
            name=name,
            message=message,
            recipient_list=recipients,
            duplicates_dropped=duplicates_dropped,
        )

    def summary(task: TaskRow, broadcast_id: int) -> str:
        # Shown in the Temporal UI: ids and counts only, never numbers or message text.
        retry = f" (retry of task {parent_task_id})" if parent_task_id is not None else ""
        return (
            f"broadcast #{broadcast_id} of business {principal.business_id}:"
            f" {len(recipients):,} recipients{retry}"
        )

    return await start_task(
        resources.engine,
        await resources.temporal_client(),
        NewTask(
            business_id=principal.business_id,
            task_type=TaskType.broadcast,
            total_items=len(recipients),
            priority=priority,
            start_at=start_at,
            created_by=principal.subject,
            parent_task_id=parent_task_id,
            # The business's approval threshold counts the numbers a broadcast will message.
            approval_items=sum(1 for r in recipients if r.invalid_reason is None),
        ),
        task_queue=resources.settings.temporal_task_queue,
        summary=summary,
        create_domain_rows=create_rows,
        approval_ttl_s=resources.settings.approval_ttl_s,
    )


@router.post("", status_code=202, response_model=BroadcastStarted)
async def start_broadcast(
    body: BroadcastIn, resources: ResourcesDep, principal: Operator
) -> BroadcastStarted:
    """Start a broadcast; 202 with the task. Invalid numbers become failed items
    (`invalid_phone`), duplicates are dropped."""
    settings = resources.settings
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
        template_params=list(body.message.template.params) if body.message.template else None,
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
    )
    preview = None
    if task.status == TaskStatus.awaiting_approval:
        async with resources.engine.connect() as conn:
            found = await broadcast_preview(
                conn, task.id, default_messages_per_s=settings.whatsapp_default_messages_per_s
            )
        preview = PreviewOut.of(task.id, found) if found is not None else None
    return BroadcastStarted(
        task=TaskOut.of(task),
        broadcast_id=broadcast_id,
        recipients_accepted=len(normalized.valid),
        recipients_invalid=len(normalized.invalid),
        duplicates_dropped=normalized.duplicates_dropped,
        preview=preview,
    )
