"""A task as the CLI sees it: the fields of the API's JSON it shows, read leniently (a newer
server's extra fields and statuses pass through), and the status it shows for them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from longtasks.domain import TERMINAL_STATUSES, TaskStatus

CANCELLING = "cancelling"  # shown for a running task whose cancel was requested
PAUSING = "pausing"  # shown for a running task whose pause was requested
RESUMING = "resuming"  # shown by `resume` for a paused task until its run goes on


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
class DeliveryCounts:
    """A broadcast's items by delivery state (WhatsApp's status webhooks)."""

    accepted: int
    delivered: int
    read: int
    failed: int
    pending: int
    unconfirmed: int = 0
    resent: int = 0

    @classmethod
    def from_json(cls, data: Any) -> DeliveryCounts | None:
        if not isinstance(data, Mapping):
            return None
        return cls(
            accepted=_int(data, "accepted"),
            delivered=_int(data, "delivered"),
            read=_int(data, "read"),
            failed=_int(data, "failed"),
            pending=_int(data, "pending"),
            unconfirmed=_int(data, "unconfirmed"),
            resent=_int(data, "resent"),
        )

    @property
    def any_sent(self) -> bool:
        """Whether anything was sent (a broadcast rejected or cancelled before has nothing to
        say about delivery)."""
        return any((self.accepted, self.delivered, self.read, self.failed, self.unconfirmed))

    def text(self) -> str:
        parts = [
            f"{self.accepted:,} accepted",
            f"{self.delivered:,} delivered",
            f"{self.read:,} read",
            f"{self.failed:,} failed",
            f"{self.pending:,} pending",
        ]
        if self.unconfirmed:
            parts.append(f"{self.unconfirmed:,} unconfirmed")
        if self.resent:
            parts.append(f"{self.resent:,} re-sent")
        return ", ".join(parts)


@dataclass(frozen=True)
class Snapshot:
    """The fields of a task (the API's JSON) that the CLI shows."""

    id: int
    task_type: str
    status: str  # a TaskStatus value, or one a newer server added
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
    pause_requested: bool = False
    # Why it waits or paused (a quota, the circuit breaker), in the server's words.
    status_reason: str | None = None
    # The server's estimate (it knows the sender's pace and the daily caps); None: unknown.
    eta_seconds: float | None = None
    approval_expires_at: dt.datetime | None = None
    paused_by: str | None = None  # who paused it (a user, or `system` for the breaker)
    cancel_reason: str | None = None  # e.g. `rejected by ana: wrong list`
    start_at: dt.datetime | None = None  # a start the creator asked for, later than creation
    # Broadcasts: where their messages are (WhatsApp's statuses); None for other tasks.
    delivery: DeliveryCounts | None = None

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
            pause_requested=bool(data.get("pause_requested")),
            status_reason=str(reason) if (reason := data.get("status_reason")) else None,
            eta_seconds=float(eta)
            if isinstance(eta := data.get("eta_seconds"), int | float) and not isinstance(eta, bool)
            else None,
            approval_expires_at=parse_time(data.get("approval_expires_at")),
            paused_by=str(by) if (by := data.get("paused_by")) else None,
            cancel_reason=str(why) if (why := data.get("cancel_reason")) else None,
            start_at=parse_time(data.get("start_at")),
            delivery=DeliveryCounts.from_json(data.get("delivery")),
        )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def shown_status(self) -> str:
        if self.terminal:
            return self.status
        if self.cancel_requested:
            return CANCELLING
        if self.pause_requested and self.status != TaskStatus.paused:
            return PAUSING
        return self.status

    @property
    def done(self) -> int:
        """Items that need no more work: processed, plus the cancelled ones once terminal."""
        return self.processed + (self.cancelled if self.terminal else 0)

    @property
    def percent(self) -> float:
        """0..100, one decimal; an empty task is 0% while it runs and 100% once terminal."""
        if self.total <= 0:
            return 100.0 if self.terminal else 0.0
        return round(min(100.0, max(0.0, 100.0 * self.done / self.total)), 1)

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
            self.pause_requested,
            self.status_reason,
            self.delivery,
        )
