"""Run every benchmark scenario against the real stack and write bench/results/latest.json
and latest.md. The full run goes to a million: a 1,000,000-row CSV upload and import,
broadcasts to audiences of 10k, 100k and 1M, a delete of 1,000,000 receipts, a sync of a
100,000-message mailbox (about 40 minutes on 2 cores). `BENCH_QUICK=1` stops at 100k (about
10 minutes). `BENCH_ONLY=audience_intake,scale` runs just those scenarios and prints them
without touching the committed results, or keeps them as results/NAME.{json,md} with
`BENCH_RESULTS=NAME`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from devtools.bench.audiences import AudienceBench
from devtools.bench.report import markdown
from devtools.bench.rls import rls_cost
from devtools.bench.stack import start_stack
from longtasks.db.engine import create_engine

RESULTS = Path(__file__).resolve().parent / "results"


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    return (
        f"{platform.machine()}, {psutil.cpu_count()} cores,"
        f" {psutil.virtual_memory().total / 2**30:.0f} GiB, Python {platform.python_version()}"
    )


async def run(quick: bool, only: set[str]) -> dict[str, Any]:
    concurrency = 64
    mailbox = 2000 if quick else 100_000
    million = 100_000 if quick else 1_000_000
    gmail_quota = 1500.0
    stack = await start_stack(
        SEND_CONCURRENCY=str(concurrency),
        BROADCAST_PAGE_SIZE="500",
        PAGE_WINDOW="4",
        WORKER_METRICS_PORT="0",
        SANDBOX_GMAIL_MAILBOX_SIZE=str(mailbox),
        SANDBOX_GMAIL_QUOTA_UNITS_PER_S=str(gmail_quota),
        GMAIL_QUOTA_UNITS_PER_S=str(gmail_quota),
    )
    engine = create_engine(stack.database_url, pool_size=5)
    results: dict[str, Any] = {
        "commit": commit(),
        "quick": quick,
        "machine": machine(),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(),
        # What else the machine was doing: the figures are only as quiet as it was.
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    # Who else was on the machine, in the runner's words (BENCH_NOTE), and the 1-minute load
    # average sampled through the run: a rate is only as quiet as the machine was.
    if note := os.environ.get("BENCH_NOTE"):
        results["note"] = note
    load: list[float] = []

    async def sample_load() -> None:
        while True:
            load.append(os.getloadavg()[0])
            await asyncio.sleep(5)

    sampler = asyncio.create_task(sample_load())
    # Under uvicorn's 5 s keep-alive, so a pooled connection is never one the API just closed.
    connector = aiohttp.TCPConnector(limit=400, keepalive_timeout=3)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            bench = AudienceBench(stack, engine, session, concurrency)
            stack.start_worker()
            await asyncio.sleep(3)

            async def scenario(name: str, coro: Any) -> None:
                if only and name not in only:
                    coro.close()
                    return
                started = time.perf_counter()
                print(f"[bench] {name}...", flush=True)
                results[name] = await coro
                print(
                    f"[bench] {name}: {json.dumps(results[name])}"
                    f" ({time.perf_counter() - started:.0f}s)",
                    flush=True,
                )

            await scenario(
                "broadcast",
                bench.broadcast(
                    recipients=3000 if quick else 10_000,
                    seed_sample=200 if quick else 500,
                    latency_ms=20,
                ),
            )
            await scenario("cancel", bench.cancel(runs=5, recipients=5000, latency_ms=20))
            await scenario(
                "progress_lag",
                bench.progress_lag(recipients=3000 if quick else 10_000, latency_ms=20),
            )
            # A customer list of a million rows (100k quick): upload, import, bare COPY; then
            # broadcasts to audiences of growing size, the largest that very list.
            await scenario("audience_intake", bench.intake(million))
            sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
            await scenario("scale", bench.scale(sizes, latency_ms=20))
            await scenario("statements", bench.statements(10_000))
            await scenario("reclaim", bench.reclaim(10_000 if quick else 100_000))
            await scenario(
                "api",
                bench.api_load(
                    clients=50, seconds=5 if quick else 10, recipients=20_000, latency_ms=20
                ),
            )
            await scenario(
                "rate_limit",
                bench.rate_limit(limit=80, recipients=600 if quick else 1600, workers=2),
            )
            await scenario(
                "pause", bench.pause(runs=3 if quick else 5, recipients=5000, latency_ms=20)
            )
            await scenario("eta", bench.eta(recipients=3000 if quick else 6000, messages_per_s=100))
            await scenario(
                "webhook_ingest",
                bench.webhook_ingest(items=5000 if quick else 20_000, batch=1000),
            )
            await scenario("receipt_delete", bench.receipt_delete(million))
            await scenario("receipt_sync", bench.receipt_sync(mailbox, gmail_quota))
            # Last: it restarts the worker as the owner and back.
            await scenario(
                "rls_cost",
                rls_cost(
                    bench,
                    recipients=3000 if quick else 10_000,
                    rounds=7,
                    latency_ms=0,
                    seconds=3 if quick else 5,
                    clients=20,
                ),
            )
    finally:
        sampler.cancel()
        await engine.dispose()
        stack.close()
    if load:
        results["load_average_during"] = {
            "mean": round(sum(load) / len(load), 2),
            "max": round(max(load), 2),
            "samples": len(load),
        }
    return results


def main() -> int:
    quick = os.environ.get("BENCH_QUICK") == "1"
    only = {name for name in os.environ.get("BENCH_ONLY", "").split(",") if name}
    # Where to keep the figures: `latest` for a whole run; a partial run (BENCH_ONLY) only
    # prints, unless it is named (BENCH_RESULTS=million keeps results/million.{json,md}).
    name = os.environ.get("BENCH_RESULTS") or (None if only else "latest")
    results = asyncio.run(run(quick, only))
    results["scenarios_run"] = sorted(only) if only else "all"
    print(markdown(results))
    if name is None:
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
