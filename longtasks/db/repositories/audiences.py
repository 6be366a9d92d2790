"""Audiences: the uploaded list, its staging chunks, its members and the rows left out.

The path of a list: the API streams the upload into `audience_upload_chunks` with COPY (one row
per chunk of records); each import page normalizes one chunk and writes the result back into
its row, counting the chunk's rows in the same transaction only the first time; the finishing
step turns the chunks into numbered members in one statement (first-seen wins for duplicates,
suppressed numbers left out), records duplicates and suppressed rows as errors, and deletes
the chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.audiences.csv_intake import Chunk, Header
from longtasks.audiences.rows import NormalizedChunk
from longtasks.db.models import (
    Audience,
    AudienceError,
    AudienceMember,
    AudienceUploadChunk,
    Broadcast,
)
from longtasks.db.rows import mapped_all, mapped_first
from longtasks.domain import TERMINAL_STATUSES, AudienceStatus

audiences = cast(Table, Audience.__table__)
members = cast(Table, AudienceMember.__table__)
broadcasts = cast(Table, Broadcast.__table__)

IMPORTING = AudienceStatus.importing.value
READY = AudienceStatus.ready.value
FAILED = AudienceStatus.failed.value


# What a send needs of a member, read on the send path: not the table's row type
# (`AudienceMember`), for the reason `broadcasts.RecipientRow` gives (a page of mapped objects
# costs more on every page of every broadcast to an audience).
@dataclass(frozen=True)
class MemberRow:
    seq: int
    line: int
    phone: str
    vars: list[str]


# -- the upload ---------------------------------------------------------------------------------


async def create(
    conn: AsyncConnection,
    *,
    business_id: int,
    name: str,
    filename: str | None,
    header: Header,
    chunk_rows: int,
) -> int:
    result = await conn.execute(
        insert(audiences)
        .values(
            business_id=business_id,
            name=name,
            filename=filename,
            columns=list(header.columns),
            phone_column=header.phone_index,
            chunk_rows=chunk_rows,
        )
        .returning(audiences.c.id)
    )
    return int(result.scalar_one())


class ChunkWriter:
    """One COPY into the staging table, open while the upload streams in.

    Chunks go to Postgres from a task of its own, through a short queue: the request cuts the
    next chunk while Postgres stores this one, and memory stays at a few chunks.
    """

    QUEUE_CHUNKS = 4

    def __init__(self, copy: psycopg.AsyncCopy, audience_id: int) -> None:
        self._copy = copy
        self._audience_id = audience_id
        self._queue: asyncio.Queue[Chunk | None] = asyncio.Queue(self.QUEUE_CHUNKS)
        self._sender = asyncio.create_task(self._send())
        self.chunks = 0

    async def _send(self) -> None:
        while (chunk := await self._queue.get()) is not None:
            await self._copy.write_row((self._audience_id, chunk.index, chunk.lines, chunk.records))

    async def write(self, chunks: Sequence[Chunk]) -> None:
        for chunk in chunks:
            if self._sender.done():
                await self._sender  # it failed: raise why
            await self._queue.put(chunk)
            self.chunks += 1

    async def close(self) -> None:
        """Wait until every chunk is with Postgres (raises what sending raised)."""
        if not self._sender.done():
            await self._queue.put(None)
        await self._sender

    def abort(self) -> None:
        self._sender.cancel()


# COPY FROM refuses a table under row-level security (Postgres applies no policy to it), so
# the upload is copied into a temporary table of the transaction and moved into the staging
# table by one INSERT, which the policy checks. Temporary: no WAL, gone at commit.
_STAGING = "audience_upload_copy"
_CREATE_STAGING = (
    f"CREATE TEMPORARY TABLE {_STAGING} (audience_id int8, chunk int4, lines int4[], records text)"
    " ON COMMIT DROP"
)
_MOVE_STAGED = (
    "INSERT INTO audience_upload_chunks (audience_id, chunk, lines, records)"  # noqa: S608 - constants
    f" SELECT audience_id, chunk, lines, records FROM {_STAGING}"
)


@asynccontextmanager
async def chunk_writer(conn: AsyncConnection, audience_id: int) -> AsyncIterator[ChunkWriter]:
    """COPY on the connection's own transaction: the chunks commit (or vanish) with the
    audience row. Nothing else may use the connection while the COPY is open."""
    raw = await conn.get_raw_connection()
    driver = cast(psycopg.AsyncConnection[Any], raw.driver_connection)
    async with driver.cursor() as cursor:
        await cursor.execute(_CREATE_STAGING)
        async with cursor.copy(
            f"COPY {_STAGING} (audience_id, chunk, lines, records) FROM STDIN (FORMAT binary)"
        ) as copy:
            # Binary: the records go as they are; text COPY would escape every 200 KB chunk in
            # Python first (measured: twice the time of the whole COPY).
            copy.set_types(["int8", "int4", "int4[]", "text"])
            writer = ChunkWriter(copy, audience_id)
            try:
                yield writer
            except BaseException:
                writer.abort()
                with contextlib.suppress(BaseException):
                    await writer.close()
                raise
            await writer.close()
        await cursor.execute(_MOVE_STAGED)
        await cursor.execute(f"DROP TABLE {_STAGING}")


async def uploaded(
    conn: AsyncConnection, audience_id: int, *, row_count: int, byte_count: int, task_id: int
) -> None:
    await conn.execute(
        update(audiences)
        .where(audiences.c.id == audience_id)
        .values(row_count=row_count, byte_count=byte_count, task_id=task_id)
    )


# -- reading ------------------------------------------------------------------------------------


async def get(conn: AsyncConnection, audience_id: int, business_id: int) -> Audience | None:
    return await mapped_first(
        conn,
        select(Audience).where(Audience.id == audience_id, Audience.business_id == business_id),
    )


async def get_for_task(conn: AsyncConnection, task_id: int) -> Audience | None:
    return await mapped_first(conn, select(Audience).where(Audience.task_id == task_id))


async def list_for_business(
    conn: AsyncConnection, business_id: int, *, before_id: int | None, limit: int
) -> Sequence[Audience]:
    stmt = select(Audience).where(Audience.business_id == business_id)
    if before_id is not None:
        stmt = stmt.where(Audience.id < before_id)
    return await mapped_all(conn, stmt.order_by(Audience.id.desc()).limit(limit))


async def list_errors(
    conn: AsyncConnection,
    audience_id: int,
    *,
    after_line: int | None,
    limit: int,
    reason: str | None = None,
) -> Sequence[AudienceError]:
    # As mapped objects, like every table's reads off the send path: a 2000-row page costs
    # ~22 ms against ~8 ms as plain tuples (measured on the shared dev machine), paid by the
    # CSV export of a list's errors, once per person asking.
    stmt = select(AudienceError).where(AudienceError.audience_id == audience_id)
    if after_line is not None:
        stmt = stmt.where(AudienceError.line > after_line)
    if reason is not None:
        stmt = stmt.where(AudienceError.reason == reason)
    return await mapped_all(conn, stmt.order_by(AudienceError.line).limit(limit))


async def members_page(
    conn: AsyncConnection, audience_id: int, *, after_seq: int, up_to_seq: int
) -> list[MemberRow]:
    """Members with after_seq < seq <= up_to_seq: a keyset range on the primary key."""
    result = await conn.execute(
        select(members.c.seq, members.c.line, members.c.phone, members.c.vars)
        .where(
            members.c.audience_id == audience_id,
            members.c.seq > after_seq,
            members.c.seq <= up_to_seq,
        )
        .order_by(members.c.seq)
    )
    return [MemberRow(*r) for r in result]


async def lock_ready(conn: AsyncConnection, audience_id: int) -> Audience | None:
    """The audience if it is ready, locked against deletion until the transaction ends."""
    return await mapped_first(
        conn,
        select(Audience)
        .where(Audience.id == audience_id, Audience.status == READY)
        .with_for_update(read=True),
    )


async def lock(conn: AsyncConnection, audience_id: int) -> None:
    """Wait for broadcasts being created on the audience (they hold it shared), and keep
    new ones out until the transaction ends."""
    await conn.execute(
        select(audiences.c.id).where(audiences.c.id == audience_id).with_for_update()
    )


async def running_broadcasts(conn: AsyncConnection, audience_id: int) -> list[int]:
    """Broadcasts sending to this audience that have not ended."""
    result = await conn.execute(
        text(
            "SELECT b.id FROM broadcasts AS b JOIN long_running_tasks AS t ON t.id = b.task_id"
            " WHERE b.audience_id = :a AND t.status <> ALL(CAST(:terminal AS text[]))"
            " ORDER BY b.id"
        ),
        {"a": audience_id, "terminal": [s.value for s in TERMINAL_STATUSES]},
    )
    return [int(r[0]) for r in result]


async def delete_audience(conn: AsyncConnection, audience_id: int) -> None:
    """The audience with its members, errors and staging (they cascade); broadcasts that
    sent to it keep their ledgers."""
    await conn.execute(delete(audiences).where(audiences.c.id == audience_id))


# -- the import ---------------------------------------------------------------------------------


async def staged_chunk(
    conn: AsyncConnection, audience_id: int, chunk: int
) -> AudienceUploadChunk | None:
    return await mapped_first(
        conn,
        select(AudienceUploadChunk).where(
            AudienceUploadChunk.audience_id == audience_id, AudienceUploadChunk.chunk == chunk
        ),
    )


_SAVE_NORMALIZED = text("""
    UPDATE audience_upload_chunks
    SET valid_lines = CAST(:lines AS int[]), valid_phones = CAST(:phones AS text[]),
        valid_vars = CAST(:vars AS text[]), invalid_count = :invalid, records = NULL,
        normalized_at = now()
    WHERE audience_id = :a AND chunk = :c AND normalized_at IS NULL
