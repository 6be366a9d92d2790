"""The `task_types` lookup table: which task types rows may have."""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.db.models import TaskTypeName

task_types = cast(Table, TaskTypeName.__table__)


async def known(conn: AsyncConnection) -> set[str]:
    return set((await conn.execute(select(task_types.c.name))).scalars())


async def ensure(conn: AsyncConnection, names: Iterable[str]) -> list[str]:
    """Add the names not there yet; the ones added. Reads first, so a process whose database
    role may not insert here starts fine when every name is in place (the usual case)."""
    missing = sorted(set(names) - await known(conn))
    if missing:
        await conn.execute(
            insert(task_types)
            .values([{"name": name} for name in missing])
            .on_conflict_do_nothing(index_elements=[task_types.c.name])
        )
    return missing
