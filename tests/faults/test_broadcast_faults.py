"""A 5,000-recipient broadcast survives killed workers, restarts and a misbehaving provider:
the sandbox accepts every recipient exactly once, the ledger holds one outcome per recipient,
and the counters are exact."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from devtools.dev.processes import temporal_dev_command, wait_for_port
from longtasks.settings import Settings
from longtasks.temporal.client import connect_address
from tests.conftest import (
    EMBEDDED_PGDATA,
    Stack,
    configure_sender,
    create_broadcast_task,
    israeli_numbers,
    ledger_counts,
    sender_report,
    start_direct,
)
from tests.faults.conftest import (
    FaultReport,
    FaultRow,
    WorkerFactory,
    wait_for_processed,
    wait_terminal,
)

pytestmark = pytest.mark.faults
TOTAL = 5000


async def _assert_exactly_once(stack: Stack, business_id: int, task_id: int) -> tuple[int, int]:
    """(duplicates, lost) after asserting the task completed with every recipient once."""
    task = await wait_terminal(stack.engine, task_id)
    report = await sender_report(stack, business_id)
    ledger = await ledger_counts(stack.engine, task_id)
    duplicates = int(report["accepted"]) - int(report["unique_recipients"])
    lost = TOTAL - int(report["unique_recipients"])
    assert task.status == "completed", task
    assert (task.success_count, task.failed_count, task.cancelled_count) == (TOTAL, 0, 0)
    assert task.processed_items == TOTAL
    assert ledger == {"succeeded": TOTAL}
    assert report["unique_recipients"] == TOTAL
    assert report["max_per_recipient"] == 1
    assert duplicates == 0
    return duplicates, lost


async def _new_broadcast(
    stack: Stack, new_business: Callable[[], Awaitable[int]], offset: int, **sandbox: object
) -> tuple[int, int]:
    business_id = await new_business()
    await configure_sender(stack, business_id, latency_ms=20, **sandbox)
    task_id = await create_broadcast_task(
        stack.engine, business_id, israeli_numbers(TOTAL, start=offset)
    )
    return business_id, task_id


async def test_sigkill_at_several_points_loses_and_doubles_nothing(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    workers: WorkerFactory,
    worker_env: dict[str, str],
    fault_report: FaultReport,
) -> None:
    business_id, task_id = await _new_broadcast(stack, new_business, 200_000)
    queue = worker_env["TEMPORAL_TASK_QUEUE"]
    await start_direct(stack.client, stack.engine, queue, business_id, task_id)
    replayed_before = stack.sandbox.whatsapp.stats.replayed

    # 1. Before the first send: the worker dies while claiming its first pages.
    worker = workers()
    await wait_for_processed(stack.engine, task_id, 1, timeout_s=60)
    worker.kill()
    restarts = 1
    # 2. Mid-page, 3. between pages, 4. around a continue-as-new (every 1,000 items here).
    for at in (1_250, 2_500, 4_000):
        worker = workers()
        await wait_for_processed(stack.engine, task_id, at)
        worker.kill()
        restarts += 1
    workers()
    duplicates, lost = await _assert_exactly_once(stack, business_id, task_id)
    replayed = stack.sandbox.whatsapp.stats.replayed - replayed_before
    fault_report.add(
        FaultRow(
            "broadcast, worker SIGKILL",
            "SIGKILL at first send, 1,250, 2,500, 4,000 (near a"
            f" continue-as-new); {replayed} unconfirmed sends re-sent with their idempotency key",
            4,
            TOTAL,
            duplicates,
            lost,
            restarts,
            "completed, counters exact",
        )
    )


async def test_sigterm_mid_page_is_a_graceful_shutdown(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    workers: WorkerFactory,
    worker_env: dict[str, str],
    fault_report: FaultReport,
) -> None:
    business_id, task_id = await _new_broadcast(stack, new_business, 210_000)
    await start_direct(
        stack.client, stack.engine, worker_env["TEMPORAL_TASK_QUEUE"], business_id, task_id
    )
    replayed_before = stack.sandbox.whatsapp.stats.replayed
    worker = workers()
    await wait_for_processed(stack.engine, task_id, 1_500)
    # Off the event loop: the sandbox answering the worker's last sends runs on it.
    assert await asyncio.to_thread(worker.terminate) == 0
    # Everything the stopped worker started was settled before it exited.
    assert "sending" not in await ledger_counts(stack.engine, task_id)
    workers()
    duplicates, lost = await _assert_exactly_once(stack, business_id, task_id)
    assert stack.sandbox.whatsapp.stats.replayed == replayed_before, "nothing needed re-sending"
    fault_report.add(
        FaultRow(
            "broadcast, worker SIGTERM",
            "SIGTERM mid-page",
            1,
            TOTAL,
            duplicates,
            lost,
            1,
            "in-flight pages settled before exit",
        )
    )


@pytest.mark.parametrize("count", [2, 3])
async def test_several_workers_share_the_work_without_duplicates(
    count: int,
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    workers: WorkerFactory,
    worker_env: dict[str, str],
    fault_report: FaultReport,
) -> None:
    business_id, task_id = await _new_broadcast(stack, new_business, 220_000 + count * 10_000)
    for _ in range(count):
        workers()
    await asyncio.sleep(2.0)  # let every worker start polling before work appears
    handle = await start_direct(
        stack.client, stack.engine, worker_env["TEMPORAL_TASK_QUEUE"], business_id, task_id
    )
    await handle.result()
    duplicates, lost = await _assert_exactly_once(stack, business_id, task_id)
    identities = await _activity_worker_identities(stack.client, handle.id)
    assert len(identities) >= 2, f"work went to {identities}"
    fault_report.add(
        FaultRow(
            f"broadcast, {count} workers on one queue",
            "concurrent workers",
            1,
            TOTAL,
            duplicates,
            lost,
            0,
            f"pages ran on {len(identities)} workers",
        )
    )


async def _activity_worker_identities(client: Client, workflow_id: str) -> set[str]:
    identities: set[str] = set()
    async for execution in client.list_workflows(f'WorkflowId="{workflow_id}"'):
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        async for event in handle.fetch_history_events():
            if event.HasField("activity_task_started_event_attributes"):
                identities.add(event.activity_task_started_event_attributes.identity)
    return identities


async def test_temporal_server_restart_mid_broadcast(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    workers: WorkerFactory,
    worker_env: dict[str, str],
    tmp_path: Path,
    fault_report: FaultReport,
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(
        temporal_address=f"127.0.0.1:{port}",
        data_dir=tmp_path,
        temporal_ui_port=port + 1 if port < 65000 else port - 1,
    )
    command = temporal_dev_command(settings, ["--headless"])

    def start_server() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", port, 60, proc)
        return proc

    server = start_server()
    try:
        client = await connect_address(f"127.0.0.1:{port}")
        business_id, task_id = await _new_broadcast(stack, new_business, 260_000)
        workers(TEMPORAL_ADDRESS=f"127.0.0.1:{port}")
        await start_direct(
            client, stack.engine, worker_env["TEMPORAL_TASK_QUEUE"], business_id, task_id
        )
        await wait_for_processed(stack.engine, task_id, 1_500)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        await asyncio.sleep(1.0)
        server = start_server()  # same database file: the run continues where it was
        duplicates, lost = await _assert_exactly_once(stack, business_id, task_id)
    finally:
        server.kill()
        server.wait()
    fault_report.add(
        FaultRow(
            "broadcast, Temporal server restart",
            "dev server stopped and started on its SQLite file mid-run",
            1,
            TOTAL,
            duplicates,
            lost,
            1,
            "completed, counters exact",
        )
    )


async def test_postgres_restart_mid_broadcast(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    workers: WorkerFactory,
    worker_env: dict[str, str],
    fault_report: FaultReport,
) -> None:
    if not EMBEDDED_PGDATA:
        pytest.skip("DATABASE_URL points at a Postgres this test cannot restart")
    import pgserver

    pgdata = str(EMBEDDED_PGDATA[0])
    business_id, task_id = await _new_broadcast(stack, new_business, 270_000)
    workers()
    await start_direct(
        stack.client, stack.engine, worker_env["TEMPORAL_TASK_QUEUE"], business_id, task_id
    )
    await wait_for_processed(stack.engine, task_id, 1_500)
    await asyncio.to_thread(
        pgserver.pg_ctl,  # type: ignore[attr-defined]
        ["-w", "stop", "-m", "fast"],
        pgdata=pgdata,
        user="pgserver",
    )
    statuses: list[int] = []
    try:
        async with stack.http(business_id, "viewer") as http:
            for _ in range(10):
                response = await http.get(f"/api/long_tasks/{task_id}")
                statuses.append(response.status_code)
                if response.status_code == 503:
                    assert "database" in response.json()["detail"]
                await asyncio.sleep(0.2)
    finally:
        await asyncio.to_thread(
            pgserver.pg_ctl,  # type: ignore[attr-defined]
            ["-w", "restart"],
            pgdata=pgdata,
            user="pgserver",
        )
    assert set(statuses) == {503}, statuses
    async with stack.http(business_id, "viewer") as http:
        for _ in range(50):
            with_db = await http.get(f"/api/long_tasks/{task_id}")
            if with_db.status_code == 200:
                break
            await asyncio.sleep(0.2)
        assert with_db.status_code == 200, "the API recovers by itself"
    duplicates, lost = await _assert_exactly_once(stack, business_id, task_id)
    fault_report.add(
        FaultRow(
            "broadcast, Postgres restart",
            "Postgres stopped for ~2 s mid-run; API answered 503 (never 500) meanwhile",
            1,
            TOTAL,
            duplicates,
            lost,
            1,
            "completed, API recovered",
        )
    )


async def test_misbehaving_provider_every_item_ends_sent_or_failed_once(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    workers: WorkerFactory,
    worker_env: dict[str, str],
    fault_report: FaultReport,
) -> None:
    business_id, task_id = await _new_broadcast(
        stack,
        new_business,
        280_000,
        failure_rate=0.10,
        throttle_rate=0.05,
        timeout_rate=0.01,
        hang_s=2.0,
    )
    workers(WHATSAPP_REQUEST_TIMEOUT_S="1")
    await start_direct(
        stack.client, stack.engine, worker_env["TEMPORAL_TASK_QUEUE"], business_id, task_id
    )
    duplicates, lost = await _assert_exactly_once(stack, business_id, task_id)
    async with httpx.AsyncClient(base_url=stack.sandbox_url) as http:
        stats = (await http.get("/sandbox/stats")).json()["whatsapp"]
    fault_report.add(
        FaultRow(
            "broadcast, provider faults",
            "10% 5xx, 5% 429, 1% timeouts after delivery",
            1,
            TOTAL,
            duplicates,
            lost,
            0,
            f"all sent; {stats['replayed']} replays answered by key",
        )
    )
