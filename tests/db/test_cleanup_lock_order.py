"""The daily cleanup and a late status for the same broadcast: one waits, none deadlocks.

Statuses keep coming after a broadcast ends; their ingest locks the items, then the task row.
The cleanup function (`longtasks_cleanup_terminal`) took its batch's task rows first and their
items through the cascade, the opposite order. This test holds item "b" the way the ingest does
(FOR UPDATE, in its own transaction), lets the cleanup start and wait, then applies a real
status for "b" in the same transaction: the moment the ingest reaches for the task row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from longtasks.contracts.messages import callback_data_for
from longtasks.db.repositories import deliveries, ledger, ops
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.ledger import ClaimRequest, Outcome
from longtasks.domain import Delivery, ItemStatus, TaskStatus
from longtasks.providers.whatsapp_webhooks import StatusUpdate
from tests.conftest import create_broadcast_task, israeli_numbers, wait_until

# Older than any other test's tasks: this cleanup takes this test's task only.
ENDED_DAYS_AGO = 4000


async def test_the_cleanup_waits_for_a_late_status_instead_of_deadlocking(
    engine: AsyncEngine, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    task_id = await create_broadcast_task(engine, business_id, israeli_numbers(2, start=590_000))
    sender = f"pn-{business_id}"
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE broadcasts SET sender_id = :s WHERE task_id = :t"),
            {"s": sender, "t": task_id},
        )
        await ledger.claim(conn, task_id, [ClaimRequest(k, i, None) for i, k in enumerate("ab")])
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
        await ingest.execute(text("SET LOCAL lock_timeout = '20s'"))
        # The ingest holds item "b" (as its statement does before it locks the task row).
        await ingest.execute(
            text("SELECT 1 FROM task_items WHERE task_id = :t AND item_key = 'b' FOR UPDATE"),
            {"t": task_id},
        )
        cleanup_pid = (await cleanup.execute(text("SELECT pg_backend_pid()"))).scalar_one()

        async def clean_and_commit() -> int:
            cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=ENDED_DAYS_AGO - 1)
            deleted = await ops.delete_terminal_before(cleanup, cutoff, 100)
            await cleanup.commit()
            return deleted

        cleaning = asyncio.create_task(clean_and_commit())

        async def cleanup_is_waiting_for_a_lock() -> bool:
            async with engine.connect() as probe:
                wait = await probe.execute(
                    text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p"),
                    {"p": cleanup_pid},
                )
                return wait.scalar() == "Lock"

        await wait_until(cleanup_is_waiting_for_a_lock, timeout_s=10, what="the cleanup to wait")
        # The ingest now reaches for the task row: it must get it (a cleanup holding it while
        # waiting for item "b" is the deadlock: Postgres would abort one of the two here).
        applied = await deliveries.apply_statuses(
            ingest,
            [
                StatusUpdate(
                    wamid="wamid.b",
                    delivery=Delivery.read,
                    status="read",
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
        assert await asyncio.wait_for(cleaning, timeout=20) == 1

    async with engine.connect() as conn:
        left = await conn.execute(
            text(
                "SELECT (SELECT count(*) FROM long_running_tasks WHERE id = :t),"
                " (SELECT count(*) FROM task_items WHERE task_id = :t)"
            ),
            {"t": task_id},
        )
        assert tuple(left.one()) == (0, 0)
