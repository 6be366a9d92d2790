"""Starting and signalling task workflows: the one place that knows workflow ids and names."""

from __future__ import annotations

import datetime as dt

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    Priority,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)

from longtasks.contracts.tasks import CANCEL_SIGNAL, CancelSignal, TaskInput, workflow_id_for
from longtasks.temporal import search_attributes as sa

# Temporal priority keys: smaller runs sooner; the server's default range is 1..5.
PRIORITY_KEYS = {"high": 1, "normal": 3, "low": 5}


async def start_task_workflow(
    client: Client,
    *,
    workflow_name: str,
    task_queue: str,
    task_id: int,
    business_id: int,
    task_type: str,
    summary: str,
    priority: str = "normal",
    start_at: dt.datetime | None = None,
) -> WorkflowHandle[object, object]:
    return await client.start_workflow(
        workflow_name,
        TaskInput(
            task_id=task_id,
            business_id=business_id,
            start_at_epoch=start_at.timestamp() if start_at is not None else None,
        ),
        id=workflow_id_for(task_id),
        task_queue=task_queue,
        # A task id is used once: a second start of the same task must fail, not run it again.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.BUSINESS_ID, business_id),
                SearchAttributePair(sa.TASK_ID, task_id),
                SearchAttributePair(sa.TASK_TYPE, task_type),
                SearchAttributePair(sa.TASK_STATUS, "scheduled" if start_at else "running"),
            ]
        ),
        static_summary=summary,
        # The business id as fairness key: one tenant's huge task cannot starve another's.
        priority=Priority(priority_key=PRIORITY_KEYS[priority], fairness_key=str(business_id)),
    )


async def signal_cancel(client: Client, task_id: int, signal: CancelSignal) -> None:
    handle = client.get_workflow_handle(workflow_id_for(task_id))
    await handle.signal(CANCEL_SIGNAL, signal)
