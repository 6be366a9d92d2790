"""Contracts shared by every task type: the paged-task workflow and the task-row activities."""

from __future__ import annotations

from dataclasses import dataclass

WORKFLOW_ID_PREFIX = "longtask-"

# Signals every paged task workflow takes (names never change: histories carry them).
CANCEL_SIGNAL = "cancel"
# Ops: the provider quota changed (e.g. a higher WhatsApp tier); a waiting task tries again.
RECHECK_QUOTA_SIGNAL = "recheck_quota"


def workflow_id_for(task_id: int) -> str:
    """The one workflow id of a task: ops find `longtask-42` in the Temporal UI."""
    return f"{WORKFLOW_ID_PREFIX}{task_id}"


@dataclass
class LoopState:
    """Where a paged task stands; carried across continue-as-new.

    Pages are seq ranges: page n covers items n*page_size+1 .. (n+1)*page_size. Every page below
    `next_page` has settled when a run hands this state to the next run.
    """

    total_items: int
    page_size: int
    window: int = 4
    pages_per_run: int = 400
    heartbeat_timeout_s: float = 20.0
    next_page: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    runs: int = 1
    cancel_requested: bool = False
    cancel_source: str | None = None

    @property
    def total_pages(self) -> int:
        return -(-self.total_items // self.page_size) if self.page_size > 0 else 0


@dataclass
class ListingCursor:
    """Where a listing phase stands (work a task does before it knows its total, e.g. listing
    a mailbox); carried across continue-as-new when the listing alone makes a long history."""

    mode: str
    page: int
    page_token: str | None
    heartbeat_timeout_s: float


@dataclass
class TaskInput:
    """The one input of every task workflow: ids, and the loop state after continue-as-new."""

    task_id: int
    business_id: int
    # Delayed start: epoch seconds (UTC) before which no work happens.
    start_at_epoch: float | None = None
    state: LoopState | None = None
    # Set when a run continued as new in the middle of its listing phase.
    listing: ListingCursor | None = None


@dataclass
class TaskOutcome:
    task_id: int
    status: str
    succeeded: int
    failed: int
    skipped: int
    cancelled: int


@dataclass
class TaskPlan:
    """What the begin activity learned (the exact item count) and the worker's page tuning."""

    total_items: int
    page_size: int
    window: int = 4
    pages_per_run: int = 400
    heartbeat_timeout_s: float = 20.0


@dataclass
class PageRequest:
    task_id: int
    page: int
    after_seq: int
    up_to_seq: int


@dataclass
class PageResult:
    """Items this call moved to a final status (never items settled by an earlier attempt)."""

    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    # Claimed items released unsent because cancel was requested mid-page.
    released: int = 0
    stopped_by_cancel: bool = False
    # Items left unsent because a provider quota (WhatsApp's daily unique-recipient limit) is
    # used up: epoch seconds when budget frees up; the workflow waits, then re-runs the page.
    deferred_until: float | None = None
    deferred_reason: str | None = None


@dataclass
class CancelRequest:
    task_id: int
    reason: str


@dataclass
class FinishRequest:
    task_id: int
    status: str
    error_message: str | None = None


@dataclass
class StatusReasonRequest:
    task_id: int
    reason: str | None = None


@dataclass
class CancelSignal:
    """Signal payload: who asked (`api`, `temporal-ui`, `bulk-cancel`) and why."""

    reason: str = "cancel requested"
    source: str = "api"
