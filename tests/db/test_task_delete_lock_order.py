"""Deleting a task while its WhatsApp statuses are being applied: one waits, none deadlocks.

The status ingest (one statement) locks the items it updates, then the task row for its
delivery counters. A DELETE of the task used to lock the task row first and its items through
the cascade, and the two deadlocked: CI saw `DELETE /api/long_tasks/{id}` answer 503 while a
finished broadcast's late statuses came in. The ingest's statement cannot be paused between
its two locks, so this test holds an item the way it does (FOR UPDATE, in its own
transaction), lets the DELETE start and block, then applies a real status for that item in
the same transaction: that is the moment the ingest reaches for the task row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from longtasks.db.repositories import deliveries
from longtasks.db.repositories import tasks as task_repo
from tests.db.lock_order import (
    claimed_broadcast,
    hold_item,
    start_until_it_waits,
    status,
    task_and_items_left,
)


async def test_a_delete_waits_for_a_status_being_applied_instead_of_deadlocking(
    engine: AsyncEngine, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    task_id, sender = await claimed_broadcast(engine, business_id, "abc", numbers_from=560_000)

    async with engine.connect() as ingest, engine.connect() as deleting:
        await hold_item(ingest, task_id, "b")

        async def delete_and_commit() -> None:
            await task_repo.delete_task(deleting, task_id)
            await deleting.commit()

        delete = await start_until_it_waits(engine, deleting, delete_and_commit, "the DELETE")
        # The ingest now reaches for the task row: it must get it (a DELETE holding it while
        # waiting for item "b" is the deadlock: Postgres would abort one of the two here).
        applied = await deliveries.apply_statuses(ingest, [status(task_id, sender, "b")])
        assert (applied.matched, applied.tasks) == (1, 1)
        await ingest.commit()
        await asyncio.wait_for(delete, timeout=20)

    assert await task_and_items_left(engine, task_id) == (0, 0)
