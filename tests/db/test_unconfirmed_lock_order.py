"""A look at unconfirmed sends and a status batch for the same items: one waits, none deadlocks.

The look (`resolve_unconfirmed`) settles items a status has spoken for and applies the policy
to items whose wait is over. It did that in two statements: the first locked the items with a
status, the second those without. A status batch (one statement) locks its items in key
order; one holding an item of the second kind and reaching for one the look's first statement
had locked deadlocked with it, and Postgres aborted one of the two. This test holds item "a"
(no status yet) the way the ingest does (FOR UPDATE, in its own transaction), lets the look
start and wait, then applies a real status for "a" and "b" (which has a status already) in the
same transaction: the ingest reaching for "b" is the moment a look holding "b" deadlocks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from longtasks.contracts.messages import callback_data_for
from longtasks.db.repositories import deliveries, ledger, unconfirmed
from longtasks.db.repositories.ledger import ClaimRequest, Outcome
from longtasks.domain import Delivery, ItemStatus, UnconfirmedPolicy
from longtasks.providers.whatsapp_webhooks import StatusUpdate
from tests.conftest import create_broadcast_task, israeli_numbers, wait_until


def _delivered(task_id: int, sender: str, key: str) -> StatusUpdate:
    return StatusUpdate(
        wamid=f"wamid.look-race.{task_id}.{key}",
        delivery=Delivery.delivered,
        status="delivered",
        occurred_at=dt.datetime.now(dt.UTC),
        phone_number_id=sender,
        callback=callback_data_for(task_id, key),
        task_id=task_id,
        item_key=key,
    )


async def test_a_look_waits_for_a_status_batch_instead_of_deadlocking(
    engine: AsyncEngine, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    task_id = await create_broadcast_task(engine, business_id, israeli_numbers(2, start=580_000))
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
            [Outcome(k, ItemStatus.unconfirmed, "no_answer", "no answer") for k in "ab"],
        )
        # "b" has a status already: the look settles it. "a" has none: its wait is over.
        await deliveries.apply_statuses(conn, [_delivered(task_id, sender, "b")])

    async with engine.connect() as ingest, engine.connect() as look:
        await ingest.execute(text("SET LOCAL lock_timeout = '20s'"))
        await ingest.execute(
            text("SELECT 1 FROM task_items WHERE task_id = :t AND item_key = 'a' FOR UPDATE"),
            {"t": task_id},
        )
        look_pid = (await look.execute(text("SELECT pg_backend_pid()"))).scalar_one()

        async def look_and_commit() -> tuple[unconfirmed.Known, unconfirmed.Settled]:
            seen = await unconfirmed.settle_and_decide(
                look,
                task_id,
                sender_id=sender,
                policy=UnconfirmedPolicy.at_most_once,
                grace_s=0,
                max_wait_s=0,
            )
            await look.commit()
            return seen

        looking = asyncio.create_task(look_and_commit())

        async def look_is_waiting_for_a_lock() -> bool:
            async with engine.connect() as probe:
                wait = await probe.execute(
                    text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :p"),
                    {"p": look_pid},
                )
                return wait.scalar() == "Lock"

        await wait_until(look_is_waiting_for_a_lock, timeout_s=10, what="the look to wait")
        # The ingest's batch names "a" and "b": it must get "b" (a look holding it while
        # waiting for "a" is the deadlock: Postgres would abort one of the two here).
        applied = await deliveries.apply_statuses(
            ingest, [_delivered(task_id, sender, k) for k in "ab"]
        )
        assert applied.matched == 2
        await ingest.commit()
        known, decided = await asyncio.wait_for(looking, timeout=20)

    # The look saw "a" as the ingest left it: a status came, so the send succeeded; nothing
    # was left for the policy to count failed.
    assert (known, decided) == (unconfirmed.Known(from_unconfirmed=2), unconfirmed.Settled())
    assert await _statuses(engine, task_id) == {"a": "succeeded", "b": "succeeded"}


async def _statuses(engine: AsyncEngine, task_id: int) -> dict[str, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT item_key, status FROM task_items WHERE task_id = :t"), {"t": task_id}
        )
        return {r[0]: r[1] for r in rows}
