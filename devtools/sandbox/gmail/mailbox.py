"""A sandbox account's mailbox: its messages as one index space, and its history.

Indexes below the archive's size are the generated archive, spread over the two years ending
on `newest_date` (fixed, so content is reproducible), oldest first; later indexes are messages
delivered since (control call, or `new_messages_per_minute`), dated by the wall clock. A message
id is the account's tag and its index in hex, so every id maps back to its index and content
without a lookup, and a mailbox of a million messages takes no memory until it is read.

History. Every delivered message adds one `messageAdded` record with a larger history id. A
`startHistoryId` older than the retained window (the last `history_retention` records, or
everything before an `expire_history` call) answers 404, as Gmail does after about a week.
"""

from __future__ import annotations

import bisect
import datetime
import hashlib
from dataclasses import dataclass, field
from typing import Any

from devtools.sandbox.gmail.corpus import Kind, MessageSpec, message_spec
from devtools.sandbox.gmail.messages import RenderedMessage, render
from devtools.sandbox.gmail.query import MessageMeta, Query

_DAY_S = 86400.0
_SPAN_S = 730 * _DAY_S


@dataclass(frozen=True)
class Archive:
    """What every mailbox starts with: `size` generated messages from `seed`, dated from
    `start_ts` up to `end_ts`."""

    seed: int
    size: int
    start_ts: float
    end_ts: float

    @classmethod
    def ending(cls, newest_date: datetime.date, *, seed: int, size: int) -> Archive:
        """The archive of the two years ending with the day `newest_date`."""
        end = datetime.datetime.combine(newest_date, datetime.time(), tzinfo=datetime.UTC)
        end_ts = end.timestamp() + _DAY_S
        return cls(seed=seed, size=size, start_ts=end_ts - _SPAN_S, end_ts=end_ts)


@dataclass
class Delivered:
    """A message delivered after the archive: when, its history record's id, a forced kind."""

    ts: float
    history_id: int
    forced: Kind | None


@dataclass
class Account:
    email: str
    tag: str
    archive: Archive
    created_at: float
    history_base: int
    history_floor: int
    bucket: float  # quota units left (the server's token bucket)
    bucket_at: float
    delivered: list[Delivered] = field(default_factory=list)
    auto_delivered: int = 0

    @classmethod
    def open(cls, email: str, archive: Archive, *, now: float, bucket: float) -> Account:
        tag = hashlib.sha256(f"{archive.seed}:{email}".encode()).hexdigest()[:6]
        history_base = 4_000_000 + int(tag, 16) % 1_000_000
        return cls(
            email=email, tag=tag, archive=archive, created_at=now, history_base=history_base,
            history_floor=history_base, bucket=bucket, bucket_at=now,
        )  # fmt: skip

    @property
    def total(self) -> int:
        return self.archive.size + len(self.delivered)

    @property
    def latest_history_id(self) -> int:
        return self.delivered[-1].history_id if self.delivered else self.history_base

    def oldest_history_id(self, retention: int) -> int:
        """A `startHistoryId` below this is too old: 404."""
        floor = self.history_floor
        dropped = len(self.delivered) - retention
        if dropped > 0:
            floor = max(floor, self.delivered[dropped - 1].history_id)
        return floor

    def deliver(self, now: float, kind: Kind | None) -> str:
        """A new message, dated `now` (the wall clock) or just after the newest; its id."""
        last_ts = self.delivered[-1].ts if self.delivered else self.archive.end_ts
        position = len(self.delivered)
        # History ids grow with gaps, as Gmail's do; clients must not assume +1.
        history_id = self.latest_history_id + 1 + position % 3
        self.delivered.append(Delivered(max(now, last_ts + 1.0), history_id, kind))
        return self.message_id(self.archive.size + position)

    def history_record(self, position: int) -> dict[str, Any]:
        """The `history.list` record of the `position`th delivered message."""
        message_id = self.message_id(self.archive.size + position)
        ref = {"id": message_id, "threadId": message_id}
        return {
            "id": str(self.delivered[position].history_id),
            "messages": [ref],
            "messagesAdded": [{"message": {**ref, "labelIds": ["INBOX", "UNREAD"]}}],
        }

    def message_id(self, index: int) -> str:
        return f"{self.tag}{index:010x}"

    def index_of(self, message_id: str) -> int | None:
        if len(message_id) != 16 or not message_id.startswith(self.tag):
            return None
        try:
            index = int(message_id[6:], 16)
        except ValueError:
            return None
        return index if index < self.total else None

    def spec(self, index: int) -> MessageSpec:
        size = self.archive.size
        forced = None if index < size else self.delivered[index - size].forced
        return message_spec(self.archive.seed, self.email, index, forced)

    def ts(self, index: int) -> float:
        archive = self.archive
        if index >= archive.size:
            return self.delivered[index - archive.size].ts
        step = _SPAN_S / archive.size
        return archive.start_ts + (index + self.spec(index).jitter) * step

    def rendered(self, index: int) -> RenderedMessage:
        if index < self.archive.size:
            history_id = self.history_base
        else:
            history_id = self.delivered[index - self.archive.size].history_id
        return render(
            self.spec(index), self.message_id(index), self.ts(index), history_id, self.email
        )

    def index_range(self, query: Query) -> tuple[int, int]:
        """The indexes `query`'s date bounds leave: [lo, hi), found by bisection on dates."""
        indexes = range(self.total)
        lo = 0 if query.after is None else bisect.bisect_left(indexes, query.after, key=self.ts)
        hi = (
            self.total
            if query.before is None
            else bisect.bisect_left(indexes, query.before, key=self.ts)
        )
        return lo, max(lo, hi)

    def matches(self, index: int, query: Query) -> bool:
        if not query.needs_meta:
            return True
        spec = self.spec(index)
        sender = f"{spec.sender_display or ''} <{spec.sender_address}>".lower()
        filenames = tuple(
            n.lower() for n in (spec.pdf_name, "logo.png" if spec.with_logo else None) if n
        )
        return query.matches(MessageMeta(spec.subject.lower(), sender, self.ts(index), filenames))
