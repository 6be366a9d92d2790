"""Every activity's name, with the type it takes and the type it returns: the one place both
sides read. An implementation registers under `@activity.defn(name=X.name)`; a workflow calls
`X` (`PagedTaskWorkflow.execute_short(X, arg)`, or `workflow.execute_activity(X.name, ...,
result_type=X.result)`).

The names never change: stored histories name them, and runs in flight must replay
(tests/workflows/test_replay.py). A new task type adds its own names here, or beside its
workflow when it lives outside the product (tests/task_types shows one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from longtasks.contracts.audiences import ImportFailed, ImportFinished
from longtasks.contracts.broadcasts import UnconfirmedCheck, UnconfirmedReview
from longtasks.contracts.ops import (
    CleanupBatch,
    CleanupBatchResult,
    NotifyPausedRequest,
    NotifyRequest,
    NotifyResult,
)
from longtasks.contracts.receipts import KickRequest, KickResult, ListRequest, ListResult, SyncStart
from longtasks.contracts.tasks import (
    CancelRequest,
    FinishRequest,
    PageRequest,
    PageResult,
    PauseState,
    StatusReasonRequest,
    TaskPlan,
)

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class ActivityName(Generic[ArgT, ResultT]):
    """An activity's registered name and its one argument's and its result's types."""

    name: str
    arg: type[ArgT]
    result: type[ResultT]

    def __str__(self) -> str:
        return self.name


NoResult = type(None)

# The task row, shared by every paged task (activities/tasks.py, activities/notify.py).
MARK_RUNNING = ActivityName("tasks.mark_running", int, bool)
REQUEST_CANCEL = ActivityName("tasks.request_cancel", CancelRequest, NoResult)
SET_STATUS_REASON = ActivityName("tasks.set_status_reason", StatusReasonRequest, NoResult)
FINISH = ActivityName("tasks.finish", FinishRequest, NoResult)
NOTIFY_FINISHED = ActivityName("tasks.notify_finished", NotifyRequest, NotifyResult)
# Pause, resume, approval (issue 14: activities/tasks.py, activities/notify.py).
MARK_PAUSED = ActivityName("tasks.mark_paused", int, PauseState)
MARK_RESUMED = ActivityName("tasks.mark_resumed", int, NoResult)
MARK_WAITING = ActivityName("tasks.mark_waiting", StatusReasonRequest, NoResult)
EXPIRE_APPROVAL = ActivityName("tasks.expire_approval", int, str)
NOTIFY_PAUSED = ActivityName("tasks.notify_paused", NotifyPausedRequest, NotifyResult)

# broadcast (activities/broadcast.py)
BROADCAST_BEGIN = ActivityName("broadcast.begin", int, TaskPlan)
BROADCAST_SEND_PAGE = ActivityName("broadcast.send_page", PageRequest, PageResult)
BROADCAST_RESOLVE_UNCONFIRMED = ActivityName(
    "broadcast.resolve_unconfirmed", UnconfirmedCheck, UnconfirmedReview
)

# receipt_delete (activities/receipts.py)
RECEIPT_DELETE_BEGIN = ActivityName("receipt_delete.begin", int, TaskPlan)
RECEIPT_DELETE_PAGE = ActivityName("receipt_delete.delete_page", PageRequest, PageResult)

# receipt_sync (activities/receipt_sync.py) and the Schedule's kick (activities/sync_kick.py)
RECEIPT_SYNC_START = ActivityName("receipt_sync.start", int, SyncStart)
RECEIPT_SYNC_LIST_PAGE = ActivityName("receipt_sync.list_page", ListRequest, ListResult)
RECEIPT_SYNC_BEGIN = ActivityName("receipt_sync.begin", int, TaskPlan)
RECEIPT_SYNC_FETCH_PAGE = ActivityName("receipt_sync.fetch_page", PageRequest, PageResult)
RECEIPT_SYNC_COMPLETE = ActivityName("receipt_sync.complete", int, NoResult)
RECEIPT_SYNC_START_SCHEDULED = ActivityName("receipt_sync.start_scheduled", KickRequest, KickResult)

# audience_import (activities/audience_import.py)
AUDIENCE_IMPORT_BEGIN = ActivityName("audience_import.begin", int, TaskPlan)
AUDIENCE_IMPORT_PAGE = ActivityName("audience_import.normalize_page", PageRequest, PageResult)
AUDIENCE_IMPORT_FINISH = ActivityName("audience_import.finish", int, ImportFinished)
AUDIENCE_IMPORT_FAIL = ActivityName("audience_import.fail", ImportFailed, NoResult)

# the daily cleanup (activities/cleanup.py)
CLEANUP_DELETE_BATCH = ActivityName("cleanup.delete_batch", CleanupBatch, CleanupBatchResult)


def all_names() -> list[ActivityName[Any, Any]]:
    """Every name above (a test checks that the built-in worker implements exactly these)."""
    return [value for value in globals().values() if isinstance(value, ActivityName)]
