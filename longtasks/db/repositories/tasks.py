"""The `long_running_tasks` table: creation, progress counters, cancel flag, terminal states.

Every change bumps `version` and sends `NOTIFY longtasks_task` in the same transaction, so the
SSE readers learn of a change exactly when it commits.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Select, Table, Update, and_, case, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.contracts.tasks import PAUSED_BY_SYSTEM, WORKFLOW_ID_PREFIX, new_workflow_id_suffix
from longtasks.db.models import LongRunningTask
from longtasks.db.repositories.ledger import DeliveryCounts
from longtasks.db.rows import mapped_all, mapped_first, returned_first
from longtasks.domain import TERMINAL_STATUSES, TaskStatus

TASK_CHANNEL = "longtasks_task"
SYSTEM = PAUSED_BY_SYSTEM

tasks = cast(Table, LongRunningTask.__table__)
_TERMINAL = [s.value for s in TERMINAL_STATUSES]


async def _notify(conn: AsyncConnection, task_id: int, business_id: int, version: int) -> None:
    payload = json.dumps({"task_id": task_id, "business_id": business_id, "version": version})
    await conn.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {
            "channel": TASK_CHANNEL,
            "payload": payload,
        },
    )


async def _changed(conn: AsyncConnection, stmt: Update) -> LongRunningTask | None:
    """Run an UPDATE on one task that returns it as it is now; notify listeners when a row
    changed."""
    task = await returned_first(conn, LongRunningTask, stmt.returning(*tasks.c))
    if task is not None:
        await _notify(conn, task.id, task.business_id, task.version)
    return task


async def _touched(conn: AsyncConnection, stmt: Update) -> bool:
    """Run an UPDATE on one task whose caller needs no row back (the page activities' counter
    updates: every flush); notify listeners when a row changed."""
    row = (
        await conn.execute(stmt.returning(tasks.c.id, tasks.c.business_id, tasks.c.version))
    ).first()
    if row is None:
        return False
    await _notify(conn, row[0], row[1], row[2])
    return True


def _bump() -> dict[str, Any]:
    return {"version": tasks.c.version + 1, "updated_at": func.now()}


# The ETA's rate is measured between two marks (time, processed items). A counter update moves
# them forward once the newer mark is half a window old, so the older one is always between
# half a window and a window (plus the time since the last update) in the past: the rate of
# the last ~RATE_WINDOW_S seconds, kept in the row the update writes anyway.
RATE_WINDOW_S = 30.0


def _rate_marks() -> dict[str, Any]:
    """Values for an UPDATE that changes `processed_items` (SET sees the old row's values)."""
    shift = or_(
        tasks.c.rate_mark_at.is_(None),
        tasks.c.rate_mark_at
        <= func.now() - func.make_interval(0, 0, 0, 0, 0, 0, RATE_WINDOW_S / 2),
    )
    return {
        "rate_prev_at": case((shift, tasks.c.rate_mark_at), else_=tasks.c.rate_prev_at),
        "rate_prev_items": case((shift, tasks.c.rate_mark_items), else_=tasks.c.rate_prev_items),
        "rate_mark_at": case((shift, func.now()), else_=tasks.c.rate_mark_at),
        "rate_mark_items": case((shift, tasks.c.processed_items), else_=tasks.c.rate_mark_items),
    }


# After a wait (a pause, a quota), the rate measured before it says nothing about the rate after.
_RATE_RESET = {
    "rate_prev_at": None,
    "rate_prev_items": None,
    "rate_mark_at": None,
    "rate_mark_items": None,
}


# RETURNING names the table's own columns (never input): one round trip gives the whole row.
_CREATE = text(
    "WITH new AS (SELECT nextval(pg_get_serial_sequence('long_running_tasks', 'id')) AS id)"  # noqa: S608
    " INSERT INTO long_running_tasks"
    " (id, business_id, task_type, status, total_items, priority, start_at, workflow_id,"
    " created_by, parent_task_id, approval_expires_at)"
    " SELECT new.id, :business_id, :task_type, :status, :total_items, :priority, :start_at,"
    " :workflow_prefix || new.id || :workflow_suffix, :created_by, :parent_task_id,"
    " now() + make_interval(secs => CAST(:approval_ttl_s AS float8)) FROM new"
    " RETURNING " + ", ".join(tasks.c.keys())
)


async def create_task(
    conn: AsyncConnection,
    *,
    business_id: int,
    task_type: str,
    total_items: int,
    priority: str = "normal",
    start_at: dt.datetime | None = None,
    created_by: str | None = None,
    parent_task_id: int | None = None,
    approval_ttl_s: float | None = None,
) -> LongRunningTask:
    """One statement: the workflow id derives from the task id, known inside the INSERT, and a
    part unique to this task (`new_workflow_id_suffix`).

    With `approval_ttl_s` the task waits for an admin's approval until that long from now."""
    if approval_ttl_s is not None:
        status = TaskStatus.awaiting_approval
    elif start_at is not None:
        status = TaskStatus.scheduled
    else:
        status = TaskStatus.running
    values = {
        "business_id": business_id,
        "task_type": task_type,
        "status": status.value,
        "total_items": total_items,
        "priority": priority,
        "start_at": start_at,
        "workflow_prefix": WORKFLOW_ID_PREFIX,
        "workflow_suffix": new_workflow_id_suffix(),
        "created_by": created_by,
        "parent_task_id": parent_task_id,
        "approval_ttl_s": approval_ttl_s,
    }
    task = await returned_first(conn, LongRunningTask, _CREATE.bindparams(**values))
    assert task is not None  # an INSERT ... SELECT of one row
    await _notify(conn, task.id, task.business_id, task.version)
    return task


async def get_task(
    conn: AsyncConnection, task_id: int, *, business_id: int | None = None
) -> LongRunningTask | None:
    stmt = select(LongRunningTask).where(LongRunningTask.id == task_id)
    if business_id is not None:
        stmt = stmt.where(LongRunningTask.business_id == business_id)
    return await mapped_first(conn, stmt)


def _list_query(
    business_id: int,
    *,
    task_type: str | None,
    status: str | None,
    before_id: int | None,
    created_before: dt.datetime | None = None,
    parent_task_id: int | None = None,
) -> Select[LongRunningTask]:
    conditions = [tasks.c.business_id == business_id]
    if parent_task_id is not None:
        conditions.append(tasks.c.parent_task_id == parent_task_id)
    if task_type is not None:
        conditions.append(tasks.c.task_type == task_type)
    if status is not None:
        conditions.append(tasks.c.status == status)
    if before_id is not None:
        conditions.append(tasks.c.id < before_id)
    if created_before is not None:
        conditions.append(tasks.c.created_at < created_before)
    return select(LongRunningTask).where(and_(*conditions)).order_by(tasks.c.id.desc())


async def list_tasks(
    conn: AsyncConnection,
    business_id: int,
    *,
    limit: int,
    task_type: str | None = None,
    status: str | None = None,
    before_id: int | None = None,
    parent_task_id: int | None = None,
) -> Sequence[LongRunningTask]:
    stmt = _list_query(
        business_id,
        task_type=task_type,
        status=status,
        before_id=before_id,
        parent_task_id=parent_task_id,
    )
    return await mapped_all(conn, stmt.limit(limit))


async def children_of(conn: AsyncConnection, task_ids: Sequence[int]) -> dict[int, list[int]]:
    """The tasks that retry each given task's failures (its children), oldest first."""
    if not task_ids:
        return {}
    result = await conn.execute(
        select(tasks.c.parent_task_id, tasks.c.id)
        .where(tasks.c.parent_task_id.in_(list(task_ids)))
        .order_by(tasks.c.id)
    )
    children: dict[int, list[int]] = {}
    for parent, child in result:
        children.setdefault(int(parent), []).append(int(child))
    return children


async def request_cancel(
    conn: AsyncConnection, task_id: int, reason: str
) -> LongRunningTask | None:
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


async def control_flags(conn: AsyncConnection, task_id: int) -> tuple[bool, bool]:
    """(cancel requested, pause requested): what a page in flight obeys."""
    row = (
        await conn.execute(
            select(tasks.c.cancel_requested, tasks.c.pause_requested).where(tasks.c.id == task_id)
        )
    ).first()
    return (bool(row[0]), bool(row[1])) if row is not None else (False, False)


async def is_cancel_requested(conn: AsyncConnection, task_id: int) -> bool:
    result = await conn.execute(select(tasks.c.cancel_requested).where(tasks.c.id == task_id))
    return bool(result.scalar())


async def mark_running(conn: AsyncConnection, task_id: int) -> bool:
    """Running from now on; False when the task already ended."""
    return await _touched(
        conn,
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.not_in(_TERMINAL))
        .values(
            status=TaskStatus.running.value,
            started_at=func.coalesce(tasks.c.started_at, func.now()),
            **_bump(),
        ),
    )


