"""Two attempts marking one item in the same batch: exactly one of them may send it.

CI saw a recipient of an `at_most_once` broadcast get its message twice while Postgres
restarted: the page's heartbeats stopped (its settles failed), Temporal gave up on the attempt
and started another, and once the database was back both the old attempt (retrying its mark)
and the new one (marking for the first time) asked the worker's one dispatch writer for the
same item. The writer puts every mark waiting into one UPDATE; joined to both requests, the
row takes one token, but the answer named only (task, item), so both attempts were told to
send. The answer now names the token the row holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from activities.dispatch import DispatchLog
from longtasks.db.repositories import ledger
from longtasks.db.repositories.ledger import ClaimRequest
from longtasks.db.tenancy import acting_for
from tests.conftest import create_broadcast_task, israeli_numbers


async def _claimed_items(
    engine: AsyncEngine, new_business: Callable[[], Awaitable[int]], start: int, count: int
) -> tuple[int, int, list[str]]:
    business_id = await new_business()
    task_id = await create_broadcast_task(engine, business_id, israeli_numbers(count, start=start))
    keys = [f"item-{n}" for n in range(count)]
    async with engine.begin() as conn:
        await ledger.claim(conn, task_id, [ClaimRequest(k, n, None) for n, k in enumerate(keys)])
    return business_id, task_id, keys


async def _holders(engine: AsyncEngine, task_id: int) -> dict[str, str | None]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT item_key, dispatched_by FROM task_items WHERE task_id = :t"),
            {"t": task_id},
        )
        return {r[0]: r[1] for r in rows}


async def test_one_statement_grants_an_item_to_the_one_token_it_holds(
    engine: AsyncEngine, new_business: Callable[[], Awaitable[int]]
) -> None:
    _, task_id, keys = await _claimed_items(engine, new_business, 570_000, 20)
    asked = [(task_id, k, token) for k in keys for token in ("old-attempt", "new-attempt")]
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        granted = await ledger.mark_dispatched(conn, asked)
        # The same attempts asking again (their first answer lost): the same grants.
        again = await ledger.mark_dispatched(conn, asked)
    holders = await _holders(engine, task_id)
    assert granted == again == {(task_id, k, holders[k]) for k in keys}
    assert all(holders[k] in ("old-attempt", "new-attempt") for k in keys)


async def test_the_dispatch_writer_tells_one_of_two_racing_attempts_to_send(
    app_engine: AsyncEngine, engine: AsyncEngine, new_business: Callable[[], Awaitable[int]]
) -> None:
    """Through the worker's writer, on the application's role (row-level security on): both
    attempts' marks are queued before it writes, so they meet in one statement."""
    business_id, task_id, keys = await _claimed_items(engine, new_business, 571_000, 50)
    dispatch = DispatchLog(app_engine)
    with acting_for(business_id):
        answers = await asyncio.gather(
            *(dispatch.mark(task_id, k, token) for k in keys for token in ("old", "new"))
        )
    holders = await _holders(engine, task_id)
    for n, key in enumerate(keys):
        old, new = answers[2 * n], answers[2 * n + 1]
        assert (old, new) == (holders[key] == "old", holders[key] == "new"), key
