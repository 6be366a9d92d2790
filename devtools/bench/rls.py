"""What row-level security costs: the same work with the services connected as the
application's role (every statement under the forced policies, as in production) and as the
owner (a superuser here, which no policy binds), in alternating rounds on one stack.

- The broadcast path: a worker of each kind in turn sends the same broadcast; items per second
  from the POST to `completed`, and the send phase's rate at the provider.
- The list path: a second API process connected as the owner beside the stack's (the
  application's role); both answer the task list (`GET /api/long_tasks`) and a finished
  broadcast's ledger (`GET /api/long_tasks/{id}/items`) to the same clients, in turns, among
  other businesses' rows.
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from sqlalchemy import text

from devtools.bench.scenarios import Bench, numbers
from devtools.bench.stack import free_port
from devtools.dev.processes import wait_for_port

# Other businesses' finished tasks around the measured one's, so the policies have rows to
# leave out (a list scoped by business_id alone would skip them by index anyway).
OTHER_BUSINESSES = 20
TASKS_EACH = 500
# One API's turn in the list path's alternation.
SLICE_S = 0.5


async def rls_cost(
    bench: Bench, *, recipients: int, rounds: int, latency_ms: float, seconds: float, clients: int
) -> dict[str, Any]:
    stack = bench.stack
    as_owner = {"DATABASE_URL": stack.database_url}
    broadcast_rounds: list[dict[str, float]] = []
    finished: tuple[int, int] | None = None
    for round_no in range(rounds):
        row: dict[str, float] = {}
        # Alternate which goes first: whatever else the machine does drifts both ways.
        order = [("rls", {}), ("owner", as_owner)]
        for label, env in order if round_no % 2 == 0 else reversed(order):
            stack.stop_workers()
            stack.start_worker(**env)
            business_id = await bench.new_business()
            await bench.configure_sender(business_id, latency_ms=latency_ms)
            # A small one first: the measured broadcast does not wait for the worker to start.
            warm = await bench.start_broadcast(business_id, numbers(10, start=900_000))
            await bench.wait_done(business_id, warm)
            started = time.perf_counter()
            task_id = await bench.start_broadcast(business_id, numbers(recipients))
            task = await bench.wait_done(business_id, task_id)
            elapsed = time.perf_counter() - started
            assert task["status"] == "completed", task
            assert task["success_count"] == recipients, task
            row[f"{label}_end_to_end_items_per_s"] = round(recipients / elapsed, 1)
            row[f"{label}_send_items_per_s"] = round(await bench.send_rate(business_id), 1)
            finished = (business_id, task_id)
        row["end_to_end_ratio"] = round(
            row["rls_end_to_end_items_per_s"] / row["owner_end_to_end_items_per_s"], 3
        )
        broadcast_rounds.append(row)
    stack.stop_workers()
    stack.start_worker()
    assert finished is not None
    lists = await _list_path(bench, finished, seconds=seconds, clients=clients, rounds=rounds)
    ratios = [r["end_to_end_ratio"] for r in broadcast_rounds]

    def median(key: str) -> float:
        return float(statistics.median(r[key] for r in broadcast_rounds))

    return {
        "recipients": recipients,
        "provider_latency_ms": latency_ms,
        "rounds": rounds,
        "broadcast_rls_items_per_s": median("rls_end_to_end_items_per_s"),
        "broadcast_owner_items_per_s": median("owner_end_to_end_items_per_s"),
        "broadcast_cost_pct": round((1 - statistics.median(ratios)) * 100, 1),
        "broadcast_ratio_spread": [min(ratios), max(ratios)],
        "broadcast_per_round": broadcast_rounds,
        **lists,
    }


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