# -- pause and resume -----------------------------------------------------------------------
# The API (or the circuit breaker) raises `pause_requested`; pages start no new item while it
# is set. The workflow marks the task `paused` once its pages have settled what was in flight,
# and `running` again after a resume cleared the flag: it alone moves the status.

PAUSABLE = [TaskStatus.scheduled.value, TaskStatus.running.value, TaskStatus.paused.value]


async def request_pause(
    conn: AsyncConnection, task_id: int, *, by: str, reason: str | None = None
) -> LongRunningTask | None:
    """Raise the pause flag of a task that can pause; None when it cannot or already is."""
    return await _changed(conn, _pause(task_id, by=by, reason=reason))


async def auto_pause(conn: AsyncConnection, task_id: int, reason: str) -> LongRunningTask | None:
    """The task pauses itself (the provider said stop, too many failures); counts the pause."""
    return await _changed(
        conn,
        _pause(task_id, by=SYSTEM, reason=reason).values(auto_pauses=tasks.c.auto_pauses + 1),
    )


def _pause(task_id: int, *, by: str, reason: str | None) -> Update:
    """The one pause statement: a person's and the task's own differ only in who and a count."""
    return (
        update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.status.in_(PAUSABLE),
            tasks.c.pause_requested.is_(False),
            tasks.c.cancel_requested.is_(False),
        )
        .values(
            pause_requested=True,
            paused_by=by,
            paused_at=func.now(),
            status_reason=reason,
            **_bump(),
        )
    )


