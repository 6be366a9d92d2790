"""What the lock-order tests share: a broadcast whose items the status ingest reaches, an item
held the way the ingest holds it (FOR UPDATE, before its statement reaches for the task row),
and the wait until the transaction under test blocks on it.

Each test then applies a real status in the holding transaction: the moment the ingest locks
the task row. A transaction that took the task row (or another of the batch's items) before
waiting is the deadlock, and Postgres aborts one of the two there.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from longtasks.contracts.messages import callback_data_for
from longtasks.db.repositories import ledger
from longtasks.db.repositories.ledger import ClaimRequest
from longtasks.domain import Delivery
from longtasks.providers.whatsapp_webhooks import StatusUpdate
from tests.conftest import create_broadcast_task, israeli_numbers, wait_until

T = TypeVar("T")


async def claimed_broadcast(
    engine: AsyncEngine, business_id: int, keys: Sequence[str], *, numbers_from: int
) -> tuple[int, str]:
    """A broadcast task sent from the business's number, its items `keys` claimed; returns
    (task id, sender number)."""
    task_id = await create_broadcast_task(
        engine, business_id, israeli_numbers(len(keys), start=numbers_from)
    )
    sender = f"pn-{business_id}"
    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE broadcasts SET sender_id = :s WHERE task_id = :t"),
            {"s": sender, "t": task_id},
        )
        await ledger.claim(conn, task_id, [ClaimRequest(k, i, None) for i, k in enumerate(keys)])
    return task_id, sender


async def hold_item(ingest: AsyncConnection, task_id: int, key: str) -> None:
    await ingest.execute(text("SET LOCAL lock_timeout = '20s'"))
    await ingest.execute(
        text("SELECT 1 FROM task_items WHERE task_id = :t AND item_key = :k FOR UPDATE"),
        {"t": task_id, "k": key},
    )


async def start_until_it_waits(
    engine: AsyncEngine, conn: AsyncConnection, work: Callable[[], Awaitable[T]], what: str
) -> asyncio.Task[T]:
    """Start `work` (on `conn`) and return once its backend waits for a lock."""
    pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    started = asyncio.ensure_future(work())

    async def waiting_for_a_lock() -> bool:
        if started.done():
            started.result()  # it failed (or never had to wait): say so now
            return True
        async with engine.connect() as probe:
            wait = await probe.execute(
                text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p"), {"p": pid}
            )
            return wait.scalar() == "Lock"

    await wait_until(waiting_for_a_lock, timeout_s=10, what=f"{what} to wait for a lock")
    return started


async def task_and_items_left(engine: AsyncEngine, task_id: int) -> tuple[int, int]:
    """(task rows, item rows) of the task still in the database."""
    async with engine.connect() as conn:
        left = await conn.execute(
            text(
                "SELECT (SELECT count(*) FROM long_running_tasks WHERE id = :t),"
                " (SELECT count(*) FROM task_items WHERE task_id = :t)"
            ),
            {"t": task_id},
        )
        count_tasks, count_items = left.one()
        return int(count_tasks), int(count_items)


def status(
    task_id: int, sender: str, key: str, delivery: Delivery = Delivery.delivered
) -> StatusUpdate:
    """Meta's status of the item's message, as the webhook parses it."""
    return StatusUpdate(
        wamid=f"wamid.lock-order.{task_id}.{key}",
        delivery=delivery,
        status="sent" if delivery is Delivery.accepted else delivery.name,
        occurred_at=dt.datetime.now(dt.UTC),
        phone_number_id=sender,
        callback=callback_data_for(task_id, key),
        task_id=task_id,
        item_key=key,
    )
