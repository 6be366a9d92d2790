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
import datetime as dt
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from longtasks.contracts.messages import callback_data_for
from longtasks.db.repositories import deliveries, ledger
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.ledger import ClaimRequest
from longtasks.domain import Delivery
from longtasks.providers.whatsapp_webhooks import StatusUpdate
from tests.conftest import create_broadcast_task, israeli_numbers, wait_until


async def test_a_delete_waits_for_a_status_being_applied_instead_of_deadlocking(
    engine: AsyncEngine, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    task_id = await create_broadcast_task(engine, business_id, israeli_numbers(3, start=560_000))
    sender = f"pn-{business_id}"
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE broadcasts SET sender_id = :s WHERE task_id = :t"),
            {"s": sender, "t": task_id},
        )
        await ledger.claim(conn, task_id, [ClaimRequest(k, i, None) for i, k in enumerate("abc")])

    async with engine.connect() as ingest, engine.connect() as deleting:
        await ingest.execute(text("SET LOCAL lock_timeout = '20s'"))
        # The ingest holds item "b" (as its statement does before it locks the task row).
        await ingest.execute(
            text("SELECT 1 FROM task_items WHERE task_id = :t AND item_key = 'b' FOR UPDATE"),
            {"t": task_id},
        )
        delete_pid = (await deleting.execute(text("SELECT pg_backend_pid()"))).scalar_one()

        async def delete_and_commit() -> None:
            await task_repo.delete_task(deleting, task_id)
            await deleting.commit()

        delete = asyncio.create_task(delete_and_commit())

        async def delete_is_waiting_for_a_lock() -> bool:
            async with engine.connect() as probe:
                wait = await probe.execute(
                    text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p"),
                    {"p": delete_pid},
                )
                return wait.scalar() == "Lock"

        await wait_until(delete_is_waiting_for_a_lock, timeout_s=10, what="the DELETE to wait")
        # The ingest now reaches for the task row: it must get it (a DELETE holding it while
        # waiting for item "b" is the deadlock: Postgres would abort one of the two here).
        applied = await deliveries.apply_statuses(
            ingest,
            [
                StatusUpdate(
                    wamid="wamid.delete-race",
                    delivery=Delivery.delivered,
                    status="delivered",
                    occurred_at=dt.datetime.now(dt.UTC),
                    phone_number_id=sender,
                    callback=callback_data_for(task_id, "b"),
                    task_id=task_id,
                    item_key="b",
                )
            ],
        )
        assert (applied.matched, applied.tasks) == (1, 1)
        await ingest.commit()
        await asyncio.wait_for(delete, timeout=20)

    async with engine.connect() as conn:
        left = await conn.execute(
            text(
                "SELECT (SELECT count(*) FROM long_running_tasks WHERE id = :t),"
                " (SELECT count(*) FROM task_items WHERE task_id = :t)"
            ),
            {"t": task_id},
        )
        assert tuple(left.one()) == (0, 0)
