"""`/api/audiences`: customer lists uploaded as CSV, imported by a task, sent to by broadcasts.

`POST` streams the upload into the staging table as it arrives (the body is never held whole)
and answers 202 as soon as the last byte is stored, with the audience `importing` and its
import task. The task normalizes the numbers page by page, drops duplicates and suppressed
numbers, and leaves the audience `ready` (or `failed`, with the reason). A file that is not a
CSV customer list, or is too large, is refused as a whole and nothing of it is kept.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncConnection

from api.deps import Admin, Operator, ResourcesDep, Viewer
from api.errors import AppError, Conflict, NotFound
from api.schemas import (
    MAX_BIGINT,
    Limit,
    TaskOut,
    cursor_int,
    decode_cursor,
    encode_cursor,
)
from api.transactions import ExportConn, ReadConn, TransactionsDep, WriteConn
from api.uploads import csv_upload
from longtasks.audiences.csv_intake import Chunk, CsvIntake, CsvRefused
from longtasks.db.models import Audience, AudienceError, LongRunningTask
from longtasks.db.repositories import audiences as audience_repo
from longtasks.db.repositories import tasks as task_repo
from longtasks.domain import AudienceStatus, RowIssue, TaskType
from longtasks.tasks import NewTask, TaskNotStarted, start_task

router = APIRouter(prefix="/api/audiences", tags=["audiences"])


# Built by validation from the audience's row (`Audience`, see `of`). (Comments, not
# docstrings: docstrings become the spec's descriptions.)
class AudienceOut(BaseModel):
    id: int
    name: str
    status: AudienceStatus
    failure_reason: str | None
    columns: list[str] = Field(description="the header's columns, in file order")
    phone_column: str
    variables: list[str] = Field(
        description='the columns a template parameter may name: `{"column": name}`'
    )
    filename: str | None
    byte_count: int
    row_count: int = Field(description="rows in the file (blank rows are not rows)")
    valid_count: int | None = Field(description="members: numbers a broadcast sends to")
    invalid_count: int | None
    duplicate_count: int | None
    suppressed_count: int | None
    task_id: int | None = Field(description="the import task (its progress, cancel, events)")
    progress_pct: float
    created_at: dt.datetime
    updated_at: dt.datetime
    ready_at: dt.datetime | None

    @classmethod
    def of(cls, row: Audience, task: LongRunningTask | None = None) -> AudienceOut:
        """Validated from the row's columns (as loaded), with the phone column by name, the
        variables, and the import's progress (its task's, while it imports)."""
        if row.status != audience_repo.IMPORTING:
            progress = 100.0
        else:
            progress = min(task.progress_pct, 99.9) if task is not None else 0.0
        return cls.model_validate(
            {
                **inspect(row).dict,
                "phone_column": row.columns[row.phone_column],
                "variables": row.variables,
                "progress_pct": progress,
            }
        )


class AudienceStarted(BaseModel):
    audience: AudienceOut
    task: TaskOut


class AudiencePage(BaseModel):
    items: list[AudienceOut]
    next_cursor: str | None


class AudienceErrorOut(BaseModel):
    line: int = Field(description="the line of the file the row starts on (the header is 1)")
    reason: RowIssue
    detail: str
    phone: str
    duplicate_of: int | None = Field(description="for a duplicate: the line kept instead")
    values: dict[str, str] = Field(description="the row's other columns")


class AudienceErrorPage(BaseModel):
    items: list[AudienceErrorOut]
    next_cursor: str | None


def _error_out(row: AudienceError, variables: list[str]) -> AudienceErrorOut:
    """Validated from the row's columns, with its values named by the audience's variables."""
    return AudienceErrorOut.model_validate(
        {**inspect(row).dict, "values": dict(zip(variables, row.vars, strict=False))}
    )


async def load_audience(conn: AsyncConnection, audience_id: int, business_id: int) -> Audience:
    """Another business's audience is 404, not 403: its existence is not revealed."""
    if not 0 < audience_id <= MAX_BIGINT:
        raise NotFound(f"audience {audience_id} not found")
    audience = await audience_repo.get(conn, audience_id, business_id)
    if audience is None:
        raise NotFound(f"audience {audience_id} not found")
    return audience


async def _with_progress(conn: AsyncConnection, audience: Audience) -> AudienceOut:
    task = None
    if audience.status == audience_repo.IMPORTING and audience.task_id is not None:
        task = await task_repo.get_task(conn, audience.task_id)
    return AudienceOut.of(audience, task)


