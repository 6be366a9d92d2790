"""One-line progress rendering for `longtasks watch`: pure functions over task snapshots.

Nothing here does I/O or reads a clock: the caller passes times in, so every number (percent,
rate over a sliding window, ETA, bar width) is unit-testable.

    task 12 running  [#########-----------]  45.0%  540/1,200  ok 530  failed 10  120/s  ETA 5s
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TERMINAL_STATUSES = frozenset({"completed", "cancelled", "failed", "expired"})
DEFAULT_BAR_WIDTH = 24
MIN_BAR_WIDTH = 10
DEFAULT_RATE_WINDOW_S = 10.0


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def parse_time(value: object) -> dt.datetime | None:
    """An ISO 8601 timestamp from the API (`...Z` or `+00:00`), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Snapshot:
    """The fields of a task (the API's JSON) that the progress line shows."""

    id: int
    task_type: str
    status: str
    total: int
    processed: int
    success: int
    failed: int
    skipped: int
    cancelled: int
    cancel_requested: bool
    error_message: str | None
    created_at: dt.datetime | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        error = data.get("error_message")
        return cls(
            id=_int(data, "id"),
            task_type=str(data.get("task_type") or "task"),
            status=str(data.get("status") or "unknown"),
            total=_int(data, "total_items"),
            processed=_int(data, "processed_items"),
            success=_int(data, "success_count"),
            failed=_int(data, "failed_count"),
            skipped=_int(data, "skipped_count"),
            cancelled=_int(data, "cancelled_count"),
            cancel_requested=bool(data.get("cancel_requested")),
            error_message=str(error) if error else None,
            created_at=parse_time(data.get("created_at")),
            started_at=parse_time(data.get("started_at")),
            completed_at=parse_time(data.get("completed_at")),
        )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def done(self) -> int:
        """Items that need no more work: processed, plus the cancelled ones once terminal."""
        return self.processed + (self.cancelled if self.terminal else 0)

    @property
    def remaining(self) -> int:
        return 0 if self.terminal else max(0, self.total - self.processed)

    def change_key(self) -> tuple[object, ...]:
        """What makes a new line worth printing when the output is not a terminal."""
        return (
            self.status,
            self.total,
            self.processed,
            self.success,
            self.failed,
            self.skipped,
            self.cancelled,
            self.cancel_requested,
        )


def percent(done: int, total: int, *, terminal: bool = False) -> float:
    """0..100, one decimal; an empty task is 0% while it runs and 100% once terminal."""
    if total <= 0:
        return 100.0 if terminal else 0.0
    return round(min(100.0, max(0.0, 100.0 * done / total)), 1)


def bar(fraction: float, width: int = DEFAULT_BAR_WIDTH) -> str:
    """`[####------]` with exactly `width` cells inside the brackets; full only at 100%."""
    width = max(1, width)
    if math.isnan(fraction):
        fraction = 0.0
    fraction = min(1.0, max(0.0, fraction))
    filled = width if fraction >= 1.0 else min(width - 1, math.floor(fraction * width))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class RateWindow:
    """Items per second over the last `window_s` seconds of (time, processed) samples.

    The oldest sample kept is the last one at or before the window's start, so the span
    measured is at least the window once enough history exists.
    """

    def __init__(self, window_s: float = DEFAULT_RATE_WINDOW_S) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, processed: int) -> None:
        if self._samples:
            last_t, last_n = self._samples[-1]
            if processed < last_n or now < last_t:  # a different task, or a clock jump
                self._samples.clear()
            elif now == last_t:
                self._samples[-1] = (now, processed)
                return
        self._samples.append((now, processed))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window_s:
            self._samples.popleft()

    def rate(self) -> float | None:
        """None until two samples span some time."""
        if len(self._samples) < 2:
            return None
        (t0, n0), (t1, n1) = self._samples[0], self._samples[-1]
        if t1 <= t0:
            return None
        return (n1 - n0) / (t1 - t0)


