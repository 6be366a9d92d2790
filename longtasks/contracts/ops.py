"""Contracts of the ops workflows and activities: the cleanup, task-finished notifications."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CleanupInput:
    """What the daily schedule passes: how old a terminal task must be, and the batch size."""

    retention_days: int = 30
    batch_size: int = 1000
    # Carried across continue-as-new.
    deleted_so_far: int = 0


@dataclass
class CleanupBatch:
    # Epoch seconds (UTC): tasks that ended before this go. Computed once per run by the
    # workflow (workflow.now()), so every batch of a run uses the same cutoff.
    cutoff_epoch: float
    batch_size: int


@dataclass
class CleanupBatchResult:
    deleted: int


@dataclass
class CleanupOutcome:
    deleted: int
    batches: int


@dataclass
class NotifyRequest:
    task_id: int


@dataclass
class NotifyPausedRequest:
    """Tell the business a task paused itself; `pause` numbers the pause (its deliveries)."""

    task_id: int
    pause: int


@dataclass
class NotifyResult:
    delivered: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
