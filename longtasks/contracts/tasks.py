"""Contracts shared by every task type: the paged-task workflow and the task-row activities."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from longtasks.domain import TaskStatus

# Signals every paged task workflow takes (names never change: histories carry them).
CANCEL_SIGNAL = "cancel"
# Ops: the provider quota changed (e.g. a higher WhatsApp tier); a waiting task tries again.
RECHECK_QUOTA_SIGNAL = "recheck_quota"
# A person paused or resumed the task (the REST API sets or clears the database flag first).
PAUSE_SIGNAL = "pause"
RESUME_SIGNAL = "resume"
# An admin approved a task that waits for approval (the decision is in the database first).
APPROVE_SIGNAL = "approve"
# Who paused a task that paused itself (`paused_by`), where a person's subject would be.
PAUSED_BY_SYSTEM = "system"

WORKFLOW_ID_PREFIX = "longtask-"
# `longtask-{task_id}-{12 hex}`, or `longtask-{task_id}` for tasks made before the unique part.
TASK_WORKFLOW_ID = re.compile(rf"^{re.escape(WORKFLOW_ID_PREFIX)}(\d+)(?:-[0-9a-f]{{12}})?$")


def new_workflow_id_suffix() -> str:
    """The part of a new task's workflow id that no other database gives out.

    Task ids restart at 1 in a fresh or restored database, and two environments may share a
    Temporal namespace, while Temporal keeps every workflow id it has seen for the namespace's
    retention: `longtask-42` alone would be refused as "already started". 48 random bits per
    task make a clash of the same task id across databases vanishingly unlikely (a random
    part per task, not per database: a restored backup repeats a database's ids too).
    """
    return f"-{uuid.uuid4().hex[:12]}"


def workflow_id_for(task_id: int, suffix: str) -> str:
    """A task's workflow id. Read it from the task's row instead where there is one: older
    tasks keep `longtask-{id}` there. Ops find a task's runs by `TaskId=42` in the Temporal UI."""
    return f"{WORKFLOW_ID_PREFIX}{task_id}{suffix}"


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
    pause_requested: bool = False

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
    # Over the business's approval threshold: epoch seconds (UTC) until which the run waits
    # for an admin's approval before anything else; unanswered by then the task expires.
    approval_deadline_epoch: float | None = None


@dataclass
class TaskOutcome:
    task_id: int
    status: TaskStatus
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
    # The deferral is the business's own daily send cap: the task shows `paused` meanwhile.
    deferred_by_cap: bool = False
    # Claimed items released unsent because the task was asked to pause mid-page.
    stopped_by_pause: bool = False
    # Items this call left unconfirmed: a request may have been accepted, no answer came.
    unconfirmed: int = 0


@dataclass
class CancelRequest:
    task_id: int
    reason: str


@dataclass
class FinishRequest:
    task_id: int
    status: TaskStatus
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


@dataclass
class PauseState:
    """What `tasks.mark_paused` found: whether the task is paused now (a resume may have come
    first), who paused it (`system`: it paused itself) and why, and how often it paused itself."""

    paused: bool
    by: str | None = None
    reason: str | None = None
    auto_pauses: int = 0


class ApprovalOutcome:
    """What `tasks.expire_approval` found once the approval deadline passed."""

    expired = "expired"
    approved = "approved"
    cancelled = "cancelled"
