"""Pacing sends per sender number across all workers (WhatsApp's per-number throughput).

Each worker reserves small blocks of send slots from Postgres (`db.repositories.pacing`) and
hands them out to its coroutines, so the sender's rate holds however many workers share it,
at one round trip per block rather than per message.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

from sqlalchemy.ext.asyncio import AsyncEngine

from longtasks.db.repositories.pacing import reserve_slots


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

    async def wait_turn(self, sender_id: str, messages_per_s: float | None) -> None:
        """Return when this coroutine may send; immediately when the sender is unpaced."""
        if not messages_per_s or messages_per_s <= 0:
            return
        loop = asyncio.get_running_loop()
        rate = messages_per_s * self._headroom
        while True:
            slot = await self._take_slot(sender_id, rate)
            delay = slot - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            # Woken late (a busy event loop): sending on this old slot would bunch up with the
            # next ones and push a one-second window over the limit. Take a fresh slot.
            if loop.time() - slot <= 1.0 / rate:
                return

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
                start = asyncio.get_running_loop().time() + offset
                slots.extend(start + i * interval for i in range(count))
            return slots.popleft()
