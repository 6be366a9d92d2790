"""What row-level security costs: the same work with the services connected as the
application's role (every statement under the forced policies, as in production) and as the
owner (a superuser here, which no policy binds), on one stack, at the same time or in turns.

- The broadcast path: a worker of each kind, both running, each sends a broadcast of the same
  size at the same moment; items per second from the POST to `completed`, the send phase's
  rate at the provider, and the CPU each side used (its worker, its Postgres backends). Both
  are reported because they see different costs: a handicap in one side's worker (`nice 5`)
  showed in its rate (ratios 0.76-0.81), the same handicap on its Postgres backends did not
  (0.95-1.08: the ledger's statements are off the send path), so what the policies add in
  Postgres shows in CPU an item, which the whole machine pays. The status webhooks go to one
  API (as Meta posts to one URL) and apply as the application's role for both sides.
- The list path: a second API process connected as the owner beside the stack's (the
  application's role); both answer the task list (`GET /api/long_tasks`) and a finished
  broadcast's ledger (`GET /api/long_tasks/{id}/items`) to the same clients, in turns, among
  other businesses' rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.bench.scenarios import Bench, numbers
from devtools.bench.stack import free_port
from devtools.dev.processes import wait_for_port

# Other businesses' finished tasks around the measured one's, so the policies have rows to
# leave out (a list scoped by business_id alone would skip them by index anyway).
OTHER_BUSINESSES = 20
TASKS_EACH = 500
# Recipients of the broadcast each new worker sends before its measured one.
WARM_UP = 1000
# One API's turn in the list path's alternation.
SLICE_S = 1.0


async def rls_cost(
    bench: Bench, *, recipients: int, rounds: int, latency_ms: float, seconds: float, clients: int
) -> dict[str, Any]:
    stack = bench.stack
    broadcast = await _broadcast_path(
        bench, recipients=recipients, rounds=rounds, latency_ms=latency_ms
    )
    lists = await _list_path(
        bench, broadcast.pop("finished"), seconds=seconds, clients=clients, rounds=rounds
    )
    stack.stop_workers()
    stack.start_worker()
    return {**broadcast, **lists}


async def _broadcast_path(
    bench: Bench, *, recipients: int, rounds: int, latency_ms: float
) -> dict[str, Any]:
    """Two workers at once, one connected as the application's role and one as the owner, each
    on a task queue of its own with an API that starts workflows there (a lane); each round
    both send a broadcast of the same size, for two new businesses, at the same moment. Rounds
    one after the other moved by +-30% here (the machine's speed drifts over tens of seconds:
    the same round's CPU seconds varied by 40%); side by side, both see the same machine. The
    roles swap lanes every round, so neither lane's own advantage (one API also takes the
    sandbox's status webhooks) counts for one role."""
    stack = bench.stack
    second_queue = f"{stack.env['TEMPORAL_TASK_QUEUE']}-second"
    port = free_port()
    # Both front doors connect as the application's role: only the workers differ.
    second_front = stack.spawn(
        "api-second-lane",
        [sys.executable, "-m", "cli", "api"],
        {"TEMPORAL_TASK_QUEUE": second_queue, "API_PORT": str(port)},
    )
    lanes = [
        (stack.env["TEMPORAL_TASK_QUEUE"], stack.api_url),
        (second_queue, f"http://127.0.0.1:{port}"),
    ]
    roles: dict[str, dict[str, str]] = {"rls": {}, "owner": {"DATABASE_URL": stack.database_url}}
    per_round: list[dict[str, float]] = []
    finished: tuple[int, int] | None = None
    try:
        wait_for_port("127.0.0.1", port, 60, second_front)
        for round_no in range(rounds):
            labels = list(roles) if round_no % 2 == 0 else list(reversed(roles))
            fronts: dict[str, str] = {}
            stack.stop_workers()
            workers: dict[str, psutil.Process] = {}
            for label, (queue, front) in zip(labels, lanes, strict=True):
                proc = stack.start_worker(
                    TEMPORAL_TASK_QUEUE=queue, PGAPPNAME=f"{APP_NAME}-{label}", **roles[label]
                )
                workers[label] = psutil.Process(proc.pid)
                fronts[label] = front
            businesses = {label: await bench.new_business() for label in labels}
            for label, business_id in businesses.items():
                await bench.configure_sender(business_id, latency_ms=latency_ms)
                # One of WARM_UP first: neither worker, nor its pool's connections (each a
                # Postgres backend loading the tables' policies on first use), is cold when
                # the measured pair starts; a long-running worker's are not.
                warm = numbers(WARM_UP, start=900_000)
                await _send(bench, fronts[label], business_id, warm)
            # Each side sends to its own numbers; the first lane's POST goes first.
            async with _cpu_meter(bench.engine, workers) as cpu:
                outcomes = await asyncio.gather(
                    *(
                        _send(
                            bench,
                            fronts[label],
                            businesses[label],
                            numbers(recipients, start=i * 1_000_000),
                        )
                        for i, label in enumerate(labels)
                    )
                )
            rates = {label: outcome[0] for label, outcome in zip(labels, outcomes, strict=True)}
            row: dict[str, float] = {}
            for label, business_id in businesses.items():
                row[f"{label}_end_to_end_items_per_s"] = round(rates[label], 1)
                row[f"{label}_send_items_per_s"] = round(await bench.send_rate(business_id), 1)
                for part in ("worker", "postgres"):
                    row[f"{label}_{part}_cpu_ms_per_item"] = round(
                        cpu[label][part] * 1000 / recipients, 3
                    )
            row["end_to_end_ratio"] = round(rates["rls"] / rates["owner"], 3)
            row["cpu_ratio"] = round(_cpu_per_item(row, "rls") / _cpu_per_item(row, "owner"), 3)
            per_round.append(row)
            finished = (businesses["rls"], outcomes[labels.index("rls")][1])
    finally:
        second_front.terminate()
        second_front.wait(timeout=20)
    assert finished is not None
    ratios = [r["end_to_end_ratio"] for r in per_round]

    def median(key: str) -> float:
        return float(statistics.median(r[key] for r in per_round))

    return {
        "recipients": recipients,
        "provider_latency_ms": latency_ms,
        "rounds": rounds,
        "broadcast_side_by_side": True,
        "broadcast_rls_items_per_s": median("rls_end_to_end_items_per_s"),
        "broadcast_owner_items_per_s": median("owner_end_to_end_items_per_s"),
        "broadcast_cost_pct": round((1 - statistics.median(ratios)) * 100, 1),
        # CPU of each side's worker and its Postgres backends over the measured pair: what
        # RLS adds to the machine, which the throughput ratio splits between both sides.
        "broadcast_rls_cpu_ms_per_item": median("rls_worker_cpu_ms_per_item")
        + median("rls_postgres_cpu_ms_per_item"),
        "broadcast_owner_cpu_ms_per_item": median("owner_worker_cpu_ms_per_item")
        + median("owner_postgres_cpu_ms_per_item"),
        "broadcast_rls_postgres_cpu_ms_per_item": median("rls_postgres_cpu_ms_per_item"),
        "broadcast_owner_postgres_cpu_ms_per_item": median("owner_postgres_cpu_ms_per_item"),
        "broadcast_cpu_cost_pct": round(
            (statistics.median(r["cpu_ratio"] for r in per_round) - 1) * 100, 1
        ),
        "broadcast_cpu_ratio_spread": [
            min(r["cpu_ratio"] for r in per_round),
            max(r["cpu_ratio"] for r in per_round),
        ],
        "broadcast_ratio_spread": [min(ratios), max(ratios)],
        "broadcast_per_round": per_round,
        "finished": finished,
    }


# Each side's worker names its connections, so its Postgres backends can be told apart.
APP_NAME = "longtasks-bench-worker"


def _cpu_per_item(row: dict[str, float], label: str) -> float:
    return row[f"{label}_worker_cpu_ms_per_item"] + row[f"{label}_postgres_cpu_ms_per_item"]


@contextlib.asynccontextmanager
async def _cpu_meter(
    engine: AsyncEngine, workers: dict[str, psutil.Process]
) -> AsyncIterator[dict[str, dict[str, float]]]:
    """CPU seconds each side used inside the block: its worker (with any children) and its
    Postgres backends (sampled every 0.2 s by application_name; a backend that exits between
    samples loses its last 0.2 s, alike for both sides)."""
    backends: dict[int, tuple[str, psutil.Process, float]] = {}  # pid -> side, process, at start
    last: dict[int, float] = {}

    def tree_cpu(proc: psutil.Process) -> float:
        total = 0.0
        for each in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = each.cpu_times()
                total += times.user + times.system
        return total

    async def sample(first: bool) -> None:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT pid, application_name FROM pg_stat_activity"
                        " WHERE application_name LIKE :prefix"
                    ),
                    {"prefix": f"{APP_NAME}-%"},
                )
            ).all()
        for pid, name in rows:
            if pid not in backends:
                with contextlib.suppress(psutil.Error):
                    proc = psutil.Process(pid)
                    # A backend first seen mid-run was (nearly) new: all its CPU is the run's.
                    start = tree_cpu(proc) if first else 0.0
                    backends[pid] = (name.removeprefix(f"{APP_NAME}-"), proc, start)
        for pid, (_side, proc, _start) in backends.items():
            with contextlib.suppress(psutil.Error):
                last[pid] = tree_cpu(proc)

    async def sampler() -> None:
        while True:
            await asyncio.sleep(0.2)
            await sample(first=False)

    worker_start = {side: tree_cpu(proc) for side, proc in workers.items()}
    await sample(first=True)
    task = asyncio.create_task(sampler())
    used: dict[str, dict[str, float]] = {side: {"worker": 0.0, "postgres": 0.0} for side in workers}
    try:
        yield used
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sample(first=False)
        for side, proc in workers.items():
            used[side]["worker"] = tree_cpu(proc) - worker_start[side]
        for pid, (side, _proc, start) in backends.items():
            used[side]["postgres"] += last.get(pid, start) - start


