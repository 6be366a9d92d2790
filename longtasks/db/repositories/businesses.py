"""Businesses (tenants)."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.db.models import Business

businesses = cast(Table, Business.__table__)


async def ensure_business(
    conn: AsyncConnection,
    business_id: int,
    *,
    name: str | None = None,
    whatsapp_phone_number_id: str | None = None,
) -> None:
    """Create the business if it does not exist (dev seeding and tests); never overwrite."""
    await conn.execute(
        text(
            "INSERT INTO businesses (id, name, whatsapp_phone_number_id) VALUES (:id, :name, :wa)"
            " ON CONFLICT (id) DO NOTHING"
        ),
        {
            "id": business_id,
            "name": name or f"Business {business_id}",
            "wa": whatsapp_phone_number_id or f"{100000 + business_id}",
        },
    )


async def exists(conn: AsyncConnection, business_id: int) -> bool:
    result = await conn.execute(select(businesses.c.id).where(businesses.c.id == business_id))
    return result.scalar() is not None