""")

_SAVE_ERRORS = text("""
    INSERT INTO audience_errors (audience_id, line, reason, detail, phone, vars)
    SELECT :a, l, r, d, p, string_to_array(v, E'\\x1f')
    FROM unnest(CAST(:lines AS int[]), CAST(:reasons AS text[]), CAST(:details AS text[]),
                CAST(:phones AS text[]), CAST(:vars AS text[])) AS t(l, r, d, p, v)
    ON CONFLICT (audience_id, line) DO NOTHING
""")


async def save_normalized(
    conn: AsyncConnection, audience_id: int, chunk: int, result: NormalizedChunk
) -> bool:
    """Write a chunk's outcome once; False when an earlier attempt already did (count nothing)."""
    saved = await conn.execute(
        _SAVE_NORMALIZED,
        {
            "a": audience_id,
            "c": chunk,
            "lines": result.valid_lines,
            "phones": result.valid_phones,
            "vars": result.valid_vars,
            "invalid": len(result.errors),
        },
    )
    if not saved.rowcount:
        return False
    if result.errors:
        await conn.execute(
            _SAVE_ERRORS,
            {
                "a": audience_id,
                "lines": [e.line for e in result.errors],
                "reasons": [e.reason for e in result.errors],
                "details": [e.detail for e in result.errors],
                "phones": [e.phone for e in result.errors],
                "vars": [e.vars for e in result.errors],
            },
        )
    return True


