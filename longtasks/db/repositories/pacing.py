"""Send slots per sender, shared by every worker: the generic cell rate algorithm in one row.

`next_slot_at` is the earliest time the sender's next send may go out. A worker reserves `n`
slots by moving it forward n intervals (from now, if it lies in the past) and gets back when its
first slot starts; the row lock serializes workers, so together they never exceed the rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.db.repositories.ledger import commit_without_waiting_for_disk

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
    # Slots are pacing, not records: a reservation lost with a crashed Postgres costs at most
    # one block sent early, so this commit need not wait for the disk.
    await commit_without_waiting_for_disk(conn)
    result = await conn.execute(_RESERVE, {"sender": sender_id, "span": span})
    return max(float(result.scalar_one()), 0.0)


@dataclass(frozen=True)
class DailyBudget:
    allowed: frozenset[str]
    # Epoch seconds when the oldest contact in the window leaves it (when left out any).
    retry_at: float | None


_LOCK_SENDER = text("SELECT pg_advisory_xact_lock(hashtext(:sender))")
_WINDOW = text("""
    SELECT phone FROM sender_contacts
    WHERE sender_id = :sender AND last_sent_at > now() - interval '24 hours'
      AND phone = ANY(CAST(:phones AS text[]))
""")
_USED = text("""
    SELECT count(*), EXTRACT(EPOCH FROM min(last_sent_at) + interval '24 hours')::float8
    FROM sender_contacts WHERE sender_id = :sender AND last_sent_at > now() - interval '24 hours'
""")
_RECORD = text("""
    INSERT INTO sender_contacts (sender_id, phone, last_sent_at)
    SELECT :sender, p, now() FROM unnest(CAST(:phones AS text[])) AS t(p)
    ON CONFLICT (sender_id, phone) DO UPDATE SET last_sent_at = now()
""")


async def reserve_daily_budget(
    conn: AsyncConnection, sender_id: str, phones: Sequence[str], daily_limit: int
) -> DailyBudget:
    """Admit the phones this sender may message now under its tier's unique-recipient limit.

    Recipients already messaged within 24 hours cost nothing more; new ones are admitted in
    order while budget lasts and recorded at once (before the send, so two workers never
    spend the same budget). The caller's transaction holds a per-sender advisory lock.
    """
    await conn.execute(_LOCK_SENDER, {"sender": sender_id})
    known = {
        r[0] for r in await conn.execute(_WINDOW, {"sender": sender_id, "phones": list(phones)})
    }
    used_row = (await conn.execute(_USED, {"sender": sender_id})).one()
    budget = max(daily_limit - int(used_row[0]), 0)
    admitted: list[str] = []
    left_out = False
    for phone in phones:
        if phone in known:
            admitted.append(phone)
        elif budget > 0:
            admitted.append(phone)
            known.add(phone)
            budget -= 1
        else:
            left_out = True
    if admitted:
        await conn.execute(_RECORD, {"sender": sender_id, "phones": admitted})
    retry_at = None
    if left_out:
        # Budget frees when the oldest contact in the window (recorded just now at the
        # latest) leaves it.
        oldest_expiry = (await conn.execute(_USED, {"sender": sender_id})).one()[1]
        retry_at = float(oldest_expiry)
    return DailyBudget(allowed=frozenset(admitted), retry_at=retry_at)