# Appends under the row lock the counter update of the same transaction already holds, so
# every page of every worker writes one window in settle order.
_RECORD_OUTCOMES = text("""
    UPDATE long_running_tasks
    SET recent_outcomes = right(coalesce(recent_outcomes, '') || :bits, :window)
    WHERE id = :task
    RETURNING length(recent_outcomes),
              length(recent_outcomes) - length(replace(recent_outcomes, '1', ''))
""")


async def record_outcomes(
    conn: AsyncConnection, task_id: int, failures: Sequence[bool], window: int
) -> tuple[int, int]:
    """Add provider answers to the task's sliding window; (answers in it, failures in it)."""
    bits = "".join("1" if failed else "0" for failed in failures)
    row = (
        await conn.execute(_RECORD_OUTCOMES, {"task": task_id, "bits": bits, "window": window})
    ).one()
    return int(row[0]), int(row[1])


async def request_resume(conn: AsyncConnection, task_id: int) -> LongRunningTask | None:
    """Lower the pause flag; None when it was not raised (or the task ended)."""
    return await _changed(
        conn,
        update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.pause_requested.is_(True),
            tasks.c.status.not_in(_TERMINAL),
        )
        .values(pause_requested=False, **_bump()),
    )


async def drop_pause_with_nothing_left(conn: AsyncConnection, task_id: int) -> bool:
    """Lower the flag of a task that paused itself when every item has been processed since
    (the sends in flight when the breaker tripped were its last): nothing is left to hold back,
    and `paused` at 100% would only wait for a person to resume it into finishing. The run
    then goes on as after a resume and finishes. A person's pause is never dropped."""
    result = await conn.execute(
        update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.pause_requested.is_(True),
            tasks.c.paused_by == SYSTEM,
            tasks.c.processed_items >= tasks.c.total_items,
            tasks.c.status.not_in(_TERMINAL),
        )
        .values(pause_requested=False, status_reason=None, **_bump())
    )
    return bool(result.rowcount)


