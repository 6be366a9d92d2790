"""Pacing sends per sender number across all workers (WhatsApp's per-number throughput).

Each worker reserves small blocks of send slots from Postgres (`db.repositories.pacing`) and
hands them out to its coroutines, so the sender's rate holds however many workers share it,
at one round trip per block rather than per message.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from longtasks.db.repositories.pacing import reserve_slots

T = TypeVar("T")


class SenderPacer:
    def __init__(
        self, engine: AsyncEngine, *, block_s: float = 0.25, headroom: float = 0.97
    ) -> None:
        self._engine = engine
        self._block_s = block_s
        # Slightly under the limit: network jitter must not push a window over it.
        self._headroom = headroom
        self._slots: dict[str, deque[float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # Sender -> loop time before which nothing is sent from it (WhatsApp said 130429), how
        # many back-offs followed each other with no send between (each doubles the pause).
        self._held_until: dict[str, float] = {}
        self._backoff_level: dict[str, int] = {}
        self._sent_since_backoff: dict[str, bool] = {}
        # Recent latencies of `prepare`: it starts their 95th percentile before its slot, so
        # few sends miss their slot (each miss wastes one) and little time passes between a
        # dispatch mark and its send.
        self._prepare_times: deque[float] = deque([0.02], maxlen=50)

    def back_off(self, sender_id: str, *, first_s: float = 0.05, max_s: float = 30.0) -> float:
        """The provider said the number's throughput is used up (130429): every send of this
        worker from that number waits, not only the item that was refused. A refusal after
        sends went through costs a twentieth of a second; refusals with nothing sent in
        between double it. Refusals of requests already in flight during a pause neither
        extend nor deepen it. Other workers get their own 130429 and back off the same way;
        no shared row is read on the send path. Returns the pause left."""
        now = asyncio.get_running_loop().time()
        held = self._held_until.get(sender_id, 0.0)
        if now < held:
            return held - now
        level = 0 if self._sent_since_backoff.get(sender_id, True) else self._level(sender_id) + 1
        pause: float = min(first_s * 2.0**level, max_s)
        self._backoff_level[sender_id] = level
        self._sent_since_backoff[sender_id] = False
        self._held_until[sender_id] = now + pause
        return pause

    def note_sent(self, sender_id: str) -> None:
        """A send from this number went through: the next refusal starts small again."""
        self._sent_since_backoff[sender_id] = True

    def _level(self, sender_id: str) -> int:
        return self._backoff_level.get(sender_id, 0)

    async def wait_turn(
        self,
        sender_id: str,
        messages_per_s: float | None,
        prepare: Callable[[], Awaitable[T]] | None = None,
    ) -> T | None:
        """Return when this coroutine may send; immediately when the sender is unpaced and not
        backing off.

        `prepare` (a send's dispatch mark, a database commit) runs just before the slot, so the
        request still leaves on its slot: run after the slot, its varying latency would bunch
        sends and push a one-second window over the limit. It starts an estimated latency
        ahead (the recent latencies, with a margin), so little time passes between it and
        the send. Its result is returned.
        """
        loop = asyncio.get_running_loop()
        held = self._held_until.get(sender_id, 0.0) - loop.time()
        if held > 0:
            await asyncio.sleep(held)
        if not messages_per_s or messages_per_s <= 0:
            return await prepare() if prepare is not None else None
        rate = messages_per_s * self._headroom
        prepared = prepare is None
        result: T | None = None
        while True:
            slot = await self._take_slot(sender_id, rate)
            if not prepared and prepare is not None:
                lead = min(self._lead_s(), 1.0)
                early = slot - lead - loop.time()
                if early > 0:
                    await asyncio.sleep(early)
                started = loop.time()
                result = await prepare()
                self._prepare_times.append(loop.time() - started)
                prepared = True
            delay = slot - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            # Woken late (a busy event loop, a slow `prepare`): sending on this old slot would
            # bunch up with the next ones and push a one-second window over the limit. Take a
            # fresh slot.
            if loop.time() - slot <= 1.0 / rate:
                return result

    def _lead_s(self) -> float:
        ordered = sorted(self._prepare_times)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] + 0.002

    async def _take_slot(self, sender_id: str, rate: float) -> float:
        interval = 1.0 / rate
        lock = self._locks.setdefault(sender_id, asyncio.Lock())
        async with lock:
            slots = self._slots.setdefault(sender_id, deque())
            now = asyncio.get_running_loop().time()
            # A slot long past would bunch up with newer ones: let it go unused.
            while slots and slots[0] < now - interval / 2:
                slots.popleft()
            if not slots:
                count = max(1, math.ceil(rate * self._block_s))
                async with self._engine.begin() as conn:
                    offset = await reserve_slots(conn, sender_id, count, interval)
                    # The offset is from the moment the statement ran, not from the commit,
                    # which can take longer than a slot on a busy disk: slots counted from
                    # the commit would start late and the first ones be thrown away.
                    start = asyncio.get_running_loop().time() + offset
                slots.extend(start + i * interval for i in range(count))
            return slots.popleft()
