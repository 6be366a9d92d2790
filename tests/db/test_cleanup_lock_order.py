"""The daily cleanup and a late status for the same broadcast: one waits, none deadlocks.

Statuses keep coming after a broadcast ends; their ingest locks the items, then the task row.
The cleanup function (`longtasks_cleanup_terminal`) took its batch's task rows first and their
items through the cascade, the opposite order (fixed by migration 0016). This test holds item
"b" the way the ingest does, lets the cleanup start and wait, then applies a status for "b" in
the same transaction: the moment the ingest reaches for the task row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from longtasks.db.repositories import deliveries, ledger, ops
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.ledger import Outcome
from longtasks.domain import Delivery, ItemStatus, TaskStatus
from tests.db.lock_order import (
    claimed_broadcast,
    hold_item,
    start_until_it_waits,
    status,
    task_and_items_left,
)

# Older than any other test's tasks: this cleanup takes this test's task only.
ENDED_DAYS_AGO = 4000


async def test_the_cleanup_waits_for_a_late_status_instead_of_deadlocking(
    engine: AsyncEngine, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    task_id, sender = await claimed_broadcast(engine, business_id, "ab", numbers_from=590_000)
    async with engine.begin() as conn:
        await ledger.settle(
            conn,
            task_id,
            [Outcome(k, ItemStatus.succeeded, provider_ref=f"wamid.{k}") for k in "ab"],
        )
        await task_repo.finish(conn, task_id, TaskStatus.completed)
        await conn.execute(
            text(
                "UPDATE long_running_tasks SET created_at = now() - make_interval(days => :d),"
                " completed_at = now() - make_interval(days => :d) WHERE id = :t"
            ),
            {"t": task_id, "d": ENDED_DAYS_AGO},
        )

    async with engine.connect() as ingest, engine.connect() as cleanup:
        await hold_item(ingest, task_id, "b")

        async def clean_and_commit() -> int:
            cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=ENDED_DAYS_AGO - 1)
            deleted = await ops.delete_terminal_before(cleanup, cutoff, 100)
            await cleanup.commit()
            return deleted

        cleaning = await start_until_it_waits(engine, cleanup, clean_and_commit, "the cleanup")
        # The ingest now reaches for the task row: it must get it (a cleanup holding it while
        # waiting for item "b" is the deadlock: Postgres would abort one of the two here).
        applied = await deliveries.apply_statuses(
            ingest, [status(task_id, sender, "b", Delivery.read)]
        )
        assert (applied.matched, applied.tasks) == (1, 1)
        await ingest.commit()
        assert await asyncio.wait_for(cleaning, timeout=20) == 1

    assert await task_and_items_left(engine, task_id) == (0, 0)
