"""What a notification says: the task's snapshot, without personal data.

Two events: `task.finished` (it ended) and `task.paused` (it paused itself: the provider said
stop, or too many sends failed; a person has to resume it). Counts, ids, status and timestamps
only: no recipients, message text, or the user's cancel reason (free text). The error message
and the pause's reason are the system's own (e.g. "WhatsApp refused the token").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from longtasks.db.models import LongRunningTask

EVENT = "task.finished"
PAUSED_EVENT = "task.paused"
_FIELDS = (
    "id",
    "business_id",
    "task_type",
    "status",
    "total_items",
    "processed_items",
    "success_count",
    "failed_count",
    "skipped_count",
    "cancelled_count",
    "cancel_requested",
    "error_message",
    "workflow_id",
    "created_at",
    "started_at",
    "completed_at",
    "status_reason",
    "paused_by",
    "paused_at",
)


def task_snapshot(task: LongRunningTask) -> dict[str, Any]:
    snapshot: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(task, name)
        snapshot[name] = value.isoformat() if isinstance(value, dt.datetime) else value
    snapshot["progress_pct"] = task.progress_pct
    return snapshot


def delivery_id(task_id: int, channel: str) -> str:
    """The idempotency key of a notification: `{task_id}:{channel}`, the same on every retry."""
    return f"{task_id}:notify-{channel}"


def pause_channel(channel: str, pause: int) -> str:
    """The delivery record (and idempotency key part) of the task's `pause`th pause notice."""
    return f"{channel}:pause-{pause}"


def webhook_body(
    task: LongRunningTask, sent_at: dt.datetime, *, event: str = EVENT, channel: str = "webhook"
) -> dict[str, Any]:
    return {
        "event": event,
        "delivery_id": delivery_id(task.id, channel),
        # Signed with the rest of the body: receivers can refuse stale or replayed deliveries.
        "sent_at": sent_at.isoformat(),
        "task": task_snapshot(task),
    }


def email_subject(task: LongRunningTask) -> str:
    return f"longtasks: {task.task_type} task #{task.id} {task.status}"


def email_text(task: LongRunningTask) -> str:
    lines = [
        f"Task #{task.id} ({task.task_type}) of business {task.business_id} is {task.status}.",
        "",
        f"Items: {task.total_items:,}",
        f"Succeeded: {task.success_count:,}",
        f"Failed: {task.failed_count:,}",
        f"Cancelled: {task.cancelled_count:,}",
    ]
    if task.error_message:
        lines += ["", f"Error: {task.error_message}"]
    if task.completed_at is not None:
        lines += ["", f"Finished at {task.completed_at:%Y-%m-%d %H:%M:%S %Z}"]
    return "\n".join(lines) + "\n"


def paused_subject(task: LongRunningTask) -> str:
    return f"longtasks: {task.task_type} task #{task.id} paused itself"


def paused_text(task: LongRunningTask) -> str:
    lines = [
        f"Task #{task.id} ({task.task_type}) of business {task.business_id} paused itself and"
        " starts nothing more until someone resumes it.",
        "",
        f"Why: {task.status_reason or 'not recorded'}",
        "",
        f"Items: {task.total_items:,}",
        f"Succeeded so far: {task.success_count:,}",
        f"Failed so far: {task.failed_count:,}",
    ]
    return "\n".join(lines) + "\n"
