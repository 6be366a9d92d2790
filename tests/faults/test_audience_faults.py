"""An audience import survives killed workers: SIGKILL mid-import, twice, and every row is
imported once: each valid number a member once, each bad row one error, counters exact, no
staging left, and no normalizing process of a killed worker left running."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import psutil
import pytest
from sqlalchemy import text

from tests.audiences.helpers import csv_bytes, members, upload_ok, wait_audience
from tests.conftest import Stack, israeli_numbers
from tests.faults.conftest import (
    FaultReport,
    FaultRow,
    WorkerFactory,
    wait_for_processed,
    wait_terminal,
)
from tests.security.conftest import dedicated_api

pytestmark = pytest.mark.faults


async def _wait_gone(pids: list[int], timeout_s: float = 60) -> list[int]:
    """The pids still alive after the timeout (orphans of a killed worker)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
        if not alive or asyncio.get_running_loop().time() > deadline:
            return alive
        await asyncio.sleep(0.2)


async def test_sigkill_mid_import_imports_every_row_once(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    workers: WorkerFactory,
    worker_env: dict[str, str],
    fault_report: FaultReport,
) -> None:
    business_id = await new_business()
    numbers = israeli_numbers(20_000)
    rows = [[n, f"customer {i}"] for i, n in enumerate(numbers)]
    # Every 50th row repeats a number ~10,000 rows back (another page); every 97th is invalid.
    rows += [[numbers[i], "again"] for i in range(0, 20_000, 50)]
    rows += [[f"x{i}", "bad"] for i in range(0, 20_000, 97)]
    total = len(rows)
    duplicates = len(range(0, 20_000, 50))
    invalid = len(range(0, 20_000, 97))
    queue = worker_env["TEMPORAL_TASK_QUEUE"]
    env = {"PAGE_WINDOW": "4", "AUDIENCE_IMPORT_PROCESSES": "2"}
    async with (
        dedicated_api(stack, temporal_task_queue=queue, audience_import_page_size=250) as base,
        httpx.AsyncClient(
            base_url=base,
            headers={"Authorization": f"Bearer {stack.token(business_id)}"},
            timeout=60,
        ) as http,
    ):
        started = await upload_ok(http, csv_bytes(rows))
        audience_id, task_id = started["audience"]["id"], started["task"]["id"]
        restarts = 0
        orphans: list[int] = []
        for at in (2_000, 10_000):
            worker = workers(**env)
            await wait_for_processed(stack.engine, task_id, at, timeout_s=180)
            assert worker.proc is not None
            pool = [c.pid for c in psutil.Process(worker.proc.pid).children(recursive=True)]
            worker.kill()
            restarts += 1
            orphans += await _wait_gone(pool)
        workers(**env)
        task = await wait_terminal(stack.engine, task_id, timeout_s=300)
        audience = await wait_audience(http, audience_id, {"ready", "failed"})

    assert task.status == "completed", task
    assert (task.total_items, task.processed_items, task.cancelled_count) == (total, total, 0)
    assert (task.success_count, task.failed_count) == (total - invalid, invalid)
    assert task.skipped_count == duplicates
    assert audience["status"] == "ready", audience
    assert (audience["valid_count"], audience["duplicate_count"], audience["invalid_count"]) == (
        20_000,
        duplicates,
        invalid,
    )
    got = await members(stack.engine, audience_id)
    assert [m[0] for m in got] == list(range(1, 20_001))
    assert [m[1] for m in got] == list(range(2, 20_002))  # the first line of each number
    assert [m[3][0] for m in got] == [f"customer {i}" for i in range(20_000)]
    async with stack.engine.connect() as conn:
        counted = (
            await conn.execute(
                text(
                    "SELECT reason, count(*), count(DISTINCT line) FROM audience_errors"
                    " WHERE audience_id = :a GROUP BY reason ORDER BY reason"
                ),
                {"a": audience_id},
            )
        ).all()
        staged = await conn.execute(
            text("SELECT count(*) FROM audience_upload_chunks WHERE audience_id = :a"),
            {"a": audience_id},
        )
        assert staged.scalar() == 0
    assert [tuple(r) for r in counted] == [
        ("duplicate", duplicates, duplicates),
        ("invalid_phone", invalid, invalid),
    ]
    assert orphans == []
    fault_report.add(
        FaultRow(
            "audience import (CSV, 250-row pages, 2 normalizing processes), worker SIGKILL",
            "SIGKILL at 2,000 and 10,000 rows processed; the killed workers' normalizing"
            " processes exit with them",
            2,
            total,
            0,
            0,
            restarts,
            "ready, every row once, counters exact",
        )
    )
