"""A 5,000-recipient broadcast survives killed workers, restarts and a misbehaving provider
that behaves like the real WhatsApp Cloud API (no idempotency key, answers lost after the
message was accepted, status webhooks late, duplicated, reordered or never delivered): no
recipient gets a message twice unless the broadcast's policy says so, nothing is lost without
being reported, the counters are exact, and delivery counts equal the sandbox's statuses."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client

from devtools.dev.processes import temporal_dev_command, wait_for_port
from longtasks.db.models import LongRunningTask
from longtasks.settings import Settings
from longtasks.temporal.client import connect_address
from tests.conftest import (
    EMBEDDED_PGDATA,
    Stack,
    configure_sender,
    create_broadcast_task,
    get_task_row,
    israeli_numbers,
    ledger_counts,
    messages_sent,
    sender_report,
    start_direct,
    wait_until,
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
# The sandbox is the real Cloud API here: no idempotency key, status webhooks late, duplicated
# and reordered, a 5% share of answers lost after the message was accepted.
REAL_API = {
    "latency_ms": 20,
    "status_delay_ms": 100,
    "read_rate": 0.5,
    "async_failure_rate": 0.02,
    "lost_response_rate": 0.05,
}


@dataclass
class Observed:
    duplicates: int
    lost: int  # recipients neither reached nor reported failed
    never_sent_unconfirmed: int  # reported failed `unconfirmed`, and indeed never reached
    resent: int
    task: LongRunningTask


async def _observe(stack: Stack, business_id: int, task_id: int, *, webhooks: bool) -> Observed:
    """Wait for the end (and, with webhooks, for every status to be counted), then check the
    ledger against what the sandbox received."""
    task = await wait_terminal(stack.engine, task_id, timeout_s=300)
    unconfirmed = await _failed_unconfirmed_numbers(stack, task_id)
    # This broadcast's sender only: tests share the sandbox, and others send to some of the
    # same numbers (counted unfiltered, a send that never left once looked "reached").
    reached = [len(await messages_sent(stack, business_id, n)) for n in unconfirmed]
    never_sent = sum(1 for r in reached if r == 0)
    if webhooks:
        task = await _delivery_settled(stack, business_id, task_id, never_sent)
    report = await sender_report(stack, business_id)
    counts = await ledger_counts(stack.engine, task_id)
    duplicates = int(report["accepted"]) - int(report["unique_recipients"])
    lost = TOTAL - int(report["unique_recipients"]) - never_sent
    assert task.status == "completed", task
    assert task.processed_items == TOTAL, (counts, await _items_by_state(stack, task_id))
    assert (task.success_count + task.failed_count, task.cancelled_count) == (TOTAL, 0)
    assert set(counts) <= {"succeeded", "failed"}, counts
    assert counts.get("failed", 0) == len(unconfirmed), "every failure is an unconfirmed send"
    assert task.unconfirmed_count == 0
    assert lost == 0
    return Observed(duplicates, lost, never_sent, task.resent_count, task)


async def _delivery_settled(
    stack: Stack, business_id: int, task_id: int, never_sent: int
) -> LongRunningTask:
    """Delivery counts equal the statuses the sandbox delivered (each message once per status),
    plus, as failed, the sends counted failed `unconfirmed` that never reached it."""
    holder: dict[str, LongRunningTask] = {}

    async def agree() -> bool:
        async with httpx.AsyncClient(base_url=stack.sandbox_url) as http:
            pending = (await http.get("/sandbox/stats")).json()["whatsapp"]["webhooks"]["pending"]
        sandbox = (await sender_report(stack, business_id))["statuses"]
        task = holder["task"] = await get_task_row(stack.engine, task_id)
        return pending == 0 and (
            task.delivery_read,
            task.delivery_delivered + task.delivery_read,
            task.delivery_accepted + task.delivery_delivered + task.delivery_read,
            task.delivery_failed - never_sent,
        ) == (sandbox["read"], sandbox["delivered"], sandbox["sent"], sandbox["failed"])

    try:
        await wait_until(agree, timeout_s=120, what="delivery counts to equal sandbox statuses")
    except AssertionError:
        task = holder["task"]
        report = await sender_report(stack, business_id)
        raise AssertionError(
            f"delivery {task.delivery_accepted}/{task.delivery_delivered}/"
            f"{task.delivery_read}/{task.delivery_failed} (failed sends {task.failed_count})"
            f" vs the sandbox's {report['statuses']}; accepted {report['accepted']} for"
            f" {report['unique_recipients']} recipients; sent more than once:"
            f" {await _sent_twice(stack, business_id, task_id)}"
        ) from None
    return holder["task"]


async def _items_by_state(stack: Stack, task_id: int) -> list[tuple[object, ...]]:
    """(status, delivery, dispatched, resends, count) of the task's items: what an assertion
    on the counters shows when they disagree with the ledger."""
    async with stack.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT status, delivery, dispatched_at IS NOT NULL, resends, count(*)"
                " FROM task_items WHERE task_id = :t GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
            ),
            {"t": task_id},
        )
        return [tuple(r) for r in rows]


async def _sent_twice(stack: Stack, business_id: int, task_id: int) -> list[object]:
    """The ledger rows of recipients the sandbox got more than one message for, each with
    the callback data of those messages: what a failed count shows to find how it happened."""
    async with stack.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT label, item_key, status, attempts, resends, dispatched_at,"
                    " dispatched_by, provider_ref, error_code, updated_at"
                    " FROM task_items WHERE task_id = :t ORDER BY item_key"
                ),
                {"t": task_id},
            )
        ).all()
    found: list[object] = []
    for row in rows:
        messages = await messages_sent(stack, business_id, str(row[0]))
        if len(messages) > 1:
            found.append((tuple(row), [m.get("biz_opaque_callback_data") for m in messages]))
    return found


async def _failed_unconfirmed_numbers(stack: Stack, task_id: int) -> list[str]:
    async with stack.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT label FROM task_items WHERE task_id = :t AND status = 'failed'"
                " AND error_code = 'unconfirmed'"
            ),
            {"t": task_id},
        )
        return [str(r[0]).lstrip("+") for r in rows]


async def _new_broadcast(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    offset: int,
    *,
    policy: str = "at_most_once",
    **sandbox: object,
) -> tuple[int, int]:
    business_id = await new_business()
    await configure_sender(stack, business_id, **{"latency_ms": 20, **sandbox})
    task_id = await create_broadcast_task(
        stack.engine, business_id, israeli_numbers(TOTAL, start=offset)
    )
    async with stack.engine.begin() as conn:
        await conn.execute(
            text("UPDATE broadcasts SET unconfirmed_policy = :p WHERE task_id = :t"),
            {"p": policy, "t": task_id},
        )
    return business_id, task_id


async def _kill_at(
    stack: Stack, workers: WorkerFactory, task_id: int, points: tuple[int, ...], **env: str
) -> int:
    """A worker for each point, SIGKILLed once that many items settled; then one that stays."""
    for at in points:
        worker = workers(**env)
        await wait_for_processed(stack.engine, task_id, at)
        worker.kill()
    workers(**env)
    return len(points)


@pytest.mark.parametrize("policy", ["at_most_once", "at_least_once"])
async def test_sigkill_with_lost_answers_and_webhooks_flowing_sends_nothing_twice(
    policy: str,
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    workers: WorkerFactory,
    worker_env: dict[str, str],
    fault_report: FaultReport,
) -> None:
    offset = 200_000 if policy == "at_most_once" else 300_000
    business_id, task_id = await _new_broadcast(
        stack, new_business, offset, policy=policy, **REAL_API
    )
    await start_direct(
        stack.client, stack.engine, worker_env["TEMPORAL_TASK_QUEUE"], business_id, task_id
    )
    lost_before = stack.sandbox.whatsapp.stats.lost_responses
    # 1. At the first sends, 2. mid-page, 3. between pages, 4. near a continue-as-new.
    restarts = await _kill_at(stack, workers, task_id, (1, 1_250, 2_500, 4_000))
    seen = await _observe(stack, business_id, task_id, webhooks=True)
    lost_answers = stack.sandbox.whatsapp.stats.lost_responses - lost_before
    assert seen.duplicates == 0
    if policy == "at_least_once":
        # Re-sent only what the proven pipeline never spoke for: never a second message.
        assert seen.never_sent_unconfirmed == 0
    fault_report.add(
        FaultRow(
            f"broadcast, real WhatsApp API, worker SIGKILL, webhooks flowing ({policy})",
            "SIGKILL at first send, 1,250, 2,500, 4,000; no idempotency key;"
            f" {lost_answers} answers lost after acceptance (5%); statuses late, duplicated,"
            " reordered",
            4,
            TOTAL,
            seen.duplicates,
            seen.lost,
            restarts,
            "completed, counters exact, delivery counts = the sandbox's statuses;"
            f" unconfirmed sends settled by webhook; {seen.resent} re-sent,"
            f" {seen.never_sent_unconfirmed} marked but never sent reported `unconfirmed`,"
            f" {seen.task.failed_count - seen.never_sent_unconfirmed} reported `unconfirmed`"
            " that had reached the recipient (once; their statuses came after the grace)",
        )
    )


@pytest.mark.parametrize("policy", ["at_most_once", "at_least_once"])
async def test_sigkill_with_all_webhooks_dropped_follows_the_policy(
    policy: str,
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    workers: WorkerFactory,
    worker_env: dict[str, str],
    fault_report: FaultReport,
) -> None:
    offset = 400_000 if policy == "at_most_once" else 500_000
    business_id, task_id = await _new_broadcast(
        stack,
        new_business,
        offset,
        policy=policy,
        **{**REAL_API, "webhook_drop_rate": 1.0},
    )
    await start_direct(
        stack.client, stack.engine, worker_env["TEMPORAL_TASK_QUEUE"], business_id, task_id
    )
    lost_before = stack.sandbox.whatsapp.stats.lost_responses
    # No status ever comes: the policy decides after the longest wait (seconds here).
    restarts = await _kill_at(
        stack, workers, task_id, (1_500, 3_500), WHATSAPP_UNCONFIRMED_MAX_WAIT_S="3"
    )
    seen = await _observe(stack, business_id, task_id, webhooks=False)
    lost_answers = stack.sandbox.whatsapp.stats.lost_responses - lost_before
    unconfirmed = seen.task.failed_count
    if policy == "at_most_once":
        assert seen.duplicates == 0
        assert unconfirmed >= lost_answers > 0
        outcome = (
            f"completed; {unconfirmed} unconfirmed sends reported failed `unconfirmed`"
            f" ({unconfirmed - seen.never_sent_unconfirmed} reached the recipient, never twice)"
        )
    else:
        assert unconfirmed == 0
        assert seen.resent >= lost_answers > 0
        assert seen.duplicates <= seen.resent
        outcome = (
            f"completed; {seen.resent} unconfirmed sends re-sent, of which {seen.duplicates}"
            " had reached the recipient (duplicates, as at_least_once accepts)"
        )
    fault_report.add(
        FaultRow(
            f"broadcast, real WhatsApp API, all webhooks dropped ({policy})",
            f"SIGKILL at 1,500 and 3,500; {lost_answers} answers lost after acceptance (5%);"
            " no status webhook ever delivered",
            2,
            TOTAL,
            seen.duplicates,
            seen.lost,
            restarts,
            outcome,
        )
    )


async def _assert_exactly_once(stack: Stack, business_id: int, task_id: int) -> tuple[int, int]:
    """(duplicates, lost) after asserting the task completed with every recipient once."""
    seen = await _observe(stack, business_id, task_id, webhooks=True)
    assert seen.task.success_count == TOTAL
    assert seen.duplicates == 0
    return seen.duplicates, seen.lost


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
    worker = workers()
    await wait_for_processed(stack.engine, task_id, 1_500)
    # Off the event loop: the sandbox answering the worker's last sends runs on it.
    assert await asyncio.to_thread(worker.terminate) == 0
    # Everything the stopped worker started was settled before it exited.
    assert {"sending", "unconfirmed"}.isdisjoint(await ledger_counts(stack.engine, task_id))
    workers()
    duplicates, lost = await _assert_exactly_once(stack, business_id, task_id)
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
    fault_report.add(
        FaultRow(
            "broadcast, provider faults",
            "10% 500 (Graph error: not taken), 5% 429, 1% timeouts after acceptance",
            1,
            TOTAL,
            duplicates,
            lost,
            0,
            "all sent once; timed-out sends settled by their status webhooks",
        )
    )
