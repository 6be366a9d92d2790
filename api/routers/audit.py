"""`GET /api/audit` (and `.csv`): who did what in the business, newest first (admin).

Rows come from `audit_events`, which the application may append to but never change: task
started, cancelled, deleted (and paused, resumed, approved, rejected, retried once those
controls exist), notification, policy and Gmail connection changes, token revocations; each with
the actor's subject and role, the time, the client address and the request id.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from api.deps import Admin
from api.exports import csv_cell
from api.schemas import MAX_BIGINT, Limit, cursor_int, decode_cursor, encode_cursor
from api.transactions import ExportConn, ReadConn
from longtasks.db.repositories import audit
from longtasks.db.repositories.audit import AuditAction, AuditRow

router = APIRouter(prefix="/api", tags=["audit"])

ActionName = Annotated[AuditAction, Query(description="only this action")]
TaskIdFilter = Annotated[int, Query(ge=1, le=MAX_BIGINT, description="only about this task")]


class AuditOut(BaseModel):
    id: int
    action: str
    actor: str = Field(description="the token's subject (`sub`), or system:<name>")
    actor_role: str
    task_id: int | None
    at: dt.datetime
    client_addr: str | None
    request_id: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, row: AuditRow) -> AuditOut:
        return cls(
            id=row.id,
            action=row.action,
            actor=row.actor_subject,
            actor_role=row.actor_role,
            task_id=row.task_id,
            at=row.at,
            client_addr=row.client_addr,
            request_id=row.request_id,
            details=row.details,
        )


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None


@router.get("/audit", response_model=AuditPage)
async def list_audit(
    principal: Admin,
    conn: ReadConn,
    action: ActionName | None = None,
    task_id: TaskIdFilter | None = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AuditPage:
    before_id = cursor_int(decode_cursor(cursor)) if cursor is not None else None
    rows = await audit.list_events(
        conn,
        principal.business_id,
        limit=limit + 1,
        before_id=before_id,
        action=action.value if action else None,
        task_id=task_id,
    )
    next_cursor = encode_cursor(str(rows[limit - 1].id)) if len(rows) > limit else None
    return AuditPage(items=[AuditOut.of(r) for r in rows[:limit]], next_cursor=next_cursor)


CSV_COLUMNS = [
    "id",
    "at",
    "action",
    "actor",
    "actor_role",
    "task_id",
    "client_addr",
    "request_id",
    "details",
]
_PAGE = 2000


@router.get("/audit.csv", response_class=StreamingResponse)
async def export_audit(
    principal: Admin,
    conn: ExportConn,
    action: ActionName | None = None,
    task_id: TaskIdFilter | None = None,
) -> StreamingResponse:
    """The whole log (or one action or task of it), newest first, streamed in pages of one
    snapshot (rows recorded while it streams are not in it)."""

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        before_id: int | None = None
        while True:
            page = await audit.list_events(
                conn,
                principal.business_id,
                limit=_PAGE,
                before_id=before_id,
                action=action.value if action else None,
                task_id=task_id,
            )
            for row in page:
                out = AuditOut.of(row)
                values = out.model_dump() | {"details": json.dumps(out.details, sort_keys=True)}
                writer.writerow([csv_cell(values[c]) for c in CSV_COLUMNS])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(page) < _PAGE:
                return
            before_id = page[-1].id

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
