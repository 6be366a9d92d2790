"""Dispatch marks: "this item's request may leave now", committed before it does.

The WhatsApp Cloud API has no idempotency key, so an attempt that dies between sending and
recording the answer leaves an item nobody can confirm. To know *which* items those are, each
send is preceded by a committed mark on its ledger row (`task_items.dispatched_at`); a later
attempt that finds the mark set does not send again, it reports the item `unconfirmed`. Items
claimed but never marked were certainly not sent and are sent normally.

A commit per message would cost a round trip and a disk flush per message. Instead one writer
per worker takes every mark asked for (by any page of any task) while its previous statement
ran, and writes them in one statement on a connection it keeps while marks keep coming, in
autocommit (one round trip: the server commits the statement itself, waiting for the disk).
Sends wait about one round trip. The mark is conditional (`dispatched_at IS NULL`), so of two
attempts racing for the same item only one ever gets to send it.

Row-level security: the writer serves every business's tasks on one autocommit connection,
where a transaction-local setting would last one statement. Each mark carries the business its
caller acts for; the writer sets that business for its session before that business's
statements (only when it changes) and clears it before the connection goes back to the pool.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from longtasks.db.repositories import ledger
from longtasks.db.tenancy import SETTING, acting_for, current_business

Item = tuple[int, str, str]  # (task id, item key, the marking attempt's token)


class DispatchLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._marks: dict[Item, asyncio.Future[bool]] = {}
        self._unmarks: dict[Item, asyncio.Future[bool]] = {}
        self._writer: asyncio.Task[None] | None = None
        # The business each queued mark's caller acts for.
        self._business: dict[Item, int | None] = {}

    async def mark(self, task_id: int, item_key: str, token: str) -> bool:
        """True when the attempt holding `token` may send the item now (its mark is
        committed); False when another attempt marked it first. Raises when the database
        cannot be reached (the mark may or may not have been written: the same attempt asking
        again with its token finds out)."""
        return await self._queue(self._marks, (task_id, item_key, token))

    async def unmark(self, task_id: int, item_key: str, token: str) -> None:
        """The request was refused before anything was taken: a later try may send it."""
        await self._queue(self._unmarks, (task_id, item_key, token))

    async def _queue(self, queue: dict[Item, asyncio.Future[bool]], item: Item) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        queue[item] = future
        self._business[item] = current_business()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        # The writer acts for no business of its own: each batch sets its callers'.
        with acting_for(None):
            while True:
                await self._write_batches()
                # Marks queued while it was closing its connection (this task not yet done,
                # so no new writer was started for them): write them too, or they wait forever.
                if not (self._marks or self._unmarks):
                    return

    async def _write_batches(self) -> None:
        conn: AsyncConnection | None = None
        acting: int | None = None
        try:
            while self._marks or self._unmarks:
                marks, self._marks = self._marks, {}
                unmarks, self._unmarks = self._unmarks, {}
                business = {i: self._business.pop(i, None) for i in (*marks, *unmarks)}
                try:
                    if conn is None:
                        conn = await self._engine.connect()
                        await conn.execution_options(isolation_level="AUTOCOMMIT")
                        acting = None
                    granted: set[Item] = set()
                    for b in sorted({business[i] for i in business}, key=lambda b: b or 0):
                        if b != acting:
                            await _act_for(conn, b)
                            acting = b
                        await ledger.unmark_dispatched(
                            conn, [i for i in unmarks if business[i] == b]
                        )
                        granted |= await ledger.mark_dispatched(
                            conn, [i for i in marks if business[i] == b]
                        )
                except Exception as exc:
                    for future in (*marks.values(), *unmarks.values()):
                        if not future.done():
                            future.set_exception(exc)
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.invalidate()
                        conn = None
                    continue
                # By token, not by item: two attempts marking one item in this batch are
                # both joined to its row, and only the one whose token it holds may send.
                for item, future in marks.items():
                    if not future.done():
                        future.set_result(item in granted)
                for future in unmarks.values():
                    if not future.done():
                        future.set_result(True)
        finally:
            if conn is not None:
                try:
                    # A pooled connection must not keep acting for a business.
                    await _act_for(conn, None)
                except Exception:
                    with contextlib.suppress(Exception):
                        await conn.invalidate()
                await conn.close()


async def _act_for(conn: AsyncConnection, business_id: int | None) -> None:
    """For this session (autocommit: a transaction-local setting would last one statement)."""
    await conn.execute(
        text(f"SELECT set_config('{SETTING}', :b, false)"),
        {"b": "" if business_id is None else str(business_id)},
    )
