"""One broadcast page's share of its business's daily send cap.

Before sending, the page reserves one send per recipient it still has to message (not the
invalid numbers, not items an earlier attempt settled) from the business's row for the UTC
day (`db.repositories.send_days`), committed before any send, so two tasks' pages never spend
the same budget. Recipients beyond the grant are left out of the page (unclaimed); the page
reports when the next day's budget starts, and the workflow waits `paused` until then, or until
the cap is raised. Afterwards it gives back what it reserved and did not send (a pause, a
cancel, a throttle that outlasted the page).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from longtasks.db.repositories import ledger, send_days
from longtasks.db.repositories.broadcasts import RecipientRow


@dataclass
class DailyCapShare:
    business_id: int
    cap: int
    day: dt.date
    granted: frozenset[str]
    # Epoch seconds of the next UTC midnight when some recipients were left out, else None.
    deferred_until: float | None
    sent: set[str] = field(default_factory=set)

    @classmethod
    async def reserve(
        cls,
        engine: AsyncEngine,
        *,
        business_id: int,
        cap: int,
        task_id: int,
        after_seq: int,
        up_to_seq: int,
        recipients: Sequence[RecipientRow],
    ) -> tuple[DailyCapShare, list[RecipientRow]]:
        """The page's share and the recipients it may go on with (in seq order)."""
        async with engine.begin() as conn:
            settled = await ledger.settled_keys(
                conn, task_id, after_seq=after_seq, up_to_seq=up_to_seq
            )
            to_send = [
                r for r in recipients if r.invalid_reason is None and str(r.id) not in settled
            ]
            grant = await send_days.reserve(conn, business_id, len(to_send), cap)
        granted = frozenset(str(r.id) for r in to_send[: grant.granted])
        share = cls(
            business_id=business_id,
            cap=cap,
            day=grant.day,
            granted=granted,
            deferred_until=grant.next_day_epoch if grant.granted < len(to_send) else None,
        )
        kept = [
            r
            for r in recipients
            if r.invalid_reason is not None or str(r.id) in settled or str(r.id) in granted
        ]
        return share, kept

    @property
    def reason(self) -> str:
        return f"the business's daily send cap is reached ({self.cap:,} messages per day)"

    def note_sent(self, item_key: str) -> None:
        """The provider was asked to send this item (at least once): the reservation is used."""
        self.sent.add(item_key)

    async def give_back_unsent(self, engine: AsyncEngine) -> None:
        unsent = len(self.granted - self.sent)
        if unsent:
            async with engine.begin() as conn:
                await send_days.refund(conn, self.business_id, self.day, unsent)