# One statement from normalized chunks to members: every valid row once with the first line
# its number appears on; the rest of its appearances become `duplicate` errors; numbers the
# business must not message become `suppressed` errors; the others are numbered 1..N in line
# order. A CTE referenced several times is computed once.
_FINALIZE = text("""
    WITH valid AS (
        SELECT u.line, u.phone, u.vars
        FROM audience_upload_chunks AS c
        CROSS JOIN LATERAL unnest(c.valid_lines, c.valid_phones, c.valid_vars)
            AS u(line, phone, vars)
        WHERE c.audience_id = :a
    ),
    ranked AS (
        SELECT line, phone, vars, min(line) OVER (PARTITION BY phone) AS first_line
        FROM valid
    ),
    firsts AS (
        SELECT r.line, r.phone, r.vars,
               EXISTS (
                   SELECT 1 FROM wa_suppressions AS s
                   JOIN audiences AS a ON a.id = :a AND s.business_id = a.business_id
                   WHERE s.phone = r.phone AND s.reason = 'opted_out'
               ) AS suppressed
        FROM ranked AS r
        WHERE r.line = r.first_line
    ),
    dups AS (
        INSERT INTO audience_errors (audience_id, line, reason, detail, phone, duplicate_of, vars)
        SELECT :a, line, 'duplicate', 'the number is already on line ' || first_line, phone,
               first_line, string_to_array(vars, E'\\x1f')
        FROM ranked WHERE line <> first_line
        ON CONFLICT (audience_id, line) DO NOTHING
        RETURNING 1
    ),
    supp AS (
        INSERT INTO audience_errors (audience_id, line, reason, detail, phone, vars)
        SELECT :a, line, 'suppressed', 'the number opted out of messages from this business',
               phone, string_to_array(vars, E'\\x1f')
        FROM firsts WHERE suppressed
        ON CONFLICT (audience_id, line) DO NOTHING
        RETURNING 1
    ),
    added AS (
        INSERT INTO audience_members (audience_id, seq, line, phone, vars)
        SELECT :a, row_number() OVER (ORDER BY line), line, phone, string_to_array(vars, E'\\x1f')
        FROM firsts WHERE NOT suppressed
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM dups),
           (SELECT count(*) FROM supp),
           (SELECT coalesce(sum(invalid_count), 0) FROM audience_upload_chunks
            WHERE audience_id = :a)
""")


