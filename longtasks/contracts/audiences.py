"""What crosses Temporal for an audience import: the task id, counts and a reason. Never a
phone number, a name or any other cell of the uploaded list."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ImportFinished:
    """What the finishing step made of the normalized rows (all zero when an earlier attempt
    had already finished)."""

    members: int = 0
    duplicates: int = 0
    suppressed: int = 0
    invalid: int = 0


@dataclass
class ImportFailed:
    task_id: int
    reason: str
