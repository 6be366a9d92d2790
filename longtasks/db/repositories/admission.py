"""Per-request admission, one round trip: charge the caller's budget and ask the denylist.

The budget is the generic cell rate algorithm over `api_rate_limits` (0006): with T = 1/rate and
a tolerance of (burst - 1) * T, a request at `now` is admitted when max(tat, now) - now <= the
tolerance, and moves tat to max(tat, now) + T. The row lock of the upsert serializes a caller's
concurrent requests across every replica, so N replicas give a caller one budget, not N.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_CHARGE = """
    WITH clock AS (SELECT clock_timestamp() AS now),
    charged AS (
        INSERT INTO api_rate_limits AS r (key, tat)
        SELECT :key, now + make_interval(secs => :interval) FROM clock
        ON CONFLICT (key) DO UPDATE
            SET tat = GREATEST(r.tat, EXCLUDED.tat - make_interval(secs => :interval))
                      + make_interval(secs => :interval)
            WHERE GREATEST(r.tat, EXCLUDED.tat - make_interval(secs => :interval))
                  <= EXCLUDED.tat - make_interval(secs => :interval)
                     + make_interval(secs => :tolerance)
        RETURNING 1
    )
    SELECT
        EXISTS (SELECT 1 FROM charged) AS admitted,
        (SELECT EXTRACT(EPOCH FROM (r.tat - clock.now))::float8
           FROM api_rate_limits r, clock WHERE r.key = :key) AS ahead_s,
        {revoked} AS revoked
"""
_REVOKED = "EXISTS (SELECT 1 FROM revoked_tokens WHERE business_id = :business_id AND jti = :jti)"
_CHARGE_ONLY = text(_CHARGE.format(revoked="false"))
_CHARGE_AND_ASK = text(_CHARGE.format(revoked=_REVOKED))
_ASK_ONLY = text(f"SELECT true AS admitted, NULL::float8 AS ahead_s, {_REVOKED} AS revoked")
# A row whose budget has refilled holds nothing: dropping it changes no one's budget.
_PRUNE = text("DELETE FROM api_rate_limits WHERE tat < clock_timestamp()")


@dataclass(frozen=True)
class Admission:
    admitted: bool
    revoked: bool
    retry_after_s: float


async def admit(
    conn: AsyncConnection,
    *,
    key: str | None,
    rate_per_s: float,
    burst: int,
    token: tuple[int, str] | None,
) -> Admission:
    """`key`: whose budget to charge (None: no limit); `token`: (business id, jti) to ask the
    denylist about (None: an unauthenticated request)."""
    params: dict[str, object] = {}
    if token is not None:
        params.update(business_id=token[0], jti=token[1])
    if key is None:
        if token is None:
            return Admission(admitted=True, revoked=False, retry_after_s=0.0)
        statement = _ASK_ONLY
    else:
        interval = 1.0 / rate_per_s
        params.update(key=key, interval=interval, tolerance=(burst - 1) * interval)
        statement = _CHARGE_AND_ASK if token is not None else _CHARGE_ONLY
    row = (await conn.execute(statement, params)).one()
    retry_after = 0.0
    if not row.admitted:
        interval = 1.0 / rate_per_s
        retry_after = max(float(row.ahead_s or 0.0) - (burst - 1) * interval, interval)
    return Admission(
        admitted=bool(row.admitted), revoked=bool(row.revoked), retry_after_s=retry_after
    )


async def prune(conn: AsyncConnection) -> int:
    result = await conn.execute(_PRUNE)
    return int(result.rowcount or 0)
