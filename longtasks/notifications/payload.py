"""What a notification says: the finished task's snapshot, without personal data.

Counts, ids, status and timestamps only: no recipients, message text, or the user's cancel
reason (free text). The error message is the system's own (e.g. "WhatsApp refused the token").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from longtasks.db.repositories.tasks import TaskRow

EVENT = "task.finished"
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
)


def task_snapshot(task: TaskRow) -> dict[str, Any]:
    snapshot: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(task, name)
        snapshot[name] = value.isoformat() if isinstance(value, dt.datetime) else value
    snapshot["progress_pct"] = task.progress_pct
    return snapshot


def delivery_id(task_id: int, channel: str) -> str:
    """The idempotency key of a notification: `{task_id}:{channel}`, the same on every retry."""
    return f"{task_id}:notify-{channel}"


def webhook_body(task: TaskRow, sent_at: dt.datetime) -> dict[str, Any]:
    return {
        "event": EVENT,
        "delivery_id": delivery_id(task.id, "webhook"),
        # Signed with the rest of the body: receivers can refuse stale or replayed deliveries.
        "sent_at": sent_at.isoformat(),
        "task": task_snapshot(task),
    }


def email_subject(task: TaskRow) -> str:
    return f"longtasks: {task.task_type} task #{task.id} {task.status}"


def email_text(task: TaskRow) -> str:
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
