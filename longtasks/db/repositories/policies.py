"""A business's policy for its tasks: approval above a size, a daily send cap, auto-pause.

A business without a row has the defaults: no approval, no cap, and a circuit breaker that
pauses a task when half of its last 200 provider answers were failures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.db.models import BusinessPolicy

policies = cast(Table, BusinessPolicy.__table__)

DEFAULT_FAILURE_SHARE = 0.5
DEFAULT_WINDOW = 200


@dataclass(frozen=True)
class Policy:
    business_id: int
    # Tasks with more items (a broadcast's valid recipients) wait for an admin; None: never.
    approval_required_above: int | None = None
    # Messages per UTC day across all of the business's tasks; None: no cap.
    daily_send_cap: int | None = None
    # Pause a task once this share of its last `auto_pause_window` provider answers were
    # failures; None: never.
    auto_pause_failure_share: float | None = DEFAULT_FAILURE_SHARE
    auto_pause_window: int = DEFAULT_WINDOW
    updated_by: str | None = None
    updated_at: dt.datetime | None = None

    def needs_approval(self, items: int) -> bool:
        return self.approval_required_above is not None and items > self.approval_required_above


EDITABLE = (
    "approval_required_above",
    "daily_send_cap",
    "auto_pause_failure_share",
    "auto_pause_window",
)


async def get_policy(conn: AsyncConnection, business_id: int) -> Policy:
    row = (
        (await conn.execute(select(policies).where(policies.c.business_id == business_id)))
        .mappings()
        .first()
    )
    return Policy(**row) if row is not None else Policy(business_id=business_id)


async def put_policy(
    conn: AsyncConnection, business_id: int, changes: Mapping[str, Any], *, by: str
) -> Policy:
    """Apply `changes`; fields not named keep their value (one statement: two admins changing
    different fields at once both get their change)."""
    named = {k: v for k, v in changes.items() if k in EDITABLE}
    defaults = Policy(business_id=business_id)
    inserted = {name: named.get(name, getattr(defaults, name)) for name in EDITABLE}
    stamp = {"updated_by": by, "updated_at": func.now()}
    stmt = (
        insert(policies)
        .values(business_id=business_id, **inserted, **stamp)
        .on_conflict_do_update(index_elements=[policies.c.business_id], set_={**named, **stamp})
        .returning(*policies.c)
    )
    return Policy(**(await conn.execute(stmt)).mappings().one())
