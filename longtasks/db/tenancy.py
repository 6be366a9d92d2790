"""Which business the work at hand is for, and the database's second wall that reads it.

Every transaction an engine of ours begins starts with
`SELECT set_config('longtasks.business_id', <id>, true)` (transaction-local, like SET LOCAL)
when a business is set in this context, and the row-level security policies
(migrations/versions/0013_row_level_security.py) show and accept that business's rows only.
With none set, nothing of any business is visible: a forgotten context fails closed.

Who sets it: the API, from the verified token, for the whole request (`api.auth`); the worker,
for each activity, from the task it works on (`longtasks.temporal.tenancy`). Work that must
cross businesses does not set it: it goes through a named function instead (the migration
lists them).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

SETTING = "longtasks.business_id"
log = logging.getLogger("longtasks.db")

_business: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "longtasks_business", default=None
)


def current_business() -> int | None:
    return _business.get()


@contextlib.contextmanager
def acting_for(business_id: int | None) -> Iterator[None]:
    """Transactions begun inside the block (in this task and tasks it starts) are the
    business's."""
    token = _business.set(business_id)
    try:
        yield
    finally:
        _business.reset(token)


def _on_begin(conn: Connection) -> None:
    business_id = _business.get()
    if business_id is not None:
        conn.exec_driver_sql(
            f"SELECT set_config('{SETTING}', %(business)s, true)", {"business": str(business_id)}
        )


def install(engine: AsyncEngine) -> None:
    """Every transaction of this engine acts for the context's business (idempotent)."""
    if not event.contains(engine.sync_engine, "begin", _on_begin):
        event.listen(engine.sync_engine, "begin", _on_begin)


@dataclass(frozen=True)
class RoleCheck:
    role: str
    superuser: bool
    bypasses_rls: bool
    owned: int

    @property
    def walled(self) -> bool:
        """RLS binds this role: not a superuser, no BYPASSRLS, owner of no table."""
        return not (self.superuser or self.bypasses_rls or self.owned)


class UnwalledRole(RuntimeError):
    pass


async def require_walled_role(engine: AsyncEngine, *, refuse: bool) -> RoleCheck:
    """At a service's start: the role it connects as must be bound by row-level security.
    `refuse` (production): raise if not; otherwise say so in the log."""
    check = await check_role(engine)
    if not check.walled:
        why = (
            f"the database role {check.role} can see every business's rows (superuser:"
            f" {check.superuser}, bypasses RLS: {check.bypasses_rls}, owns {check.owned}"
            " tables): set DATABASE_URL to the application's role and MIGRATION_DATABASE_URL"
            " to the owner, then run `longtasks migrate`"
        )
        if refuse:
            raise UnwalledRole(why)
        log.warning("%s", why)
    return check


async def check_role(engine: AsyncEngine) -> RoleCheck:
    """What the role a service connects as could do past row-level security."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT current_user, r.rolsuper, r.rolbypassrls, (SELECT count(*) FROM"
                    " pg_class c WHERE c.relowner = r.oid AND c.relnamespace ="
                    " 'public'::regnamespace) FROM pg_roles r WHERE r.rolname = current_user"
                )
            )
        ).one()
    return RoleCheck(role=row[0], superuser=row[1], bypasses_rls=row[2], owned=int(row[3]))
