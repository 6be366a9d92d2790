"""`/api/receipts`: list receipts, start a bulk delete or a Gmail sync, connect a mailbox.

Three routers: `router` (the receipts themselves, always served), and the intakes the task
types bring through the registry (`task_types/`): `delete_intake` (receipt_delete) and
`sync_intake` (receipt_sync: the sync and the mailbox connection its Schedule needs).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_serializer,
    field_validator,
    model_validator,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from api.deps import Admin, Operator, ResourcesDep, Viewer
from api.errors import AppError, Conflict, NotFound
from api.schemas import (
    Limit,
    StartOptions,
    TaskOut,
    cursor_int,
    decode_cursor,
    encode_cursor,
)
from api.transactions import ReadConn, TransactionsDep
from longtasks.db.models import LongRunningTask
from longtasks.db.repositories import audit, businesses
from longtasks.db.repositories import gmail as gmail_repo
from longtasks.db.repositories import receipts as receipt_repo
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.audit import AuditAction
from longtasks.db.repositories.gmail import TokenCipher
from longtasks.db.repositories.receipts import ReceiptFilter
from longtasks.domain import ReceiptSource, TaskType
from longtasks.tasks import NewTask, start_task
from longtasks.temporal.gmail_schedule import ensure_gmail_sync_schedule

router = APIRouter(prefix="/api/receipts", tags=["receipts"])
delete_intake = APIRouter(prefix="/api/receipts", tags=["receipts"])
sync_intake = APIRouter(prefix="/api/receipts", tags=["receipts"])


# Built by validation from a receipt's row (`Receipt`), read by attribute.
class ReceiptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    gmail_message_id: str | None
    vendor: str
    amount: str = Field(description="a decimal string, e.g. '1234.50'")
    currency: str
    issued_at: dt.date
    subject: str
    attachments: list[str]
    task_id: int | None = Field(description="the sync task that stored it")
    created_at: dt.datetime

    @field_validator("amount", mode="before")
    @classmethod
    def _decimal_string(cls, amount: Decimal) -> str:
        # Money leaves as a decimal string, never a JSON float.
        return f"{amount:.2f}"


class ReceiptPage(BaseModel):
    items: list[ReceiptOut]
    next_cursor: str | None


class DeleteFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: ReceiptSource | None = None
    before: dt.date | None = Field(default=None, description="issued before this day")
    after: dt.date | None = Field(default=None, description="issued on or after this day")

    @model_validator(mode="after")
    def _one_criterion(self) -> DeleteFilter:
        if self.source is None and self.before is None and self.after is None:
            raise ValueError("the filter needs at least one of source, before, after")
        return self


class BulkDeleteIn(StartOptions):
    model_config = ConfigDict(extra="forbid")
    receipt_ids: list[Annotated[int, Field(ge=1)]] | None = Field(default=None, min_length=1)
    filter: DeleteFilter | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> BulkDeleteIn:
        if (self.receipt_ids is None) == (self.filter is None):
            raise ValueError("give exactly one of receipt_ids or filter")
        return self


class BulkDeleteStarted(BaseModel):
    task: TaskOut
    selected: int = Field(description="receipts selected for deletion (the task's total)")


class SyncIn(StartOptions):
    model_config = ConfigDict(extra="forbid")
    since: dt.date | None = Field(default=None, description="only mail received after this day")
    query: str | None = Field(
        default=None, max_length=500, description="a Gmail search, e.g. 'from:amazon.com'"
    )


class SyncStarted(BaseModel):
    task: TaskOut
    mailbox: str


class ConnectionIn(BaseModel):
    """The outcome of the OAuth consent: the mailbox and its tokens."""

    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    refresh_token: str = Field(min_length=1, max_length=2000)
    access_token: str = Field(default="", max_length=4000)


# Built by validation from the business's row (`GmailConnection`, whose tokens it never reads).
class ConnectionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    email: str
    history_id: int | None
    last_synced_at: dt.datetime | None
    schedule_id: str | None = None

    @field_serializer("history_id")
    def _history_as_string(self, value: int | None) -> str | None:
        # Gmail history ids are uint64: strings in JSON, as Gmail itself sends them.
        return None if value is None else str(value)


@router.get("", response_model=ReceiptPage)
async def list_receipts(
    principal: Viewer,
    conn: ReadConn,
    source: ReceiptSource | None = None,
    vendor: Annotated[str | None, Query(max_length=200)] = None,
    after: Annotated[dt.date | None, Query(description="issued on or after")] = None,
    before: Annotated[dt.date | None, Query(description="issued before")] = None,
    task_id: Annotated[int | None, Query(description="stored by this sync task")] = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> ReceiptPage:
    """The business's receipts, newest first."""
    before_id = None
    if cursor is not None:
        before_id = cursor_int(decode_cursor(cursor))
    where = ReceiptFilter(source=source, vendor=vendor, after=after, before=before, task_id=task_id)
    rows = await receipt_repo.list_receipts(
        conn, principal.business_id, where=where, before_id=before_id, limit=limit + 1
    )
    next_cursor = encode_cursor(str(rows[limit - 1].id)) if len(rows) > limit else None
    return ReceiptPage(
        items=[ReceiptOut.model_validate(r) for r in rows[:limit]], next_cursor=next_cursor
    )


