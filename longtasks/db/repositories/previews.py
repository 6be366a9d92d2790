"""What a broadcast will do, for the admin asked to approve it: who it reaches, who it leaves
out and why, how long it takes at the sender's pace, and whether WhatsApp's daily tier has room.

Read at the moment it is asked for (suppressions, the tier's usage and the pace change while a
task waits for approval), from the rows intake wrote.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_COUNTS = text("""
    SELECT b.id, b.recipient_count, b.duplicates_dropped,
           count(*) FILTER (WHERE r.invalid_reason IS NOT NULL) AS invalid,
           biz.whatsapp_messages_per_s, biz.whatsapp_daily_limit, biz.whatsapp_phone_number_id
    FROM broadcasts b
    JOIN businesses biz ON biz.id = b.business_id
    LEFT JOIN broadcast_recipients r ON r.broadcast_id = b.id
    WHERE b.task_id = :task
    GROUP BY b.id, biz.id
""")

_SUPPRESSED = text("""
    SELECT count(*) FROM broadcasts AS b
    JOIN broadcast_recipients AS r ON r.broadcast_id = b.id AND r.invalid_reason IS NULL
    JOIN wa_suppressions AS s ON s.business_id = b.business_id AND s.phone = r.phone
    WHERE b.task_id = :task AND (s.expires_at IS NULL OR s.expires_at > now())
""")

_TIER_USED = text("""
    SELECT count(*) FROM sender_contacts
    WHERE sender_id = :sender AND last_sent_at > now() - interval '24 hours'
""")


@dataclass(frozen=True)
class BroadcastPreview:
    broadcast_id: int
    # What the caller sent, and what intake made of it.
    submitted: int
    duplicates_removed: int
    invalid: int
    # Valid numbers after normalization (E.164), duplicates removed.
    recipients: int
    # Of those, on the business's suppression list (opted out) right now: not messaged.
    suppressed: int
    to_send: int
    messages_per_s: float | None
    # At the sender's pace; None when the sender is unpaced.
    estimated_duration_s: int | None
    tier_limit: int | None
    tier_used_24h: int
    # Unique recipients the tier still allows in the rolling 24 hours (None: unlimited).
    tier_headroom: int | None

    @property
    def exceeds_tier(self) -> bool:
        return self.tier_headroom is not None and self.to_send > self.tier_headroom


async def broadcast_preview(
    conn: AsyncConnection, task_id: int, *, default_messages_per_s: float
) -> BroadcastPreview | None:
    row = (await conn.execute(_COUNTS, {"task": task_id})).first()
    if row is None:
        return None
    total, duplicates, invalid = int(row.recipient_count), int(row.duplicates_dropped), row.invalid
    recipients = total - int(invalid)
    # On the business's suppression list now (opted out, or held after WhatsApp's 131049).
    suppressed = int((await conn.execute(_SUPPRESSED, {"task": task_id})).scalar_one())
    to_send = recipients - suppressed
    pace = row.whatsapp_messages_per_s
    if pace is None:
        pace = default_messages_per_s or None
    tier_used = 0
    if row.whatsapp_daily_limit is not None and row.whatsapp_phone_number_id:
        sender = row.whatsapp_phone_number_id
        tier_used = int((await conn.execute(_TIER_USED, {"sender": sender})).scalar_one())
    limit = row.whatsapp_daily_limit
    return BroadcastPreview(
        broadcast_id=int(row.id),
        submitted=total + duplicates,
        duplicates_removed=duplicates,
        invalid=int(invalid),
        recipients=recipients,
        suppressed=suppressed,
        to_send=to_send,
        messages_per_s=pace,
        estimated_duration_s=math.ceil(to_send / pace) if pace else None,
        tier_limit=limit,
        tier_used_24h=tier_used,
        tier_headroom=max(limit - tier_used, 0) if limit is not None else None,
    )
