"""The worker process as `longtasks worker` runs it: its cleanup schedule and its metrics port."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.service import RPCError

from longtasks.settings import Settings
from longtasks.temporal.cleanup_schedule import cleanup_schedule_id, ensure_cleanup_schedule
from longtasks.temporal.schedule_list import format_rows, list_schedules, workflow_names
from task_types import BUILTIN
from tests.conftest import (
    Stack,
    _free_port,
    create_broadcast_task,
    israeli_numbers,
    settings_for_tests,
    start_direct,
    wait_until,
)
from worker import serve_worker


@contextlib.asynccontextmanager
async def worker_process(stack: Stack, **overrides: Any) -> AsyncIterator[Settings]:
    """`serve_worker` as the CLI runs it, on its own task queue, until the block ends."""
    settings = settings_for_tests(
        str(stack.settings.database_url),
        stack.sandbox_url,
        temporal_address=stack.client.service_client.config.target_host,
        temporal_task_queue=f"longtasks-proc-{uuid.uuid4().hex[:8]}",
        **overrides,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(serve_worker(settings, stop))
    try:
        yield settings
    finally:
        stop.set()
        await running


async def _schedule_exists(client: Client, schedule_id: str) -> bool:
    try:
        await client.get_schedule_handle(schedule_id).describe()
    except RPCError:
        return False
    return True


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


async def test_worker_creates_the_cleanup_schedule_and_serves_metrics(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    port = _free_port()
    async with worker_process(stack, worker_metrics_port=port) as settings:
        schedule_id = cleanup_schedule_id(settings)
        await wait_until(
            lambda: _schedule_exists(stack.client, schedule_id), what="the cleanup schedule"
        )
        description = await stack.client.get_schedule_handle(schedule_id).describe()
        # The server stores the cron spec ("17 3 * * *") as a calendar: daily at 03:17 UTC.
        calendar = description.schedule.spec.calendars[0]
        assert (calendar.hour[0].start, calendar.minute[0].start) == (3, 17)
        assert getattr(description.schedule.action, "workflow", None) == "cleanup"

        # Paused by ops in the UI: a worker (re)starting keeps it paused.
        await stack.client.get_schedule_handle(schedule_id).pause(note="paused by ops")
        await ensure_cleanup_schedule(stack.client, settings)
        description = await stack.client.get_schedule_handle(schedule_id).describe()
        assert description.schedule.state.paused
        assert description.schedule.state.note == "paused by ops"

        rows = await list_schedules(stack.client, workflow_names(BUILTIN.workflows()))
        ours = [r for r in rows if r.id == schedule_id]
        assert ours and ours[0].workflow == "cleanup" and ours[0].paused
        assert schedule_id in format_rows(rows)

        # A broadcast on this worker: items and provider calls show up on its metrics port.
        business_id = await new_business()
        task_id = await create_broadcast_task(stack.engine, business_id, israeli_numbers(5))
        handle = await start_direct(
            stack.client, stack.engine, settings.temporal_task_queue, business_id, task_id
        )
        await handle.result()

        text = await asyncio.to_thread(_scrape, port)
        assert "temporal_workflow_completed" in text or "temporal_request" in text
        assert "longtasks_items_processed_total" in text
        assert 'task_type="broadcast"' in text and 'outcome="succeeded"' in text
        assert "longtasks_provider_request_seconds_bucket" in text
        assert "longtasks_tasks_finished_total" in text
    await stack.client.get_schedule_handle(schedule_id).delete()


@pytest.mark.parametrize("port", [0])
async def test_metrics_port_zero_turns_the_endpoint_off(stack: Stack, port: int) -> None:
    async with worker_process(stack, worker_metrics_port=port) as settings:
        await wait_until(
            lambda: _schedule_exists(stack.client, cleanup_schedule_id(settings)),
            what="the cleanup schedule",
        )
    await stack.client.get_schedule_handle(cleanup_schedule_id(settings)).delete()
