"""The business's daily send cap, held across all its tasks and every worker.

A page reserves the sends it is about to make in the business's row for the current UTC day
before making them, as `pacing` reserves send slots: one statement under the row's lock, so
two tasks' pages never spend the same budget, and the count never passes the cap. Sends
reserved and not made (a page stopped by a pause or a cancel) are given back. A worker that
dies between reserving and giving back leaves the cap a little stricter that day, never looser.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_TODAY = "(now() AT TIME ZONE 'UTC')::date"

_ENSURE = text(f"""
    INSERT INTO business_send_days (business_id, day, reserved)
    VALUES (:business, {_TODAY}, 0)
    ON CONFLICT (business_id, day) DO NOTHING
""")  # noqa: S608 - a fixed expression, every value is a bound parameter

# The row's lock serializes every page of every task of the business for this moment.
_LOCK = text(f"""
    SELECT day, reserved,
           EXTRACT(EPOCH FROM (day + 1)::timestamp AT TIME ZONE 'UTC')::float8 AS next_day
    FROM business_send_days
    WHERE business_id = :business AND day = {_TODAY}
    FOR UPDATE
""")  # noqa: S608

_TAKE = text("""
    UPDATE business_send_days SET reserved = reserved + :n
    WHERE business_id = :business AND day = :day
""")

_REFUND = text("""
    UPDATE business_send_days SET reserved = GREATEST(reserved - :n, 0)
    WHERE business_id = :business AND day = :day
""")

_USED = text(f"""
    SELECT coalesce(sum(reserved), 0) FROM business_send_days
    WHERE business_id = :business AND day = {_TODAY}
""")  # noqa: S608


@dataclass(frozen=True)
class CapGrant:
    granted: int
    day: dt.date
    # Epoch seconds of the next UTC midnight, when a new day's budget starts.
    next_day_epoch: float


async def reserve(conn: AsyncConnection, business_id: int, want: int, cap: int) -> CapGrant:
    """Reserve up to `want` sends of today's `cap`; commit before sending."""
    await conn.execute(_ENSURE, {"business": business_id})
    row = (await conn.execute(_LOCK, {"business": business_id})).one()
    granted = max(min(want, cap - int(row.reserved)), 0)
    if granted:
        await conn.execute(_TAKE, {"business": business_id, "day": row.day, "n": granted})
    return CapGrant(granted=granted, day=row.day, next_day_epoch=float(row.next_day))


async def refund(conn: AsyncConnection, business_id: int, day: dt.date, unsent: int) -> None:
    if unsent > 0:
        await conn.execute(_REFUND, {"business": business_id, "day": day, "n": unsent})


async def used_today(conn: AsyncConnection, business_id: int) -> int:
    return int((await conn.execute(_USED, {"business": business_id})).scalar_one())
