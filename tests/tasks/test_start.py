"""The task service's start: workflow ids unique beyond one database, old ids still found, and
a start Temporal refuses leaves a failed row and a 503, never a row stuck `running`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

from api.app import create_app
from api.deps import Resources
from longtasks.db.engine import create_engine
from longtasks.db.models import LongRunningTask
from longtasks.db.repositories import audit
from longtasks.db.repositories.audit import Actor
from longtasks.domain import TaskType
from longtasks.tasks import NewTask, TaskNotStarted, launch, start_task
from tests.conftest import (
    Stack,
    _free_port,
    configure_sender,
    create_broadcast_task,
    fresh_database,
    get_task_row,
    israeli_numbers,
    serve_api,
    wait_for_status,
    wait_until,
)


async def no_domain_rows(conn: AsyncConnection, task: LongRunningTask) -> None:
    return None


async def first_task(engine: AsyncEngine, client: Client, queue: str) -> LongRunningTask:
    # Outside a request: the audit log names the test as the actor.
    with audit.acting_as(Actor.system(1, "test")):
        task, _ = await start_task(
            engine,
            client,
            NewTask(business_id=1, task_type=TaskType.broadcast, total_items=0),
            task_queue=queue,
            create_domain_rows=no_domain_rows,
            summary=lambda task, _: f"task {task.id}",
        )
    return task


async def test_two_fresh_databases_both_start_task_one_on_one_temporal(
    stack: Stack, postgres_url: str
) -> None:
    """A fresh (or restored) database gives out task 1 again while Temporal still knows the
    workflow ids of the last one: the id's unique part keeps them apart."""
    # No worker polls this queue: the workflows only have to be accepted.
    queue = f"ids-{uuid.uuid4().hex[:8]}"
    started: list[LongRunningTask] = []
    for _ in range(2):
        async with fresh_database(postgres_url) as url:
            engine = create_engine(url, pool_size=1)
            try:
                started.append(await first_task(engine, stack.client, queue))
            finally:
                await engine.dispose()
    ids = [t.workflow_id or "" for t in started]
    try:
        assert [t.id for t in started] == [1, 1]
        assert all(re.fullmatch(r"longtask-1-[0-9a-f]{12}", i) for i in ids), ids
        assert ids[0] != ids[1]
        for task, workflow_id in zip(started, ids, strict=True):
            assert task.status == "running"
            described = await stack.client.get_workflow_handle(workflow_id).describe()
            assert described.status == WorkflowExecutionStatus.RUNNING
    finally:
        for workflow_id in ids:
            await stack.client.get_workflow_handle(workflow_id).terminate("test over")


async def test_a_start_temporal_refuses_marks_the_task_failed(stack: Stack) -> None:
    """What every task met before ids had a unique part: a workflow id Temporal already has."""
    queue = f"refused-{uuid.uuid4().hex[:8]}"
    task = await first_task(stack.engine, stack.client, queue)
    try:
        assert task.workflow_id is not None
        with pytest.raises(TaskNotStarted) as refused:
            await launch(stack.engine, stack.client, task, task_queue=queue, summary="again")
        assert refused.value.task_id == task.id
        row = await get_task_row(stack.engine, task.id)
        assert row.status == "failed"
        assert row.error_message == (
            "could not start the workflow: a workflow with this task's id already exists"
        )
        # A retried caller (the Gmail Schedule's kick) may find its own start already made.
        await launch(
            stack.engine, stack.client, task, task_queue=queue, summary="again", retried=True
        )
    finally:
        await stack.client.get_workflow_handle(task.workflow_id or "").terminate("test over")


async def test_the_api_answers_503_and_the_row_says_failed_when_temporal_refuses(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    # A namespace Temporal does not have: every start is refused.
    client = await Client.connect(
        stack.client.service_client.config.target_host, namespace="no-such-namespace"
    )
    resources = Resources(settings=stack.settings, engine=stack.app_engine, temporal=client)
    port = _free_port()
    server, serving = await serve_api(create_app(stack.settings, resources), port)
    try:
        async with stack.http(business_id, "operator") as product:
            product.base_url = f"http://127.0.0.1:{port}"
            response = await product.post(
                "/api/broadcasts",
                json={"name": "x", "message": {"text": "hi"}, "recipients": ["052-3456789"]},
            )
            assert response.status_code == 503, response.text
            assert "could not be started" in response.json()["detail"]
            listed = (await product.get("/api/long_tasks")).json()["items"]
    finally:
        server.should_exit = True
        await serving
    [task] = listed
    assert task["status"] == "failed"
    assert task["error_message"].startswith("could not start the workflow:")


async def test_a_task_made_before_ids_had_a_unique_part_is_still_found(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """Its row keeps `longtask-{id}`; cancel signals that workflow, by the stored id."""
    business_id = await new_business()
    await configure_sender(stack, business_id, latency_ms=20)
    task_id = await create_broadcast_task(
        stack.engine, business_id, israeli_numbers(2000, start=300_000)
    )
    old_id = f"longtask-{task_id}"
    async with stack.engine.begin() as conn:
        await conn.execute(
            text("UPDATE long_running_tasks SET workflow_id = :w WHERE id = :t"),
            {"w": old_id, "t": task_id},
        )
    task = await get_task_row(stack.engine, task_id)
    await launch(stack.engine, stack.client, task, task_queue=stack.task_queue, summary="old")

    async with stack.http(business_id, "operator") as http:

        async def sending() -> bool:
            return (await get_task_row(stack.engine, task_id)).processed_items > 0

        await wait_until(sending, what="first sends")
        assert (await http.post(f"/api/long_tasks/{task_id}/cancel")).status_code == 202
        ended = await wait_for_status(http, task_id, {"cancelled", "completed", "failed"})
    assert (ended["status"], ended["workflow_id"]) == ("cancelled", old_id)
    # The workflow itself got the cancel (the service did not just close the row).
    handle = stack.client.get_workflow_handle(old_id)
    signals = [
        e.workflow_execution_signaled_event_attributes.signal_name
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert signals == ["cancel"]
