"""`start_task`: a task's rows in one transaction, then its workflow, started with ids only."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from longtasks.db.models import LongRunningTask
from longtasks.db.repositories import audit, businesses, policies
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.audit import AuditAction
from longtasks.db.tenancy import acting_for
from longtasks.domain import Priority, TaskStatus
from longtasks.tasks.errors import TaskNotStarted
from longtasks.temporal.tasks import start_task_workflow

log = logging.getLogger("longtasks.tasks")

T = TypeVar("T")

DEFAULT_APPROVAL_TTL_S = 24 * 3600.0


@dataclass(frozen=True)
class NewTask:
    """What every task starts with; a type's own rows come from its `create_domain_rows`."""

    business_id: int
    task_type: str
    total_items: int
    priority: Priority = Priority.normal
    # Delayed start: the row is `scheduled` and the workflow sleeps until then.
    start_at: dt.datetime | None = None
    # Who asked for it (the caller's token subject), and the task it retries the failures of.
    created_by: str | None = None
    parent_task_id: int | None = None
    # What the business's approval threshold counts (a broadcast's valid recipients); None:
    # this type never waits for approval.
    approval_items: int | None = None


async def start_task(
    engine: AsyncEngine,
    client: Client,
    new: NewTask,
    *,
    task_queue: str,
    create_domain_rows: Callable[[AsyncConnection, LongRunningTask], Awaitable[T]],
    summary: Callable[[LongRunningTask, T], str],
    approval_ttl_s: float = DEFAULT_APPROVAL_TTL_S,
) -> tuple[LongRunningTask, T]:
    """Write the task row and the domain rows in one transaction, commit, start the workflow.

    The workflow is the one registered under the task's type name, on `task_queue`, with the
    task's stored workflow id; `summary` (shown in the Temporal UI) says what the task is in
    ids and counts, never personal data. Raises `TaskNotStarted` when Temporal refuses.

    Over the business's approval threshold (`new.approval_items`), the task is created
    `awaiting_approval` with a deadline `approval_ttl_s` from now; its workflow starts all the
    same and waits for the approval, a rejection or the deadline before anything else.

    The audit log records `task.started` by the caller's actor in the same transaction.
    It all acts for the task's business (db.tenancy), whoever calls.
    """
    with acting_for(new.business_id):
        task, domain = await _write(engine, new, create_domain_rows, approval_ttl_s)
        await launch(engine, client, task, task_queue=task_queue, summary=summary(task, domain))
    return task, domain


async def _write(
    engine: AsyncEngine,
    new: NewTask,
    create_domain_rows: Callable[[AsyncConnection, LongRunningTask], Awaitable[T]],
    approval_ttl_s: float,
) -> tuple[LongRunningTask, T]:
    async with engine.begin() as conn:
        await businesses.ensure_business(conn, new.business_id)
        needs_approval = new.approval_items is not None and (
            await policies.get_policy(conn, new.business_id)
        ).needs_approval(new.approval_items)
        task = await task_repo.create_task(
            conn,
            business_id=new.business_id,
            task_type=new.task_type,
            total_items=new.total_items,
            priority=new.priority,
            start_at=new.start_at,
            created_by=new.created_by,
            parent_task_id=new.parent_task_id,
            approval_ttl_s=approval_ttl_s if needs_approval else None,
        )
        domain = await create_domain_rows(conn, task)
        details: dict[str, object] = {
            "task_type": new.task_type,
            "total_items": new.total_items,
            "priority": new.priority,
        }
        if new.start_at is not None:
            details["start_at"] = new.start_at.isoformat()
        if new.parent_task_id is not None:
            details["retry_of"] = new.parent_task_id
        if task.status == "awaiting_approval":
            details["awaiting_approval"] = True
        await audit.record(conn, AuditAction.task_started, task_id=task.id, details=details)
        if new.parent_task_id is not None:
            await audit.record(
                conn,
                AuditAction.task_retried,
                task_id=new.parent_task_id,
                details={"retry_task_id": task.id, "items": new.total_items},
            )
    return task, domain


async def launch(
    engine: AsyncEngine,
    client: Client,
    task: LongRunningTask,
    *,
    task_queue: str,
    summary: str,
    retried: bool = False,
) -> None:
    """Start the workflow of a task whose rows are committed.

    `retried`: the caller is a retry of an attempt that may have started it already (the
    Gmail Schedule's kick), so an existing workflow is no refusal. Otherwise one is: the
    stored workflow id is this task's alone.
    """
    assert task.workflow_id is not None
    try:
        await start_task_workflow(
            client,
            workflow_id=task.workflow_id,
            workflow_name=task.task_type,
            task_queue=task_queue,
            task_id=task.id,
            business_id=task.business_id,
            task_type=task.task_type,
            summary=summary,
            priority=task.priority,
            start_at=task.start_at,
            approval_expires_at=task.approval_expires_at,
        )
    except WorkflowAlreadyStartedError:
        if retried:
            return
        await _refused(engine, task, "a workflow with this task's id already exists")
    except Exception as exc:
        await _refused(engine, task, str(exc))


async def _refused(engine: AsyncEngine, task: LongRunningTask, why: str) -> None:
    log.exception("starting the workflow of task %s failed: %s", task.id, why)
    async with engine.begin() as conn:
        await task_repo.finish(
            conn, task.id, TaskStatus.failed, error_message=f"could not start the workflow: {why}"
        )
    raise TaskNotStarted(task.id, f"the task could not be started (Temporal: {why}); retry later")