@router.post(
    "",
    status_code=202,
    response_model=AudienceStarted,
    responses={
        413: {"description": "over MAX_AUDIENCE_ROWS rows or MAX_AUDIENCE_BYTES bytes"},
        415: {"description": "not a UTF-8 CSV file (binary, a workbook, UTF-16, ...)"},
        422: {"description": "empty, no phone column, a line too long, an unclosed quote"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "name": {"type": "string"},
                            "phone_column": {"type": "string"},
                        },
                    }
                },
            },
        }
    },
)
async def upload_audience(
    request: Request,
    resources: ResourcesDep,
    principal: Operator,
    transactions: TransactionsDep,
    name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    phone_column: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> AudienceStarted:
    """Upload a customer list: a header row with a phone column (or the one `phone_column`
    names) and any other columns as variables. UTF-8 with or without BOM; commas, Excel's
    semicolons (and its `sep=;` line) or tabs; quoted fields. Answers 202 once the file is
    stored; the import task normalizes and deduplicates it, and the audience becomes `ready`."""
    settings = resources.settings
    upload = csv_upload(request)
    business_id = principal.business_id
    intake: CsvIntake | None = None
    audience_id = 0

    def new_intake() -> CsvIntake:
        return CsvIntake(
            chunk_rows=settings.audience_import_page_size,
            max_rows=settings.max_audience_rows,
            max_bytes=settings.max_audience_bytes,
            phone_column=phone_column or upload.fields.get("phone_column") or None,
        )

    async def store_upload(conn: AsyncConnection, task: LongRunningTask) -> int:
        nonlocal intake, audience_id
        chunks = upload.chunks()
        early: list[Chunk] = []
        intake = None
        # Read until the header is known (the audience row needs its columns), then COPY.
        async for data in chunks:
            intake = intake or new_intake()
            early += intake.feed(data)
            if intake.header is not None:
                break
        intake = intake or new_intake()
        closed = intake.header is None
        if closed:
            early += intake.close()  # refuses: no header at all
        assert intake.header is not None
        audience_id = await audience_repo.create(
            conn,
            business_id=business_id,
            name=_name(name or upload.fields.get("name"), upload.filename),
            filename=upload.filename[:255] if upload.filename else None,
            header=intake.header,
            chunk_rows=settings.audience_import_page_size,
        )
        async with audience_repo.chunk_writer(conn, audience_id) as writer:
            await writer.write(early)
            async for data in chunks:
                await writer.write(intake.feed(data))
            if not closed:
                await writer.write(intake.close())
        await task_repo.set_total(conn, task.id, intake.rows)
        await audience_repo.uploaded(
            conn,
            audience_id,
            row_count=intake.rows,
            byte_count=intake.bytes_received,
            task_id=task.id,
        )
        return audience_id

    def summary(task: LongRunningTask, audience_id: int) -> str:
        # Shown in the Temporal UI: ids and counts only, never numbers or names.
        rows = intake.rows if intake is not None else 0
        return f"audience #{audience_id} of business {business_id}: {rows:,} rows to import"

    # Not one request transaction: `start_task` stores the upload with the task in its own
    # transaction and commits before the import's workflow starts.
    # Before reading a byte: Temporal away is a 503 now, not after a 40 MB upload.
    client = await resources.temporal_client()
    try:
        task, audience_id = await start_task(
            resources.engine,
            client,
            NewTask(business_id=business_id, task_type=TaskType.audience_import, total_items=0),
            task_queue=settings.temporal_task_queue,
            summary=summary,
            create_domain_rows=store_upload,
        )
    except CsvRefused as exc:
        raise AppError(exc.reason, status_code=exc.status) from exc
    except TaskNotStarted:
        if audience_id:  # stored, but no import will run: keep nothing
            async with transactions.write() as conn:
                await audience_repo.delete_audience(conn, audience_id)
        raise
    async with transactions.read() as conn:
        audience = await audience_repo.get(conn, audience_id, business_id)
        fresh = await task_repo.get_task(conn, task.id)
    assert audience is not None
    assert fresh is not None
    return AudienceStarted(audience=AudienceOut.of(audience, fresh), task=TaskOut.of(fresh))


def _name(given: str | None, filename: str | None) -> str:
    if given and given.strip():
        return given.strip()[:200]
    if filename:
        stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
        stem = stem[: -len(".csv")] if stem.lower().endswith(".csv") else stem
        if stem.strip():
            return stem.strip()[:200]
    return f"Audience of {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"


@router.get("", response_model=AudiencePage)
async def list_audiences(
    principal: Viewer,
    conn: ReadConn,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AudiencePage:
    """The business's audiences, newest first."""
    before_id = cursor_int(decode_cursor(cursor)) if cursor is not None else None
    rows = await audience_repo.list_for_business(
        conn, principal.business_id, before_id=before_id, limit=limit + 1
    )
    items = [await _with_progress(conn, r) for r in rows[:limit]]
    next_cursor = encode_cursor(str(rows[limit - 1].id)) if len(rows) > limit else None
    return AudiencePage(items=items, next_cursor=next_cursor)


@router.get("/{audience_id}", response_model=AudienceOut)
async def get_audience(audience_id: int, principal: Viewer, conn: ReadConn) -> AudienceOut:
    return await _with_progress(conn, await load_audience(conn, audience_id, principal.business_id))


@router.get(
    "/{audience_id}/errors",
    response_model=AudienceErrorPage,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}},
)
async def list_errors(
    audience_id: int,
    principal: Viewer,
    # Until the response's last byte: the CSV form streams its pages after the response
    # started, all in one snapshot (the JSON form holds it only a little longer).
    conn: ExportConn,
    reason: RowIssue | None = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    format: Literal["json", "csv"] = "json",
) -> AudienceErrorPage | StreamingResponse:
    """The rows left out of the audience, in file order, each with its line and reason
    (`format=csv`: all of them as a CSV file, with the row's columns to fix and upload again)."""
    audience = await load_audience(conn, audience_id, principal.business_id)
    if format == "csv":
        return _errors_csv(conn, audience, reason)
    after = cursor_int(decode_cursor(cursor)) if cursor is not None else None
    rows = await audience_repo.list_errors(
        conn, audience.id, after_line=after, limit=limit + 1, reason=reason
    )
    variables = audience.variables
    next_cursor = encode_cursor(str(rows[limit - 1].line)) if len(rows) > limit else None
    return AudienceErrorPage(
        items=[_error_out(r, variables) for r in rows[:limit]], next_cursor=next_cursor
    )


