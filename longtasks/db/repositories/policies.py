"""A business's policy for its tasks: approval above a size, a daily send cap, auto-pause.

A business without a row has the defaults (`BusinessPolicy.defaults`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.db.models import BusinessPolicy
from longtasks.db.rows import mapped_first, returned_first

policies = cast(Table, BusinessPolicy.__table__)

EDITABLE = (
    "approval_required_above",
    "daily_send_cap",
    "auto_pause_failure_share",
    "auto_pause_window",
)


async def get_policy(conn: AsyncConnection, business_id: int) -> BusinessPolicy:
    """The business's policy; the defaults when it has no row."""
    policy = await mapped_first(
        conn, select(BusinessPolicy).where(BusinessPolicy.business_id == business_id)
    )
    return policy if policy is not None else BusinessPolicy.defaults(business_id)


async def put_policy(
    conn: AsyncConnection, business_id: int, changes: Mapping[str, Any], *, by: str
) -> BusinessPolicy:
    """Apply `changes`; fields not named keep their value (one statement: two admins changing
    different fields at once both get their change)."""
    named = {k: v for k, v in changes.items() if k in EDITABLE}
    defaults = BusinessPolicy.defaults(business_id)
    inserted = {name: named.get(name, getattr(defaults, name)) for name in EDITABLE}
    stamp = {"updated_by": by, "updated_at": func.now()}
    stmt = (
        insert(policies)
        .values(business_id=business_id, **inserted, **stamp)
        .on_conflict_do_update(index_elements=[policies.c.business_id], set_={**named, **stamp})
        .returning(*policies.c)
    )
    policy = await returned_first(conn, BusinessPolicy, stmt)
    assert policy is not None  # an upsert returns its row
    return policy
