"""Starting and signalling task workflows by their stored workflow ids (the task row's
`workflow_id`: `longtask-{id}` for tasks made before ids carried a unique part, see
`longtasks.contracts.tasks.new_workflow_id_suffix`)."""

from __future__ import annotations

import datetime as dt

from temporalio.client import Client, WorkflowHandle
from temporalio.common import Priority as TemporalPriority
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)

from longtasks.contracts.tasks import (
    APPROVE_SIGNAL,
    CANCEL_SIGNAL,
    PAUSE_SIGNAL,
    RECHECK_QUOTA_SIGNAL,
    RESUME_SIGNAL,
    CancelSignal,
    TaskInput,
)
from longtasks.domain import Priority, TaskStatus
from longtasks.temporal import search_attributes as sa

# Temporal priority keys: smaller runs sooner; the server's default range is 1..5.
PRIORITY_KEYS = {Priority.high: 1, Priority.normal: 3, Priority.low: 5}


async def start_task_workflow(
    client: Client,
    *,
    workflow_id: str,
    workflow_name: str,
    task_queue: str,
    task_id: int,
    business_id: int,
    task_type: str,
    summary: str,
    priority: str = "normal",
    start_at: dt.datetime | None = None,
    approval_expires_at: dt.datetime | None = None,
) -> WorkflowHandle[object, object]:
    if approval_expires_at is not None:
        status = TaskStatus.awaiting_approval
    else:
        status = TaskStatus.scheduled if start_at else TaskStatus.running
    return await client.start_workflow(
        workflow_name,
        TaskInput(
            task_id=task_id,
            business_id=business_id,
            start_at_epoch=start_at.timestamp() if start_at is not None else None,
            approval_deadline_epoch=(
                approval_expires_at.timestamp() if approval_expires_at is not None else None
            ),
        ),
        id=workflow_id,
        task_queue=task_queue,
        # A task id is used once: a second start of the same task must fail, not run it again.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.BUSINESS_ID, business_id),
                SearchAttributePair(sa.TASK_ID, task_id),
                SearchAttributePair(sa.TASK_TYPE, task_type),
                SearchAttributePair(sa.TASK_STATUS, status),
            ]
        ),
        static_summary=summary,
        # The business id as fairness key: one tenant's huge task cannot starve another's.
        priority=TemporalPriority(
            priority_key=PRIORITY_KEYS[Priority(priority)], fairness_key=str(business_id)
        ),
    )


async def signal_cancel(client: Client, workflow_id: str, signal: CancelSignal) -> None:
    handle = client.get_workflow_handle(workflow_id)
    await handle.signal(CANCEL_SIGNAL, signal)


async def signal_recheck_quota(client: Client, workflow_id: str) -> None:
    """A quota changed (the daily cap raised): a task waiting for it looks again now."""
    await client.get_workflow_handle(workflow_id).signal(RECHECK_QUOTA_SIGNAL)


async def signal_control(client: Client, workflow_id: str, signal: str) -> None:
    """`pause`, `resume`, `approve` or `recheck_quota` (no argument: the database holds who
    and why)."""
    assert signal in (PAUSE_SIGNAL, RESUME_SIGNAL, APPROVE_SIGNAL, RECHECK_QUOTA_SIGNAL)
    await client.get_workflow_handle(workflow_id).signal(signal)
