"""A request's database transaction: where it begins, commits and rolls back.

Routes take their connection from a dependency, never from the engine:

- `ReadConn`: a READ ONLY, REPEATABLE READ transaction, so every read of one request (a task
  and its items, a page and its count) sees one snapshot. Costs Postgres nothing extra for a
  read-only transaction (no predicate locks, no serialization failures).
- `WriteConn`: a READ COMMITTED transaction that commits when the route returns and rolls back
  when it raises. Repositories never commit; the task services (`longtasks.tasks`) begin and
  commit their own, because they commit before they tell Temporal (such a route takes
  `Transactions` for its reads).
- `ExportConn`: a READ ONLY, REPEATABLE READ transaction that lasts until a streamed response
  has sent its last byte, so pages read after the response started still see the snapshot the
  first page saw.
- `Transactions`: for the few routes that need several transactions (see its docstring).

Both `ReadConn` and `WriteConn` end with `scope="function"`: FastAPI runs their exit when the
route has returned and its response model is serialized, *before* the response is sent. So a
commit that fails (a deferred constraint, a lost connection) is the client's error answer, never
a 200 for a write that did not happen, and the connection goes back to the pool before the
body is written to a slow client. A dependency with the default scope ("request") exits only
after the response is sent, streamed bodies included; `ExportConn` relies on exactly that.
`tests/api/test_transactions.py` pins both behaviours of the installed FastAPI.

`request_transaction` is the one place a request's transaction begins, with its isolation and
READ ONLY. The services that commit before they tell Temporal (`longtasks.tasks`) begin theirs
on the engine, as the worker's activities do: what every transaction needs, whoever begins it,
belongs to the engine (e.g. a `begin` event), not here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.deps import ResourcesDep, get_principal
from longtasks.auth.tokens import Principal

Isolation = Literal["READ COMMITTED", "REPEATABLE READ"]


@contextlib.asynccontextmanager
async def request_transaction(
    engine: AsyncEngine, *, read_only: bool, isolation: Isolation
) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction: committed when the block ends, rolled back if it raises.

    Isolation and READ ONLY are connection settings that psycopg sends with the BEGIN itself (no
    extra round trip); the pool resets them when the connection is returned.
    """
    async with engine.connect() as conn:
        if read_only or isolation != "READ COMMITTED":
            await conn.execution_options(isolation_level=isolation, postgresql_readonly=read_only)
        async with conn.begin():
            yield conn


# The principal is a parameter so that a request is authenticated before it takes a connection
# from the pool: a flood of bad tokens never costs a connection.
AuthenticatedPrincipal = Annotated[Principal, Depends(get_principal)]


async def _read(
    resources: ResourcesDep, _: AuthenticatedPrincipal
) -> AsyncIterator[AsyncConnection]:
    async with request_transaction(
        resources.engine, read_only=True, isolation="REPEATABLE READ"
    ) as conn:
        yield conn


async def _write(
    resources: ResourcesDep, _: AuthenticatedPrincipal
) -> AsyncIterator[AsyncConnection]:
    async with request_transaction(
        resources.engine, read_only=False, isolation="READ COMMITTED"
    ) as conn:
        yield conn


async def _export(
    resources: ResourcesDep, _: AuthenticatedPrincipal
) -> AsyncIterator[AsyncConnection]:
    # The same transaction as `_read`, but a function of its own: FastAPI caches a dependency
    # per request by its function, and a route's short read must never be the export's.
    async with request_transaction(
        resources.engine, read_only=True, isolation="REPEATABLE READ"
    ) as conn:
        yield conn


async def _ops_read(resources: ResourcesDep) -> AsyncIterator[AsyncConnection]:
    async with request_transaction(
        resources.engine, read_only=True, isolation="REPEATABLE READ"
    ) as conn:
        yield conn


ReadConn = Annotated[AsyncConnection, Depends(_read, scope="function")]
WriteConn = Annotated[AsyncConnection, Depends(_write, scope="function")]
# Across businesses, for the unauthenticated ops endpoints (`/metrics`).
OpsReadConn = Annotated[AsyncConnection, Depends(_ops_read, scope="function")]
# Request scope: ends after the streamed response's last byte (or the client's disconnect).
ExportConn = Annotated[AsyncConnection, Depends(_export, scope="request")]


@dataclass(frozen=True)
class Transactions:
    """Short transactions, one after another, for the routes whose work must not be one
    transaction, each begun by `request_transaction`:

    - Server-Sent Events: a stream lives for minutes or hours; it reads a snapshot in its own
      short transaction at each change, and never holds one open between changes.
    - cancel, bulk cancel, pause, resume, approve, reject: the change is committed (by the
      service in `longtasks.tasks`) before Temporal is told, and stays recorded when Temporal
      cannot be reached; the task is read before and shown after in short reads.
    - the start routes and retry_failed: what they check is read first; `start_task` commits
      the task in its own transaction before its workflow starts.
    - `PUT /api/policy` and `PUT /api/receipts/gmail_connection`: committed before Temporal is
      signalled or the Gmail Schedule is made.
    - WhatsApp's status webhooks: a notification of up to 1,000 statuses is applied a statement
      per transaction, one retried alone when Postgres aborts it for a deadlock.
    """

    engine: AsyncEngine

    def read(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return request_transaction(self.engine, read_only=True, isolation="REPEATABLE READ")

    def write(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        return request_transaction(self.engine, read_only=False, isolation="READ COMMITTED")


def _transactions(resources: ResourcesDep, _: AuthenticatedPrincipal) -> Transactions:
    return Transactions(resources.engine)


TransactionsDep = Annotated[Transactions, Depends(_transactions)]


def _signed_transactions(resources: ResourcesDep) -> Transactions:
    # No bearer token: Meta signs the body, and the route checks the signature over the raw
    # bytes before it begins any transaction (a forged request never takes a connection).
    return Transactions(resources.engine)


# For `/webhooks/whatsapp` only: the caller is authenticated by the route itself.
SignedTransactionsDep = Annotated[Transactions, Depends(_signed_transactions)]
