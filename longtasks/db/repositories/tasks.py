"""The `long_running_tasks` table: creation, progress counters, cancel flag, terminal states.

Every change bumps `version` and sends `NOTIFY longtasks_task` in the same transaction, so the
SSE readers learn of a change exactly when it commits.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Select, Table, and_, delete, func, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.contracts.tasks import WORKFLOW_ID_PREFIX, new_workflow_id_suffix
from longtasks.db.models import LongRunningTask
from longtasks.domain import TERMINAL_STATUSES, TaskStatus

TASK_CHANNEL = "longtasks_task"

tasks = cast(Table, LongRunningTask.__table__)
_TERMINAL = [s.value for s in TERMINAL_STATUSES]


@dataclass(frozen=True)
class TaskRow:
    id: int
    business_id: int
    task_type: str
    status: str
    total_items: int
    processed_items: int
    success_count: int
    failed_count: int
    skipped_count: int
    cancelled_count: int
    cancel_requested: bool
    cancel_reason: str | None
    error_message: str | None
    status_reason: str | None
    workflow_id: str | None
    priority: str
    start_at: dt.datetime | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None

    @property
    def is_terminal(self) -> bool:
        return self.status in _TERMINAL

    @property
    def progress_pct(self) -> float:
        if self.total_items <= 0:
            return 100.0 if self.is_terminal else 0.0
        # Items cancelled unprocessed are not progress: a task cancelled at 30% stays at 30%.
        return round(min(100.0, 100.0 * self.processed_items / self.total_items), 1)

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any] | RowMapping) -> TaskRow:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


_COLUMNS = [tasks.c[name] for name in TaskRow.__dataclass_fields__]


async def _notify(conn: AsyncConnection, row: TaskRow) -> None:
    payload = json.dumps(
        {"task_id": row.id, "business_id": row.business_id, "version": row.version}
    )
    await conn.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {
            "channel": TASK_CHANNEL,
            "payload": payload,
        },
    )


async def _changed(conn: AsyncConnection, stmt: Any) -> TaskRow | None:
    """Run an UPDATE ... RETURNING on one task, notify listeners when a row changed."""
    result = (await conn.execute(stmt.returning(*_COLUMNS))).mappings().first()
    if result is None:
        return None
    row = TaskRow.from_mapping(result)
    await _notify(conn, row)
    return row


def _bump() -> dict[str, Any]:
    return {"version": tasks.c.version + 1, "updated_at": func.now()}


# RETURNING names TaskRow's own fields (never input): one round trip gives the whole row.
_CREATE = text(
    "WITH new AS (SELECT nextval(pg_get_serial_sequence('long_running_tasks', 'id')) AS id)"  # noqa: S608
    " INSERT INTO long_running_tasks"
    " (id, business_id, task_type, status, total_items, priority, start_at, workflow_id)"
    " SELECT new.id, :business_id, :task_type, :status, :total_items, :priority, :start_at,"
    " :workflow_prefix || new.id || :workflow_suffix FROM new"
    " RETURNING " + ", ".join(TaskRow.__dataclass_fields__)
)


async def create_task(
    conn: AsyncConnection,
    *,
    business_id: int,
    task_type: str,
    total_items: int,
    priority: str = "normal",
    start_at: dt.datetime | None = None,
) -> TaskRow:
    """One statement: the workflow id derives from the task id, known inside the INSERT, and a
    part unique to this task (`new_workflow_id_suffix`)."""
    status = TaskStatus.scheduled if start_at is not None else TaskStatus.running
    result = (
        (
            await conn.execute(
                _CREATE,
                {
                    "business_id": business_id,
                    "task_type": task_type,
                    "status": status.value,
                    "total_items": total_items,
                    "priority": priority,
                    "start_at": start_at,
                    "workflow_prefix": WORKFLOW_ID_PREFIX,
                    "workflow_suffix": new_workflow_id_suffix(),
                },
            )
        )
        .mappings()
        .one()
    )
    row = TaskRow.from_mapping(result)
    await _notify(conn, row)
    return row


async def get_task(
    conn: AsyncConnection, task_id: int, *, business_id: int | None = None
) -> TaskRow | None:
    stmt = select(*_COLUMNS).where(tasks.c.id == task_id)
    if business_id is not None:
        stmt = stmt.where(tasks.c.business_id == business_id)
    result = (await conn.execute(stmt)).mappings().first()
    return TaskRow.from_mapping(result) if result is not None else None


def _list_query(
    business_id: int,
    *,
    task_type: str | None,
    status: str | None,
    before_id: int | None,
    created_before: dt.datetime | None = None,
) -> Select[Any]:
    conditions = [tasks.c.business_id == business_id]
    if task_type is not None:
        conditions.append(tasks.c.task_type == task_type)
    if status is not None:
        conditions.append(tasks.c.status == status)
    if before_id is not None:
        conditions.append(tasks.c.id < before_id)
    if created_before is not None:
        conditions.append(tasks.c.created_at < created_before)
    return select(*_COLUMNS).where(and_(*conditions)).order_by(tasks.c.id.desc())


async def list_tasks(
    conn: AsyncConnection,
    business_id: int,
    *,
    limit: int,
    task_type: str | None = None,
    status: str | None = None,
    before_id: int | None = None,
) -> list[TaskRow]:
    stmt = _list_query(business_id, task_type=task_type, status=status, before_id=before_id)
    result = await conn.execute(stmt.limit(limit))
    return [TaskRow.from_mapping(r) for r in result.mappings()]


async def request_cancel(conn: AsyncConnection, task_id: int, reason: str) -> TaskRow | None:
    """Raise the cancel flag of a non-terminal task (first reason wins). None if terminal."""
    return await _changed(
        conn,
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.not_in(_TERMINAL))
        .values(
            cancel_requested=True,
            cancel_reason=func.coalesce(tasks.c.cancel_reason, reason),
            **_bump(),
        ),
    )


async def is_cancel_requested(conn: AsyncConnection, task_id: int) -> bool:
    result = await conn.execute(select(tasks.c.cancel_requested).where(tasks.c.id == task_id))
    return bool(result.scalar())


async def mark_running(conn: AsyncConnection, task_id: int) -> TaskRow | None:
    return await _changed(
        conn,
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.not_in(_TERMINAL))
        .values(
            status=TaskStatus.running.value,
            started_at=func.coalesce(tasks.c.started_at, func.now()),
            **_bump(),
        ),
    )


async def set_total(conn: AsyncConnection, task_id: int, total_items: int) -> TaskRow | None:
    return await _changed(
        conn,
        update(tasks).where(tasks.c.id == task_id).values(total_items=total_items, **_bump()),
    )


async def raise_counts(
    conn: AsyncConnection, task_id: int, *, total: int, succeeded: int, skipped: int
) -> TaskRow | None:
    """Counters recomputed from a task's own settled records (never from a delta): each only
    ever rises, so an older recompute that commits after a newer one changes nothing, and a
    retried recompute counts nothing twice. For tasks without failed items."""
    new_values = {
        "total_items": func.greatest(tasks.c.total_items, total),
        "success_count": func.greatest(tasks.c.success_count, succeeded),
        "skipped_count": func.greatest(tasks.c.skipped_count, skipped),
        "processed_items": func.greatest(tasks.c.processed_items, succeeded),
    }
    return await _changed(
        conn,
        update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.failed_count == 0,
            (tasks.c.total_items < total)
            | (tasks.c.success_count < succeeded)
            | (tasks.c.skipped_count < skipped),
        )
        .values(**new_values, **_bump()),
    )


async def set_status_reason(
    conn: AsyncConnection, task_id: int, reason: str | None
) -> TaskRow | None:
    return await _changed(
        conn,
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status_reason.is_distinct_from(reason))
        .values(status_reason=reason, **_bump()),
    )


async def add_counts(
    conn: AsyncConnection, task_id: int, *, succeeded: int, failed: int, skipped: int = 0
) -> TaskRow | None:
    """Add settled items to the counters. Callers pass only items that just moved to settled."""
    if succeeded == 0 and failed == 0:
        return None
    return await _changed(
        conn,
        update(tasks)
        .where(tasks.c.id == task_id)
        .values(
            success_count=tasks.c.success_count + succeeded,
            failed_count=tasks.c.failed_count + failed,
            skipped_count=tasks.c.skipped_count + skipped,
            processed_items=tasks.c.processed_items + succeeded + failed,
            **_bump(),
        ),
    )


async def finish(
    conn: AsyncConnection, task_id: int, status: TaskStatus, *, error_message: str | None = None
) -> TaskRow | None:
    """Move a task to a terminal status once; whatever was not processed counts as cancelled."""
    assert status.is_terminal
    return await _changed(
        conn,
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.not_in(_TERMINAL))
        .values(
            status=status.value,
            error_message=func.coalesce(error_message, tasks.c.error_message),
            cancelled_count=func.greatest(tasks.c.total_items - tasks.c.processed_items, 0),
            status_reason=None,
            completed_at=func.now(),
            **_bump(),
        ),
    )


async def delete_task(conn: AsyncConnection, task_id: int) -> None:
    await conn.execute(delete(tasks).where(tasks.c.id == task_id))


async def count_by_status(conn: AsyncConnection) -> Sequence[tuple[str, str, int]]:
    result = await conn.execute(
        select(tasks.c.task_type, tasks.c.status, func.count()).group_by(
            tasks.c.task_type, tasks.c.status
        )
    )
    return [(r[0], r[1], int(r[2])) for r in result]
