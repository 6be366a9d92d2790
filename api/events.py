"""Live task changes for SSE readers, driven by Postgres LISTEN/NOTIFY.

One LISTEN connection per API process fans notifications out to subscribers; a subscriber
reads a snapshot only when its task changed, so a thousand watchers of an idle task cost
nothing, and a fast task's many commits coalesce into one read per `coalesce_s`.

The same connection hears token revocations (from any replica): a subscriber whose token is
revoked is woken with `revoked` set, and its stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import psycopg

from longtasks.db.engine import libpq_url
from longtasks.db.repositories.revocations import REVOKED_CHANNEL
from longtasks.db.repositories.tasks import TASK_CHANNEL

log = logging.getLogger("longtasks.events")


@dataclass(eq=False)
class Subscription:
    """Task ids that changed since the subscriber last looked; `changed` wakes it."""

    changed: asyncio.Event = field(default_factory=asyncio.Event)
    dirty: set[int] = field(default_factory=set)
    # After the LISTEN connection was lost, everything may have changed.
    resync: bool = False
    # The token the stream was opened with has been revoked.
    revoked: bool = False

    def take(self) -> tuple[set[int], bool]:
        dirty, resync = self.dirty, self.resync
        self.dirty, self.resync = set(), False
        self.changed.clear()
        return dirty, resync


class TaskEventHub:
    def __init__(self, database_url: str) -> None:
        self._url = libpq_url(database_url)
        self._by_task: dict[int, set[Subscription]] = defaultdict(set)
        self._by_business: dict[int, set[Subscription]] = defaultdict(set)
        self._by_token: dict[tuple[int, str], set[Subscription]] = defaultdict(set)
        self._listener: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    def _ensure_listening(self) -> None:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen_forever())

    @contextlib.asynccontextmanager
    async def subscribe(
        self, *, token: tuple[int, str], task_id: int | None = None, business_id: int | None = None
    ) -> AsyncIterator[Subscription]:
        """`token`: the (business id, jti) the stream was opened with."""
        self._ensure_listening()
        sub = Subscription()
        registry, key = (
            (self._by_task, task_id) if task_id is not None else (self._by_business, business_id)
        )
        assert key is not None
        registry[key].add(sub)
        self._by_token[token].add(sub)
        try:
            # Subscribe before the first read, so no change between the two is missed.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), timeout=2.0)
            yield sub
        finally:
            registry[key].discard(sub)
            if not registry[key]:
                del registry[key]
            self._by_token[token].discard(sub)
            if not self._by_token[token]:
                del self._by_token[token]

    def _dispatch_revoked(self, payload: str) -> None:
        try:
            data = json.loads(payload)
            token = (int(data["business_id"]), str(data["jti"]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed revocation %r", payload)
            return
        for sub in self._by_token.get(token, ()):
            sub.revoked = True
            sub.changed.set()

    def _dispatch(self, payload: str) -> None:
        try:
            data = json.loads(payload)
            task_id, business_id = int(data["task_id"]), int(data["business_id"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed notification %r", payload)
            return
        for sub in (*self._by_task.get(task_id, ()), *self._by_business.get(business_id, ())):
            sub.dirty.add(task_id)
            sub.changed.set()

    def _resync_all(self) -> None:
        for registry in (self._by_task, self._by_business):
            for subs in registry.values():
                for sub in subs:
                    sub.resync = True
                    sub.changed.set()

    async def _listen_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {TASK_CHANNEL}")
                    await conn.execute(f"LISTEN {REVOKED_CHANNEL}")
                    self._connected.set()
                    self._resync_all()
                    delay = 0.2
                    async for notify in conn.notifies():
                        if notify.channel == REVOKED_CHANNEL:
                            self._dispatch_revoked(notify.payload)
                        else:
                            self._dispatch(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._connected.clear()
                log.warning("LISTEN connection lost (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
