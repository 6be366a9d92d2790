"""Send slots per sender, shared by every worker: the generic cell rate algorithm in one row.

`next_slot_at` is the earliest time the sender's next send may go out. A worker reserves `n`
slots by moving it forward n intervals (from now, if it lies in the past) and gets back when its
first slot starts; the row lock serializes workers, so together they never exceed the rate.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_RESERVE = text("""
    INSERT INTO sender_pacing (sender_id, next_slot_at)
    VALUES (:sender, clock_timestamp() + make_interval(secs => :span))
    ON CONFLICT (sender_id) DO UPDATE
        SET next_slot_at = GREATEST(sender_pacing.next_slot_at, clock_timestamp())
                           + make_interval(secs => :span)
    RETURNING EXTRACT(EPOCH FROM (next_slot_at - clock_timestamp()))::float8 - :span
""")


async def reserve_slots(
    conn: AsyncConnection, sender_id: str, count: int, interval_s: float
) -> float:
    """Reserve `count` slots `interval_s` apart; returns seconds from now to the first one."""
    span = count * interval_s
    result = await conn.execute(_RESERVE, {"sender": sender_id, "span": span})
    return max(float(result.scalar_one()), 0.0)
