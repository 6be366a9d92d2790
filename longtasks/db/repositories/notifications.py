"""Per-business notification settings, and which channels a finished task was notified on."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.db.models import NotificationDelivery, NotificationSettings
from longtasks.db.rows import mapped_first, returned_first

settings_table = cast(Table, NotificationSettings.__table__)
deliveries = cast(Table, NotificationDelivery.__table__)


async def get_config(conn: AsyncConnection, business_id: int) -> NotificationSettings | None:
    return await mapped_first(
        conn, select(NotificationSettings).where(NotificationSettings.business_id == business_id)
    )


async def put_config(
    conn: AsyncConnection,
    business_id: int,
    *,
    webhook_url: str | None,
    webhook_secret_encrypted: str | None,
    email_to: str | None,
) -> NotificationSettings:
    values = {
        "webhook_url": webhook_url,
        "webhook_secret_encrypted": webhook_secret_encrypted,
        "email_to": email_to,
        "updated_at": func.now(),
    }
    stmt = (
        insert(settings_table)
        .values(business_id=business_id, **values)
        .on_conflict_do_update(index_elements=[settings_table.c.business_id], set_=values)
        .returning(*settings_table.c)
    )
    config = await returned_first(conn, NotificationSettings, stmt)
    assert config is not None  # an upsert returns its row
    return config


async def delete_config(conn: AsyncConnection, business_id: int) -> bool:
    result = await conn.execute(
        delete(settings_table).where(settings_table.c.business_id == business_id)
    )
    return bool(result.rowcount)


async def settled_channels(conn: AsyncConnection, task_id: int) -> set[str]:
    """Channels already delivered (or refused for good) for this task: never sent again."""
    result = await conn.execute(select(deliveries.c.channel).where(deliveries.c.task_id == task_id))
    return {r[0] for r in result}


async def record_delivery(
    conn: AsyncConnection, task_id: int, channel: str, outcome: str, detail: str | None = None
) -> None:
    await conn.execute(
        insert(deliveries)
        .values(task_id=task_id, channel=channel, outcome=outcome, detail=detail)
        .on_conflict_do_nothing(index_elements=[deliveries.c.task_id, deliveries.c.channel])
    )
