"""Reading a table's rows as its mapped class, on a connection the caller owns.

Each table has one row type: its class in `longtasks.db.models`. Repositories take an
`AsyncConnection` (a request's transaction, an activity's) and read mapped objects through a
session made for that one read. The session joins the connection's transaction and never
commits (a connection with no transaction gets one that the session rolls back on close);
closing it lets the objects go, with every column loaded and readable.

The session is a plain `Session` run on the connection's greenlet (`run_sync`): an
`AsyncSession` per read would cost a third more Python calls for the same work.

Statements that return no rows to anyone (the ledger's claim and settle, counter updates) stay
plain Core statements on the connection: they build no objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.roles import ReturnsRowsRole
from sqlalchemy.sql.selectable import TypedReturnsRows

T = TypeVar("T")


def _read(conn: Connection, stmt: Executable, first: bool) -> Any:
    with Session(conn, autoflush=False, expire_on_commit=False) as session:
        result = session.scalars(stmt)
        return result.first() if first else result.all()


async def mapped_all(conn: AsyncConnection, stmt: TypedReturnsRows[T]) -> Sequence[T]:
    """Every object `stmt` (a select of a mapped class) returns."""
    objs: Sequence[T] = await conn.run_sync(_read, stmt, False)
    return objs


async def mapped_first(conn: AsyncConnection, stmt: TypedReturnsRows[T]) -> T | None:
    """The first object `stmt` returns, or None."""
    obj: T | None = await conn.run_sync(_read, stmt, True)
    return obj


async def returned_all(conn: AsyncConnection, cls: type[T], stmt: ReturnsRowsRole) -> Sequence[T]:
    """The objects of `cls` that `stmt` returns: `stmt` is a statement of its own (an INSERT
    or UPDATE ... RETURNING every column of `cls`'s table, a textual query), its columns
    matched to `cls`'s by name."""
    objs: Sequence[T] = await conn.run_sync(_read, select(cls).from_statement(stmt), False)
    return objs


async def returned_first(conn: AsyncConnection, cls: type[T], stmt: ReturnsRowsRole) -> T | None:
    """The first object of `cls` that `stmt` returns (see `returned_all`), or None."""
    obj: T | None = await conn.run_sync(_read, select(cls).from_statement(stmt), True)
    return obj
