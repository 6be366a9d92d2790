"""`POST /api/broadcasts`: intake (normalize, dedupe, explain invalid numbers) and start."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection

from api.deps import Operator, ResourcesDep
from api.errors import AppError
from api.schemas import BroadcastIn, BroadcastStarted, TaskOut
from longtasks.db.repositories import broadcasts as broadcast_repo
from longtasks.db.repositories.broadcasts import MessageSpec, RecipientInput
from longtasks.db.repositories.tasks import TaskRow
from longtasks.domain import TaskType
from longtasks.phones import normalize_recipients
from longtasks.tasks import NewTask, start_task

router = APIRouter(prefix="/api/broadcasts", tags=["broadcasts"])


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

    async def create_rows(conn: AsyncConnection, task: TaskRow) -> int:
        return await broadcast_repo.create_broadcast(
            conn,
            business_id=principal.business_id,
            task_id=task.id,
            name=body.name,
            message=message,
            recipient_list=recipients,
        )

    def summary(task: TaskRow, broadcast_id: int) -> str:
        # Shown in the Temporal UI: ids and counts only, never numbers or message text.
        return (
            f"broadcast #{broadcast_id} of business {principal.business_id}:"
            f" {len(recipients):,} recipients"
        )

    task, broadcast_id = await start_task(
        resources.engine,
        await resources.temporal_client(),
        NewTask(
            business_id=principal.business_id,
            task_type=TaskType.broadcast,
            total_items=len(recipients),
            priority=body.priority,
            start_at=body.start_at,
        ),
        task_queue=settings.temporal_task_queue,
        summary=summary,
        create_domain_rows=create_rows,
    )
    return BroadcastStarted(
        task=TaskOut.of(task),
        broadcast_id=broadcast_id,
        recipients_accepted=len(normalized.valid),
        recipients_invalid=len(normalized.invalid),
        duplicates_dropped=normalized.duplicates_dropped,
    )
