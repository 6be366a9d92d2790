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
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from longtasks.db.repositories import ledger

Item = tuple[int, str, str]  # (task id, item key, the marking attempt's token)


class DispatchLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._marks: dict[Item, asyncio.Future[bool]] = {}
        self._unmarks: dict[Item, asyncio.Future[bool]] = {}
        self._writer: asyncio.Task[None] | None = None

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
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        conn: AsyncConnection | None = None
        try:
            while self._marks or self._unmarks:
                marks, self._marks = self._marks, {}
                unmarks, self._unmarks = self._unmarks, {}
                try:
                    if conn is None:
                        conn = await self._engine.connect()
                        await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await ledger.unmark_dispatched(conn, list(unmarks))
                    marked = await ledger.mark_dispatched(conn, list(marks))
                except Exception as exc:
                    for future in (*marks.values(), *unmarks.values()):
                        if not future.done():
                            future.set_exception(exc)
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.invalidate()
                        conn = None
                    continue
                for (task_id, key, _), future in marks.items():
                    if not future.done():
                        future.set_result((task_id, key) in marked)
                for future in unmarks.values():
                    if not future.done():
                        future.set_result(True)
        finally:
            if conn is not None:
                await conn.close()