def _errors_csv(
    conn: AsyncConnection, audience: Audience, reason: RowIssue | None
) -> StreamingResponse:
    variables = audience.variables
    phone_name = audience.columns[audience.phone_column]

    async def rows() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["line", "reason", "detail", "duplicate_of", phone_name, *variables])
        after: int | None = None
        while True:
            page = await audience_repo.list_errors(
                conn, audience.id, after_line=after, limit=2000, reason=reason
            )
            for e in page:
                writer.writerow(
                    [
                        e.line,
                        e.reason,
                        csv_safe(e.detail),
                        e.duplicate_of or "",
                        csv_safe(e.phone),
                        *(csv_safe(v) for v in e.vars),
                    ]
                )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(page) < 2000:
                return
            after = page[-1].line

    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="audience-{audience.id}-errors.csv"'
        },
    )


def csv_safe(value: str) -> str:
    # Spreadsheet formula injection: a cell starting with = + - @ is shown, not evaluated
    # (+972... stays a number).
    if value[:1] in ("=", "+", "-", "@") and not value[1:2].isdigit():
        return "'" + value
    return value


@router.delete("/{audience_id}", status_code=204, response_class=Response)
async def delete_audience(audience_id: int, principal: Admin, conn: WriteConn) -> Response:
    """Removes the audience, its members and its errors. 409 while it imports (cancel its
    task first) or while a broadcast is sending to it; finished broadcasts keep their ledgers."""
    audience = await load_audience(conn, audience_id, principal.business_id)
    if audience.status == audience_repo.IMPORTING:
        raise Conflict(
            f"audience {audience_id} is still importing; cancel its import first"
            f" (POST /api/long_tasks/{audience.task_id}/cancel)"
        )
    await audience_repo.lock(conn, audience_id)
    sending = await audience_repo.running_broadcasts(conn, audience_id)
    if sending:
        raise Conflict(
            f"broadcast {sending[0]} is sending to audience {audience_id}; cancel it or"
            " wait for it to finish"
        )
    await audience_repo.delete_audience(conn, audience_id)
    return Response(status_code=204)