def eta_seconds(remaining: int, rate: float | None) -> float | None:
    """Seconds left at `rate`; 0 when nothing remains, None when the rate is unknown or 0."""
    if remaining <= 0:
        return 0.0
    if rate is None or rate <= 0:
        return None
    return remaining / rate


def format_duration(seconds: float | None) -> str:
    """`7s`, `1m05s`, `2h03m`, `3d04h`; `?` when unknown."""
    if seconds is None or math.isnan(seconds) or math.isinf(seconds):
        return "?"
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_rate(rate: float | None) -> str:
    """`-/s` when unknown, `12.5/s` below 100, `340/s`, `1.2k/s`."""
    if rate is None or math.isnan(rate):
        return "-/s"
    rate = max(0.0, rate)
    if rate < 100:
        return f"{rate:.1f}/s"
    if rate < 10_000:
        return f"{rate:,.0f}/s"
    return f"{rate / 1000:.1f}k/s"


def elapsed_seconds(snapshot: Snapshot) -> float | None:
    """How long a terminal task ran (started or created, to completed)."""
    start = snapshot.started_at or snapshot.created_at
    if start is None or snapshot.completed_at is None:
        return None
    return max(0.0, (snapshot.completed_at - start).total_seconds())


def _parts(snapshot: Snapshot, rate: float | None, width: int, *, compact: bool) -> list[str]:
    pct = percent(snapshot.done, snapshot.total, terminal=snapshot.terminal)
    status = snapshot.status
    if snapshot.cancel_requested and not snapshot.terminal:
        status = "cancelling"
    head = [
        f"task {snapshot.id} {status}",
        bar(pct / 100.0, width),
        f"{pct:5.1f}%",
        f"{snapshot.processed:,}/{snapshot.total:,}",
    ]
    counts = [f"ok {snapshot.success:,}", f"failed {snapshot.failed:,}"]
    if snapshot.skipped:
        counts.append(f"skipped {snapshot.skipped:,}")
    if snapshot.cancelled or not compact:
        counts.append(f"cancelled {snapshot.cancelled:,}")
    tail: list[str] = []
    if snapshot.terminal:
        elapsed = elapsed_seconds(snapshot)
        if elapsed is not None:
            tail.append(f"in {format_duration(elapsed)}")
            if elapsed > 0 and snapshot.processed:
                tail.append(f"avg {format_rate(snapshot.processed / elapsed)}")
    elif status == "scheduled":
        tail.append("waiting to start")
    else:
        tail.append(format_rate(rate))
        tail.append(f"ETA {format_duration(eta_seconds(snapshot.remaining, rate))}")
    # Compact: rate and ETA before the counts, so a cut line loses counts, not the ETA.
    return [*head, *tail, *counts] if compact else [*head, *counts, *tail]


def render_line(
    snapshot: Snapshot,
    *,
    rate: float | None = None,
    width: int = DEFAULT_BAR_WIDTH,
    columns: int | None = None,
) -> str:
    """The whole progress line; running tasks show rate and ETA, finished ones their duration.

    With `columns` (a terminal's width) a line that would not fit is made compact (single
    spaces, rate and ETA first, no zero `cancelled` count, a bar down to MIN_BAR_WIDTH) and
    then cut to fit.
    """
    line = "  ".join(_parts(snapshot, rate, width, compact=False))
    if columns is None or len(line) < columns:
        return line
    line = " ".join(_parts(snapshot, rate, width, compact=True))
    if len(line) >= columns:
        narrower = max(MIN_BAR_WIDTH, width - (len(line) - columns + 1))
        line = " ".join(_parts(snapshot, rate, narrower, compact=True))
    return fit(line, columns)


def fit(line: str, columns: int) -> str:
    """Cut a line to the terminal's width so a carriage-return redraw never wraps."""
    if columns <= 1 or len(line) < columns:
        return line
    return line[: columns - 2] + "…"