@dataclass(frozen=True)
class ImportCounts:
    valid: int
    duplicates: int
    suppressed: int
    invalid: int


async def finalize(conn: AsyncConnection, audience: Audience) -> ImportCounts | None:
    """Members out of the normalized chunks, then the chunks deleted; None when an earlier
    attempt already finished (the audience is no longer importing)."""
    locked = await conn.execute(
        select(audiences.c.status).where(audiences.c.id == audience.id).with_for_update()
    )
    if locked.scalar() != IMPORTING:
        return None
    row = (await conn.execute(_FINALIZE, {"a": audience.id, "b": audience.business_id})).one()
    counts = ImportCounts(
        valid=int(row[0]), duplicates=int(row[1]), suppressed=int(row[2]), invalid=int(row[3])
    )
    await conn.execute(
        text("DELETE FROM audience_upload_chunks WHERE audience_id = :a"), {"a": audience.id}
    )
    ready = counts.valid > 0
    await conn.execute(
        update(audiences)
        .where(audiences.c.id == audience.id)
        .values(
            status=READY if ready else FAILED,
            failure_reason=None
            if ready
            else f"none of the {audience.row_count:,} rows has a phone number that can be messaged",
            valid_count=counts.valid,
            invalid_count=counts.invalid,
            duplicate_count=counts.duplicates,
            suppressed_count=counts.suppressed,
            ready_at=func.now() if ready else None,
            updated_at=func.now(),
        )
    )
    return counts


async def mark_failed(conn: AsyncConnection, audience_id: int, reason: str) -> None:
    """An import that cannot finish: say why, and drop its staging."""
    await conn.execute(
        update(audiences)
        .where(audiences.c.id == audience_id, audiences.c.status == IMPORTING)
        .values(status=FAILED, failure_reason=reason, updated_at=func.now())
    )
    await conn.execute(
        text("DELETE FROM audience_upload_chunks WHERE audience_id = :a"), {"a": audience_id}
    )