async def _send(
    bench: Bench, front: str, business_id: int, recipients: list[str]
) -> tuple[float, int]:
    """A broadcast through one lane's API, POST to `completed`: (items/s, task id)."""
    started = time.perf_counter()
    task_id = await bench.start_broadcast(business_id, recipients, api_url=front)
    task = await bench.wait_done(business_id, task_id)
    elapsed = time.perf_counter() - started
    assert task["status"] == "completed", task
    assert task["success_count"] == len(recipients), task
    return len(recipients) / elapsed, task_id


async def _list_path(
    bench: Bench, finished: tuple[int, int], *, seconds: float, clients: int, rounds: int
) -> dict[str, Any]:
    stack = bench.stack
    business_id, task_id = finished
    await _other_businesses(bench, business_id)
    port = free_port()
    owner_api = stack.spawn(
        "api-owner",
        [sys.executable, "-m", "cli", "api"],
        {"DATABASE_URL": stack.database_url, "API_PORT": str(port)},
    )
    try:
        wait_for_port("127.0.0.1", port, 60, owner_api)
        apis = {"rls": stack.api_url, "owner": f"http://127.0.0.1:{port}"}
        paths = {"list": "/api/long_tasks?limit=50", "items": f"/api/long_tasks/{task_id}/items"}
        results: dict[str, list[dict[str, float]]] = {path: [] for path in paths}
        # Short alternating slices, each pair compared on its own: whatever else the machine
        # does drifts over seconds, and a slice of one API right after one of the other sees
        # the same machine (whole-round comparisons moved by +-30% here).
        slices = max(1, round(seconds / SLICE_S))
        for round_no in range(rounds):
            for path_name, path in paths.items():
                for slice_no in range(slices):
                    row: dict[str, float] = {}
                    first_rls = (round_no + slice_no) % 2 == 0
                    for label in ["rls", "owner"] if first_rls else ["owner", "rls"]:
                        hammered = await bench.hammer(
                            apis[label] + path, business_id, clients, SLICE_S
                        )
                        assert hammered["errors"] == 0, (label, path, hammered)
                        row[f"{label}_rps"] = hammered["rps"]
                        row[f"{label}_p50_ms"] = hammered["p50_ms"]
                    row["ratio"] = round(row["rls_rps"] / row["owner_rps"], 3)
                    results[path_name].append(row)
    finally:
        owner_api.terminate()
        owner_api.wait(timeout=20)
    summary: dict[str, Any] = {"list_clients": clients, "list_seconds": seconds}
    for path_name, rows in results.items():
        ratios = [r["ratio"] for r in rows]
        summary[f"{path_name}_rls_rps"] = statistics.median(r["rls_rps"] for r in rows)
        summary[f"{path_name}_owner_rps"] = statistics.median(r["owner_rps"] for r in rows)
        summary[f"{path_name}_rls_p50_ms"] = statistics.median(r["rls_p50_ms"] for r in rows)
        summary[f"{path_name}_owner_p50_ms"] = statistics.median(r["owner_p50_ms"] for r in rows)
        summary[f"{path_name}_cost_pct"] = round((1 - statistics.median(ratios)) * 100, 1)
        summary[f"{path_name}_ratio_spread"] = [min(ratios), max(ratios)]
    return summary


async def _other_businesses(bench: Bench, measured: int) -> None:
    """Finished tasks of other businesses, and of the measured one, written as the owner."""
    others = [await bench.new_business() for _ in range(OTHER_BUSINESSES)]
    async with bench.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO long_running_tasks (business_id, task_type, status, total_items,"
                " processed_items, success_count, completed_at)"
                " SELECT b, 'broadcast', 'completed', 1, 1, 1, now()"
                " FROM unnest(CAST(:businesses AS bigint[])) AS b, generate_series(1, :n)"
            ),
            {"businesses": [*others, measured], "n": TASKS_EACH},
        )
        await conn.execute(text("ANALYZE long_running_tasks"))
