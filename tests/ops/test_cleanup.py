"""The daily cleanup: only terminal tasks older than the retention go, with their ledgers."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import text

from longtasks.contracts.ops import CleanupInput, CleanupOutcome
from longtasks.db.repositories import tasks as task_repo
from longtasks.domain import TaskStatus
from tests.conftest import Stack, create_broadcast_task, israeli_numbers


async def _task(stack: Stack, business_id: int, *, status: TaskStatus | None) -> int:
    task_id = await create_broadcast_task(stack.engine, business_id, israeli_numbers(2))
    async with stack.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO task_items (business_id, task_id, item_key, seq, status)"
                " VALUES (:b, :t, 'a', 1, 'succeeded'), (:b, :t, 'b', 2, 'failed')"
            ),
            {"b": business_id, "t": task_id},
        )
        if status is not None:
            await task_repo.finish(conn, task_id, status)
    return task_id


async def _backdate(stack: Stack, task_id: int, *, created_days: int, completed_days: int) -> None:
    async with stack.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE long_running_tasks SET"
                " created_at = now() - make_interval(days => :c),"
                " completed_at = CASE WHEN completed_at IS NULL THEN NULL"
                "   ELSE now() - make_interval(days => :d) END"
                " WHERE id = :t"
            ),
            {"t": task_id, "c": created_days, "d": completed_days},
        )


async def _exists(stack: Stack, task_id: int) -> bool:
    async with stack.engine.connect() as conn:
        row = await conn.execute(
            text("SELECT 1 FROM long_running_tasks WHERE id = :t"), {"t": task_id}
        )
        return row.first() is not None


async def test_cleanup_deletes_only_old_terminal_tasks_with_their_ledgers(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    old_done = [
        await _task(stack, business_id, status=s)
        for s in (TaskStatus.completed, TaskStatus.cancelled, TaskStatus.failed)
    ]
    for task_id in old_done:
        await _backdate(stack, task_id, created_days=45, completed_days=40)
    old_running = await _task(stack, business_id, status=None)
    await _backdate(stack, old_running, created_days=45, completed_days=0)
    finished_lately = await _task(stack, business_id, status=TaskStatus.completed)
    await _backdate(stack, finished_lately, created_days=45, completed_days=2)
    recent = await _task(stack, business_id, status=TaskStatus.completed)

    outcome = await stack.client.execute_workflow(
        "cleanup",
        CleanupInput(retention_days=30, batch_size=2),
        id=f"cleanup-test-{uuid.uuid4().hex[:8]}",
        task_queue=stack.task_queue,
        result_type=CleanupOutcome,
    )

    assert outcome.deleted >= 3
    assert outcome.batches >= 2  # batch_size 2: more than one batch
    for task_id in old_done:
        assert not await _exists(stack, task_id)
    for task_id in (old_running, finished_lately, recent):
        assert await _exists(stack, task_id)
    async with stack.engine.connect() as conn:
        items = await conn.execute(
            text("SELECT count(*) FROM task_items WHERE task_id = ANY(:ids)"), {"ids": old_done}
        )
        assert items.scalar_one() == 0
        # The broadcasts stay (domain rows); their task link is cleared (ON DELETE SET NULL).
        orphans = await conn.execute(
            text("SELECT count(*) FROM broadcasts WHERE business_id = :b AND task_id IS NULL"),
            {"b": business_id},
        )
        assert orphans.scalar_one() == 3
        # Their recipient lists go, like the ledgers: the bytes a recipient costs are reclaimed.
        kept = await conn.execute(
            text(
                "SELECT b.task_id IS NULL, count(r.id) FROM broadcasts AS b"
                " LEFT JOIN broadcast_recipients AS r ON r.broadcast_id = b.id"
                " WHERE b.business_id = :b GROUP BY 1 ORDER BY 1"
            ),
            {"b": business_id},
        )
        assert [tuple(r) for r in kept] == [(False, 6), (True, 0)]


async def test_cleanup_with_nothing_to_do(stack: Stack) -> None:
    outcome = await stack.client.execute_workflow(
        "cleanup",
        CleanupInput(retention_days=3650, batch_size=1000),
        id=f"cleanup-test-{uuid.uuid4().hex[:8]}",
        task_queue=stack.task_queue,
        result_type=CleanupOutcome,
    )
    assert (outcome.deleted, outcome.batches) == (0, 1)


async def test_cleanup_forgets_statuses_of_unknown_messages_after_the_retention(
    stack: Stack,
) -> None:
    tag = uuid.uuid4().hex[:8]
    async with stack.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO wa_status_inbox (wamid, status, phone_number_id, occurred_at,"
                " received_at) VALUES (:old, 'read', 'pn', now(), now() - interval '8 days'),"
                " (:new, 'read', 'pn', now(), now())"
            ),
            {"old": f"wamid.old.{tag}", "new": f"wamid.new.{tag}"},
        )
    await stack.client.execute_workflow(
        "cleanup",
        CleanupInput(retention_days=3650, batch_size=1000),
        id=f"cleanup-test-{uuid.uuid4().hex[:8]}",
        task_queue=stack.task_queue,
        result_type=CleanupOutcome,
    )
    async with stack.engine.connect() as conn:
        kept = await conn.execute(
            text("SELECT wamid FROM wa_status_inbox WHERE wamid LIKE :p"), {"p": f"%.{tag}"}
        )
        assert [r[0] for r in kept] == [f"wamid.new.{tag}"]
