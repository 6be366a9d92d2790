"""A look at unconfirmed sends and a status batch for the same items: one waits, none deadlocks.

The look (`resolve_unconfirmed`) settles items a status has spoken for and applies the policy
to items whose wait is over. It did that in two statements: the first locked the items with a
status, the second those without. A status batch (one statement) locks its items in key
order; one holding an item of the second kind and reaching for one the look's first statement
had locked deadlocked with it, and Postgres aborted one of the two. This test holds item "a"
(no status yet) the way the ingest does, lets the look start and wait, then applies statuses
for "a" and "b" (which has one already) in the same transaction: the ingest reaching for "b"
is the moment a look holding "b" deadlocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from longtasks.db.repositories import deliveries, ledger, unconfirmed
from longtasks.db.repositories.ledger import Outcome
from longtasks.domain import ItemStatus, UnconfirmedPolicy
from tests.db.lock_order import claimed_broadcast, hold_item, start_until_it_waits, status


async def test_a_look_waits_for_a_status_batch_instead_of_deadlocking(
    engine: AsyncEngine, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    task_id, sender = await claimed_broadcast(engine, business_id, "ab", numbers_from=580_000)
    async with engine.begin() as conn:
        await ledger.settle(
            conn,
            task_id,
            [Outcome(k, ItemStatus.unconfirmed, "no_answer", "no answer") for k in "ab"],
        )
        # "b" has a status already: the look settles it. "a" has none: its wait is over.
        await deliveries.apply_statuses(conn, [status(task_id, sender, "b")])

    async with engine.connect() as ingest, engine.connect() as look:
        await hold_item(ingest, task_id, "a")

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

        looking = await start_until_it_waits(engine, look, look_and_commit, "the look")
        # The ingest's batch names "a" and "b": it must get "b" (a look holding it while
        # waiting for "a" is the deadlock: Postgres would abort one of the two here).
        applied = await deliveries.apply_statuses(
            ingest, [status(task_id, sender, k) for k in "ab"]
        )
        assert applied.matched == 2
        await ingest.commit()
        known, decided = await asyncio.wait_for(looking, timeout=20)

    # The look saw "a" as the ingest left it: a status came, so the send succeeded; nothing
    # was left for the policy to count failed.
    assert (known, decided) == (unconfirmed.Known(from_unconfirmed=2), unconfirmed.Settled())
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT item_key, status FROM task_items WHERE task_id = :t"), {"t": task_id}
        )
        assert {r[0]: r[1] for r in rows} == {"a": "succeeded", "b": "succeeded"}