async def mark_paused(conn: AsyncConnection, task_id: int) -> LongRunningTask | None:
    """`paused`, if the flag is still up (a resume may have lowered it meanwhile)."""
    return await _changed(
        conn,
        update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.pause_requested.is_(True),
            tasks.c.status.not_in(_TERMINAL),
        )
        .values(status=TaskStatus.paused.value, **_RATE_RESET, **_bump()),
    )


async def mark_resumed(conn: AsyncConnection, task_id: int) -> LongRunningTask | None:
    """Back to `running` after a pause or a wait: the reason and the pauser go, and the rate
    is measured afresh."""
    return await _changed(
        conn,
        update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.status.not_in(_TERMINAL),
            tasks.c.pause_requested.is_(False),
        )
        .values(
            status=TaskStatus.running.value,
            status_reason=None,
            paused_by=None,
            paused_at=None,
            # Failures before a person looked and resumed must not trip the breaker again.
            recent_outcomes=None,
            **_RATE_RESET,
            **_bump(),
        ),
    )


async def mark_waiting(conn: AsyncConnection, task_id: int, reason: str) -> LongRunningTask | None:
    """`paused` with the reason, with no flag to lower: a quota (the business's daily cap)
    resumes it, not a person."""
    return await _changed(
        conn,
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status.not_in(_TERMINAL))
        .values(
            status=TaskStatus.paused.value,
            status_reason=reason,
            paused_by=SYSTEM,
            paused_at=func.now(),
            **_RATE_RESET,
            **_bump(),
        ),
    )


async def waiting_on_quota(conn: AsyncConnection, business_id: int) -> list[str]:
    """The workflow ids of the business's tasks paused by a quota (the daily cap), not by a
    person."""
    result = await conn.execute(
        select(tasks.c.workflow_id).where(
            tasks.c.business_id == business_id,
            tasks.c.status == TaskStatus.paused.value,
            tasks.c.pause_requested.is_(False),
            tasks.c.workflow_id.is_not(None),
        )
    )
    return [str(r[0]) for r in result]


# -- approval --------------------------------------------------------------------------------
# The decision is written here first, guarded by the status, so an approval and the expiry
# (or a rejection) can never both win; the workflow is told after, and reads the row when the
# approval deadline passes in case the signal never came.


async def approve(conn: AsyncConnection, task_id: int, *, by: str) -> LongRunningTask | None:
    return await _changed(
        conn,
        update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.status == TaskStatus.awaiting_approval.value,
            tasks.c.cancel_requested.is_(False),
        )
        .values(
            approved_by=by,
            approved_at=func.now(),
            status=case(
                (tasks.c.start_at > func.now(), TaskStatus.scheduled.value),
                else_=TaskStatus.running.value,
            ),
            **_bump(),
        ),
    )


async def reject(
    conn: AsyncConnection, task_id: int, *, by: str, reason: str
) -> LongRunningTask | None:
    """A rejection is a cancel before anything was sent: the workflow ends the task."""
    return await _changed(
        conn,
        update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.status == TaskStatus.awaiting_approval.value,
            tasks.c.cancel_requested.is_(False),
        )
        .values(
            rejected_by=by,
            cancel_requested=True,
            cancel_reason=reason,
            **_bump(),
        ),
    )


async def expire(conn: AsyncConnection, task_id: int, reason: str) -> LongRunningTask | None:
    """`expired` if still undecided; every item counts as cancelled (none was sent)."""
    return await _changed(
        conn,
        update(tasks)
        .where(
            tasks.c.id == task_id,
            tasks.c.status == TaskStatus.awaiting_approval.value,
            tasks.c.cancel_requested.is_(False),
        )
        .values(
            status=TaskStatus.expired.value,
            status_reason=reason,
            cancelled_count=tasks.c.total_items - tasks.c.processed_items,
            completed_at=func.now(),
            **_bump(),
        ),
    )


async def set_total(conn: AsyncConnection, task_id: int, total_items: int) -> bool:
    return await _touched(
        conn,
        update(tasks).where(tasks.c.id == task_id).values(total_items=total_items, **_bump()),
    )


