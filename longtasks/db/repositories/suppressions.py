"""Recipients a business must not message: opted out (a STOP reply, error 131050), or held
for 24 hours after WhatsApp's marketing limit (131049). Later broadcasts skip them as failed
items without sending."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

OPTED_OUT = "opted_out"
MARKETING_LIMIT = "marketing_limit"

_ADD = text("""
    INSERT INTO wa_suppressions AS w (business_id, phone, reason, source, expires_at)
    SELECT b, p, :reason, :source, :expires_at
    FROM unnest(CAST(:businesses AS int8[]), CAST(:phones AS text[])) AS t(b, p)
    ON CONFLICT (business_id, phone) DO UPDATE
        SET reason = CASE WHEN w.expires_at IS NULL THEN w.reason ELSE excluded.reason END,
            source = CASE WHEN w.expires_at IS NULL THEN w.source ELSE excluded.source END,
            expires_at = CASE WHEN w.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL
                              ELSE greatest(w.expires_at, excluded.expires_at) END
""")


async def add(
    conn: AsyncConnection,
    pairs: Sequence[tuple[int, str]],
    *,
    reason: str,
    source: str,
    expires_at: dt.datetime | None = None,
) -> None:
    """Suppress (business, E.164 phone) pairs. An opt-out is forever and outranks a hold."""
    unique = sorted(set(pairs))
    if not unique:
        return
    await conn.execute(
        _ADD,
        {
            "businesses": [b for b, _ in unique],
            "phones": [p for _, p in unique],
            "reason": reason,
            "source": source,
            "expires_at": expires_at,
        },
    )


async def businesses_of_sender(conn: AsyncConnection, phone_number_id: str) -> list[int]:
    """The businesses sending from a WhatsApp phone number id (a named path across businesses:
    a STOP reply comes with no token)."""
    result = await conn.execute(
        text("SELECT longtasks_sender_businesses(:pnid)"),
        {"pnid": phone_number_id},
    )
    return [int(r[0]) for r in result]


async def active_for(
    conn: AsyncConnection, business_id: int, phones: Sequence[str]
) -> dict[str, str]:
    """phone -> reason, for the phones that must not be messaged now."""
    if not phones:
        return {}
    result = await conn.execute(
        text(
            "SELECT phone, reason FROM wa_suppressions WHERE business_id = :b"
            " AND phone = ANY(CAST(:phones AS text[]))"
            " AND (expires_at IS NULL OR expires_at > now())"
        ),
        {"b": business_id, "phones": list(phones)},
    )
    return {r[0]: r[1] for r in result}