@delete_intake.post("/bulk_delete", status_code=202, response_model=BulkDeleteStarted)
async def bulk_delete(
    body: BulkDeleteIn, resources: ResourcesDep, principal: Operator, transactions: TransactionsDep
) -> BulkDeleteStarted:
    """Delete receipts by id or by filter, as a task; 202 with it. Ids that are not this
    business's receipts become failed items (`not_found`); nothing of another business is
    touched. A filter is resolved now: receipts synced later are not deleted by this task."""
    settings = resources.settings
    business_id = principal.business_id
    if body.receipt_ids is not None and len(body.receipt_ids) > settings.max_receipt_ids_per_delete:
        raise AppError(
            f"at most {settings.max_receipt_ids_per_delete} receipt ids per request"
            f" ({len(body.receipt_ids)} given)",
            status_code=413,
        )
    total = len(set(body.receipt_ids)) if body.receipt_ids is not None else None
    where = None
    if body.filter is not None:
        where = ReceiptFilter(
            source=body.filter.source, before=body.filter.before, after=body.filter.after
        )
        # Not the request's transaction: `start_task` writes and commits the task in its own,
        # before it starts the workflow (see longtasks.tasks).
        async with transactions.read() as conn:
            total = await receipt_repo.count_matching(conn, business_id, where)
    assert total is not None

    async def create_rows(conn: AsyncConnection, task: LongRunningTask) -> int:
        if body.receipt_ids is not None:
            return await receipt_repo.select_ids(conn, task.id, body.receipt_ids)
        assert where is not None
        selected = await receipt_repo.plan_filter_delete(
            conn, task.id, business_id, where, settings.receipt_delete_page_size
        )
        if selected != task.total_items:
            # Receipts came or went since the count: the planned pages are the truth.
            await task_repo.set_total(conn, task.id, selected)
        return selected

    def summary(task: LongRunningTask, selected: int) -> str:
        how = "by id" if body.receipt_ids is not None else "by filter"
        return f"receipt delete of business {business_id}: {selected:,} receipts {how}"

    task, selected = await start_task(
        resources.engine,
        await resources.temporal_client(),
        NewTask(
            business_id=business_id,
            task_type=TaskType.receipt_delete,
            total_items=total,
            priority=body.priority,
            start_at=body.start_at,
            created_by=principal.subject,
        ),
        task_queue=settings.temporal_task_queue,
        summary=summary,
        create_domain_rows=create_rows,
    )
    return BulkDeleteStarted(task=TaskOut.of(task), selected=selected)


@sync_intake.post("/sync", status_code=202, response_model=SyncStarted)
async def sync(
    body: SyncIn, resources: ResourcesDep, principal: Operator, transactions: TransactionsDep
) -> SyncStarted:
    """Sync receipts out of the business's Gmail mailbox, as a task; 202 with it.

    Without `since`/`query` the sync is incremental from the last completed one (full the first
    time, or when Gmail no longer has that much history). The total is exact once the matching
    messages are listed, before any is fetched."""
    business_id = principal.business_id
    # Not the request's transaction: `start_task` writes and commits the task in its own,
    # before it starts the workflow (see longtasks.tasks).
    async with transactions.read() as conn:
        connection = await gmail_repo.get_connection(conn, business_id)
    if connection is None:
        raise Conflict("no Gmail mailbox is connected; PUT /api/receipts/gmail_connection first")

    async def create_rows(conn: AsyncConnection, task: LongRunningTask) -> None:
        query = body.query.strip() if body.query and body.query.strip() else None
        await gmail_repo.create_sync_run(
            conn, task_id=task.id, business_id=business_id, query=query, since=body.since
        )

    def summary(task: LongRunningTask, _: None) -> str:
        # Ids only: the mailbox address and the query stay out of Temporal.
        return f"Gmail receipt sync of business {business_id}"

    task, _ = await start_task(
        resources.engine,
        await resources.temporal_client(),
        NewTask(
            business_id=business_id,
            task_type=TaskType.receipt_sync,
            total_items=0,
            priority=body.priority,
            start_at=body.start_at,
            created_by=principal.subject,
        ),
        task_queue=resources.settings.temporal_task_queue,
        summary=summary,
        create_domain_rows=create_rows,
    )
    return SyncStarted(task=TaskOut.of(task), mailbox=connection.email)


@sync_intake.get("/gmail_connection", response_model=ConnectionOut)
async def get_connection(principal: Viewer, conn: ReadConn) -> ConnectionOut:
    """The connected mailbox (never its tokens); 404 when none is."""
    connection = await gmail_repo.get_connection(conn, principal.business_id)
    if connection is None:
        raise NotFound("no Gmail mailbox is connected")
    return ConnectionOut.model_validate(connection)


@sync_intake.put("/gmail_connection", response_model=ConnectionOut)
async def put_connection(
    body: ConnectionIn, resources: ResourcesDep, principal: Admin, transactions: TransactionsDep
) -> ConnectionOut:
    """Connect (or reconnect) the business's mailbox; tokens are stored encrypted, and the
    business's Temporal Schedule of incremental syncs is created or updated."""
    settings = resources.settings
    cipher = TokenCipher(settings.encryption_keys)
    # Committed before Temporal is asked for the Schedule: no row lock is held across that
    # call, and a Schedule never runs before the mailbox it syncs is stored. When Temporal
    # fails, the mailbox stays connected and repeating the request makes the Schedule.
    async with transactions.write() as conn:
        await businesses.ensure_business(conn, principal.business_id)
        await gmail_repo.upsert_connection(
            conn,
            cipher,
            business_id=principal.business_id,
            email=body.email,
            refresh_token=body.refresh_token,
            access_token=body.access_token,
        )
        connection = await gmail_repo.get_connection(conn, principal.business_id)
        # No mailbox address or token in the log: that a connection changed, and by whom.
        await audit.record(conn, AuditAction.gmail_connection_updated)
    assert connection is not None
    schedule_id = await ensure_gmail_sync_schedule(
        await resources.temporal_client(),
        principal.business_id,
        task_queue=settings.temporal_task_queue,
        interval_s=settings.gmail_sync_interval_s,
    )
    return ConnectionOut.model_validate(connection).model_copy(update={"schedule_id": schedule_id})