async def raise_counts(
    conn: AsyncConnection, task_id: int, *, total: int, succeeded: int, skipped: int
) -> bool:
    """Counters recomputed from a task's own settled records (never from a delta): each only
    ever rises, so an older recompute that commits after a newer one changes nothing, and a
    retried recompute counts nothing twice. For tasks without failed items."""
    new_values = {
        "total_items": func.greatest(tasks.c.total_items, total),
        "success_count": func.greatest(tasks.c.success_count, succeeded),
        "skipped_count": func.greatest(tasks.c.skipped_count, skipped),
        "processed_items": func.greatest(tasks.c.processed_items, succeeded),
        **_rate_marks(),
    }
    return await _touched(
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


async def set_status_reason(conn: AsyncConnection, task_id: int, reason: str | None) -> bool:
    return await _touched(
        conn,
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.status_reason.is_distinct_from(reason))
        .values(status_reason=reason, **_bump()),
    )


async def add_counts(
    conn: AsyncConnection,
    task_id: int,
    *,
    succeeded: int,
    failed: int,
    skipped: int = 0,
    unconfirmed: int = 0,
    resent: int = 0,
    delivery: DeliveryCounts | None = None,
) -> bool:
    """Add settled items to the counters. Callers pass only items that just moved to settled
    (and changes of the unconfirmed and delivery numbers those moves made)."""
    delivery = delivery or DeliveryCounts()
    if not (succeeded or failed or skipped or unconfirmed or resent or delivery):
        return False
    return await _touched(
        conn,
        update(tasks)
        .where(tasks.c.id == task_id)
        .values(
            success_count=tasks.c.success_count + succeeded,
            failed_count=tasks.c.failed_count + failed,
            skipped_count=tasks.c.skipped_count + skipped,
            processed_items=tasks.c.processed_items + succeeded + failed,
            **_rate_marks(),
            unconfirmed_count=tasks.c.unconfirmed_count + unconfirmed,
            resent_count=tasks.c.resent_count + resent,
            delivery_accepted=tasks.c.delivery_accepted + delivery.accepted,
            delivery_delivered=tasks.c.delivery_delivered + delivery.delivered,
            delivery_read=tasks.c.delivery_read + delivery.read,
            delivery_failed=tasks.c.delivery_failed + delivery.failed,
            **_bump(),
        ),
    )


async def finish(
    conn: AsyncConnection, task_id: int, status: TaskStatus, *, error_message: str | None = None
) -> LongRunningTask | None:
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
            pause_requested=False,
            completed_at=func.now(),
            **_bump(),
        ),
    )


# Takes the task's ledger rows in the order the WhatsApp status ingest takes them (see
# deliveries._APPLY: items by (task_id, item_key), then the task row for its counters).
_LOCK_ITEMS_IN_INGEST_ORDER = text("""
    SELECT count(*) FROM (
        SELECT 1 FROM task_items WHERE task_id = :task_id ORDER BY item_key FOR UPDATE
    ) AS locked
""")


async def delete_task(conn: AsyncConnection, task_id: int) -> None:
    """Delete a task; its ledger goes with it (`task_items` cascades).

    Statuses keep arriving after a broadcast ends, and their ingest locks the items it
    updates and then the task row. A bare DELETE locks the task row first and its items
    through the cascade: the opposite order, and the two deadlocked (a DELETE answered 503
    while late statuses came in). Locking the items first, in the ingest's order, makes one
    of the two wait for the other instead.
    """
    await conn.execute(_LOCK_ITEMS_IN_INGEST_ORDER, {"task_id": task_id})
    await conn.execute(delete(tasks).where(tasks.c.id == task_id))


async def count_by_status(conn: AsyncConnection) -> Sequence[tuple[str, str, int]]:
    """Tasks by type and status over every business, counts only: a named cross-business path
    (the function `longtasks_task_counts`, 0013), for /metrics."""
    result = await conn.execute(
        text("SELECT task_type, status, tasks FROM longtasks_task_counts()")
    )
    return [(r[0], r[1], int(r[2])) for r in result]
