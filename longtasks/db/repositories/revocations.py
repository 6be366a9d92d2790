"""The token denylist: revoke (and tell every API replica at once), and ask.

A revocation commits with a `NOTIFY longtasks_revoked`, so open streams on any replica end within
moments; requests ask the table itself, so a replica whose LISTEN connection is down still
refuses a revoked token.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

REVOKED_CHANNEL = "longtasks_revoked"


@dataclass(frozen=True)
class Revocation:
    jti: str
    revoked_at: dt.datetime
    revoked_by: str


_REVOKE = text("""
    INSERT INTO revoked_tokens (business_id, jti, revoked_by, expires_at)
    VALUES (:business_id, :jti, :revoked_by, now() + make_interval(secs => :keep_s))
    ON CONFLICT (business_id, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at
    RETURNING jti, revoked_at, revoked_by
""")
_PRUNE = text("DELETE FROM revoked_tokens WHERE business_id = :business_id AND expires_at < now()")
_IS_REVOKED = text(
    "SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE business_id = :business_id AND jti = :jti)"
)


async def revoke(
    conn: AsyncConnection, *, business_id: int, jti: str, revoked_by: str, keep_s: float
) -> Revocation:
    """Idempotent: revoking again keeps the first revocation's time and author."""
    await conn.execute(_PRUNE, {"business_id": business_id})
    row = (
        await conn.execute(
            _REVOKE,
            {"business_id": business_id, "jti": jti, "revoked_by": revoked_by, "keep_s": keep_s},
        )
    ).one()
    await conn.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {
            "channel": REVOKED_CHANNEL,
            "payload": json.dumps({"business_id": business_id, "jti": jti}),
        },
    )
    return Revocation(jti=row.jti, revoked_at=row.revoked_at, revoked_by=row.revoked_by)


async def is_revoked(conn: AsyncConnection, *, business_id: int, jti: str) -> bool:
    result = await conn.execute(_IS_REVOKED, {"business_id": business_id, "jti": jti})
    return bool(result.scalar_one())
