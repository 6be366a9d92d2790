"""Tasks as readers see them: the row, plus what is computed at read time (the ETA, the
tasks retrying its failures).

The ETA's limits (pace, tier, cap) are the business's, read once per business and kept for a
couple of seconds: an SSE stream renders a snapshot at every change, and an estimate of minutes
does not need the tier's usage re-counted four times a second.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from api.deps import Resources
from api.schemas import TaskOut
from longtasks import eta
from longtasks.db.models import LongRunningTask
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.send_limits import send_limits
from longtasks.domain import TaskStatus

LIMITS_TTL_S = 2.0


async def _limits(resources: Resources, conn: AsyncConnection, business_id: int) -> eta.SendLimits:
    cache = resources.limits_cache
    cached = cache.get(business_id)
    now = time.monotonic()
    if cached is not None and now - cached[0] < LIMITS_TTL_S:
        return cached[1]
    limits = await send_limits(
        conn,
        business_id,
        default_messages_per_s=resources.settings.whatsapp_default_messages_per_s,
    )
    if len(cache) > 10_000:  # bounded: a replica serving many businesses
        cache.clear()
    cache[business_id] = (now, limits)
    return limits


async def task_views(
    resources: Resources, conn: AsyncConnection, rows: Sequence[LongRunningTask]
) -> list[TaskOut]:
    children = await task_repo.children_of(conn, [r.id for r in rows])
    now = dt.datetime.now(dt.UTC)
    views = []
    for row in rows:
        eta_seconds = None
        if row.status == TaskStatus.running:
            limits = (
                await _limits(resources, conn, row.business_id)
                # Only tasks that send messages are bounded by sending limits.
                if row.task_type in resources.sending_task_types
                else None
            )
            eta_seconds = eta.estimate(row, limits, now)
        views.append(
            TaskOut.of(row, eta_seconds=eta_seconds, child_task_ids=children.get(row.id, ()))
        )
    return views


async def task_view(resources: Resources, conn: AsyncConnection, row: LongRunningTask) -> TaskOut:
    return (await task_views(resources, conn, [row]))[0]
