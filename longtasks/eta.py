"""When will a running task end: `eta_seconds`.

The rate is measured, not assumed: items settled between two marks the counter updates keep on
the task row (`db.repositories.tasks.RATE_WINDOW_S`, about the last 30 seconds). The remaining
items at that rate is the estimate, bounded below by what the limits allow, however fast the
task went so far:
- the sender's pace (messages/s across all workers): no faster than that;
- WhatsApp's daily tier (unique recipients per rolling 24 h): beyond its headroom, a day more
  per tier's worth, the first one starting when the oldest contact leaves the window;
- the business's daily send cap: beyond what is left today, the next UTC midnight and a day
  more per cap's worth.

No estimate (None) for a task that is not running (paused, waiting for approval, ended), that
is asked to pause or cancel, or whose rate is not measured yet, unless a quota it waits for
bounds it anyway.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from longtasks.db.models import LongRunningTask
from longtasks.domain import TaskStatus

# A rate over less than this is noise (the first flush, a burst).
MIN_MEASURED_S = 2.0
DAY_S = 86_400.0


@dataclass(frozen=True)
class SendLimits:
    """What bounds a business's sends right now (broadcasts)."""

    messages_per_s: float | None = None
    tier_limit: int | None = None
    tier_used: int = 0
    # When the oldest contact in the tier's window leaves it.
    tier_frees_at: dt.datetime | None = None
    daily_cap: int | None = None
    cap_used_today: int = 0


def measured_rate(task: LongRunningTask, now: dt.datetime) -> float | None:
    """Items per second over the recent window, or None while it cannot be told."""
    if task.rate_prev_at is not None and task.rate_prev_items is not None:
        since, base = task.rate_prev_at, task.rate_prev_items
    elif task.rate_mark_at is not None and task.rate_mark_items is not None:
        since, base = task.rate_mark_at, task.rate_mark_items
    else:
        return None
    elapsed = (now - since).total_seconds()
    done = task.processed_items - base
    if elapsed < MIN_MEASURED_S or done <= 0:
        return None
    return done / elapsed


def _next_utc_midnight(now: dt.datetime) -> dt.datetime:
    today = now.astimezone(dt.UTC).date()
    return dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)


def _quota_bound(
    remaining: int, left_now: int, per_day: int, first_frees_in_s: float
) -> float | None:
    """Seconds before `remaining` items fit a daily quota with `left_now` left."""
    beyond = remaining - left_now
    if beyond <= 0:
        return None
    if per_day <= 0:
        return math.inf
    days = math.ceil(beyond / per_day)
    return max(first_frees_in_s, 0.0) + (days - 1) * DAY_S


def lower_bounds(remaining: int, limits: SendLimits, now: dt.datetime) -> tuple[float, float]:
    """(what pacing allows, what the daily quotas allow) for `remaining` sends, in seconds."""
    pace = remaining / limits.messages_per_s if limits.messages_per_s else 0.0
    waits: list[float] = []
    if limits.tier_limit is not None:
        frees_in = (limits.tier_frees_at - now).total_seconds() if limits.tier_frees_at else DAY_S
        bound = _quota_bound(
            remaining, max(limits.tier_limit - limits.tier_used, 0), limits.tier_limit, frees_in
        )
        if bound is not None:
            waits.append(bound)
    if limits.daily_cap is not None:
        bound = _quota_bound(
            remaining,
            max(limits.daily_cap - limits.cap_used_today, 0),
            limits.daily_cap,
            (_next_utc_midnight(now) - now).total_seconds(),
        )
        if bound is not None:
            waits.append(bound)
    return pace, max(waits, default=0.0)


def estimate(task: LongRunningTask, limits: SendLimits | None, now: dt.datetime) -> int | None:
    """Seconds until the task ends, or None when there is no honest estimate."""
    if task.status != TaskStatus.running or task.pause_requested or task.cancel_requested:
        return None
    remaining = max(task.total_items - task.processed_items, 0)
    if remaining == 0:
        return 0
    rate = measured_rate(task, now)
    pace, quota_wait = lower_bounds(remaining, limits, now) if limits else (0.0, 0.0)
    if rate is None:
        if quota_wait <= 0:
            return None
        estimate_s = max(quota_wait, pace)
    else:
        estimate_s = max(remaining / rate, pace, quota_wait)
    if math.isinf(estimate_s):
        return None
    return math.ceil(estimate_s)
