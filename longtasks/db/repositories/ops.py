"""Operations over many tasks: the cleanup's batched delete and bulk cancel's selection."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.db.models import LongRunningTask
from longtasks.db.rows import mapped_all
from longtasks.domain import TERMINAL_STATUSES

tasks = cast(Table, LongRunningTask.__table__)
_TERMINAL = [s.value for s in TERMINAL_STATUSES]


async def delete_terminal_before(conn: AsyncConnection, cutoff: dt.datetime, limit: int) -> int:
    """Delete up to `limit` terminal tasks that ended before `cutoff`, oldest first, of every
    business: a named cross-business path, the function `longtasks_cleanup_terminal` (0013),
    which states the terminal statuses itself (a caller cannot widen it to running tasks).

    Their ledger rows go with them (`task_items` cascades), and so do their broadcasts' own
    recipient lists: per recipient, those two are what a broadcast costs the database. The
    broadcast rows stay (name, message, counts; `task_id` set NULL), and so do audiences,
    which their businesses keep and delete themselves.
    It locks its broadcasts' items before their task rows, in the status ingest's order (0016),
    so a late status for one of them waits or is waited for. SKIP LOCKED on the task rows: one
    some request holds right now is left for the next run.
    """
    result = await conn.execute(
        text("SELECT longtasks_cleanup_terminal(:cutoff, :limit)"),
        {"cutoff": cutoff, "limit": limit},
    )
    return int(result.scalar_one())


def _filter(
    business_id: int, task_type: str | None, created_before: dt.datetime | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [tasks.c.business_id == business_id]
    if task_type is not None:
        conditions.append(tasks.c.task_type == task_type)
    if created_before is not None:
        conditions.append(tasks.c.created_at < created_before)
    return conditions


async def list_unfinished(
    conn: AsyncConnection,
    business_id: int,
    *,
    task_type: str | None,
    created_before: dt.datetime | None,
    limit: int,
) -> Sequence[LongRunningTask]:
    return await mapped_all(
        conn,
        select(LongRunningTask)
        .where(
            and_(*_filter(business_id, task_type, created_before)),
            tasks.c.status.not_in(_TERMINAL),
        )
        .order_by(tasks.c.id)
        .limit(limit),
    )


async def count_terminal(
    conn: AsyncConnection,
    business_id: int,
    *,
    task_type: str | None,
    created_before: dt.datetime | None,
) -> int:
    result = await conn.execute(
        select(func.count()).where(
            and_(*_filter(business_id, task_type, created_before)),
            tasks.c.status.in_(_TERMINAL),
        )
    )
    return int(result.scalar_one())
