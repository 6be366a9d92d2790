"""What bounds a business's sends right now, for the ETA: its sender's pace, WhatsApp's daily
tier and how much of it the last 24 hours used, and the business's daily send cap."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.eta import SendLimits

_LIMITS = text("""
    SELECT b.whatsapp_messages_per_s, b.whatsapp_daily_limit, b.whatsapp_phone_number_id,
           p.daily_send_cap,
           (SELECT reserved FROM business_send_days d
            WHERE d.business_id = b.id AND d.day = (now() AT TIME ZONE 'UTC')::date) AS cap_used
    FROM businesses b LEFT JOIN business_policies p ON p.business_id = b.id
    WHERE b.id = :business
""")

_TIER = text("""
    SELECT count(*), min(last_sent_at) + interval '24 hours'
    FROM sender_contacts WHERE sender_id = :sender AND last_sent_at > now() - interval '24 hours'
""")


async def send_limits(
    conn: AsyncConnection, business_id: int, *, default_messages_per_s: float
) -> SendLimits:
    row = (await conn.execute(_LIMITS, {"business": business_id})).first()
    if row is None:
        return SendLimits()
    pace = row.whatsapp_messages_per_s
    if pace is None:
        pace = default_messages_per_s or None
    tier_used, tier_frees_at = 0, None
    if row.whatsapp_daily_limit is not None and row.whatsapp_phone_number_id:
        tier = (await conn.execute(_TIER, {"sender": row.whatsapp_phone_number_id})).one()
        tier_used, tier_frees_at = int(tier[0]), tier[1]
    return SendLimits(
        messages_per_s=pace,
        tier_limit=row.whatsapp_daily_limit,
        tier_used=tier_used,
        tier_frees_at=tier_frees_at,
        daily_cap=row.daily_send_cap,
        cap_used_today=int(row.cap_used or 0),
    )
