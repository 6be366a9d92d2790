"""Benchmark scenarios. Each measures longtasks and its baselines in the same run."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
import statistics
import time
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from devtools.bench.stack import BenchStack, PeakRss
from longtasks.auth.tokens import dev_token
from longtasks.db.repositories.businesses import ensure_business
from longtasks.domain import Role
from longtasks.providers.whatsapp import TextMessage, WhatsAppCloudClient, WhatsAppRetryable
from longtasks.settings import Settings

_business_ids = itertools.count(1)


def numbers(count: int, start: int = 0) -> list[str]:
    """Distinct valid Israeli mobiles, none ending in 0000 (the sandbox's undeliverable)."""
    values = (v for v in itertools.count(3000001 + start) if v % 10000 != 0)
    return [f"+97252{v:07d}" for v in itertools.islice(values, count)]


class Bench:
    def __init__(
        self,
        stack: BenchStack,
        engine: AsyncEngine,
        session: aiohttp.ClientSession,
        concurrency: int,
    ) -> None:
        self.stack = stack
        self.engine = engine
        self.session = session
        self.concurrency = concurrency
        self.settings = Settings()

    async def new_business(self, *, messages_per_s: float | None = None) -> int:
        business_id = next(_business_ids)
        async with self.engine.begin() as conn:
            await ensure_business(conn, business_id, whatsapp_phone_number_id=f"pn-{business_id}")
            if messages_per_s is not None:
                await conn.execute(
                    text("UPDATE businesses SET whatsapp_messages_per_s = :r WHERE id = :id"),
                    {"r": messages_per_s, "id": business_id},
                )
        return business_id

    def headers(self, business_id: int, role: Role = Role.admin) -> dict[str, str]:
        token = dev_token(
            self.settings, business_id=business_id, role=role, subject=f"bench-{role.value}"
        )
        return {"Authorization": f"Bearer {token}"}

    async def sandbox(self, path: str, body: dict[str, Any] | None = None) -> Any:
        method = "POST" if body is not None else "GET"
        async with self.session.request(
            method, self.stack.sandbox_url + path, json=body
        ) as response:
            return await response.json()

    async def configure_sender(self, business_id: int, **settings: Any) -> None:
        await self.sandbox("/sandbox/config", {"sender": f"pn-{business_id}", "whatsapp": settings})

    async def sender(self, business_id: int, times: bool = False) -> dict[str, Any]:
        suffix = "?times=1" if times else ""
        result: dict[str, Any] = await self.sandbox(
            f"/sandbox/whatsapp/senders/pn-{business_id}{suffix}"
        )
        return result

    async def start_broadcast(
        self, business_id: int, recipients: list[str], *, api_url: str | None = None
    ) -> int:
        """POST the broadcast to the stack's API, or to another (`api_url`) of the same stack."""
        async with self.session.post(
            (api_url or self.stack.api_url) + "/api/broadcasts",
            headers=self.headers(business_id),
            json={
                "name": "bench",
                "message": {"text": "Benchmark message"},
                "recipients": recipients,
            },
        ) as response:
            body = await response.json()
            assert response.status == 202, body
            return int(body["task"]["id"])

    async def task(self, business_id: int, task_id: int) -> dict[str, Any]:
        async with self.session.get(
            f"{self.stack.api_url}/api/long_tasks/{task_id}", headers=self.headers(business_id)
        ) as response:
            result: dict[str, Any] = await response.json()
            return result

    async def wait_done(
        self, business_id: int, task_id: int, poll_s: float = 0.05
    ) -> dict[str, Any]:
        while True:
            task = await self.task(business_id, task_id)
            if task["status"] in ("completed", "cancelled", "failed"):
                return task
            await asyncio.sleep(poll_s)

    # -- scenarios -----------------------------------------------------------------------------

    async def bare_loop(self, business_id: int, recipients: list[str]) -> float:
        """The limit: the same sends, same client, same concurrency; no DB, no Temporal."""
        client = WhatsAppCloudClient(
            self.session, base_url=self.stack.sandbox_url, api_version="v21.0", access_token="bench"
        )
        semaphore = asyncio.Semaphore(self.concurrency)

        async def send(i: int, to: str) -> None:
            async with semaphore:
                while True:
                    try:
                        await client.send(
                            sender_id=f"pn-{business_id}",
                            to=to,
                            message=TextMessage("Benchmark message"),
                            callback_data=f"bare:{business_id}:{i}",
                        )
                        return
                    except WhatsAppRetryable:
                        await asyncio.sleep(0.05)

        await asyncio.gather(*(send(i, to) for i, to in enumerate(recipients)))
        return await self.send_rate(business_id)

    async def send_rate(self, business_id: int) -> float:
        """Items/s the provider received, first accepted send to last: the same yardstick for
        longtasks and its baselines, whatever happens before the first send."""
        report = await self.sender(business_id)
        span = report["last_accept_at"] - report["first_accept_at"]
        return (report["accepted"] - 1) / span if span > 0 else 0.0

    async def seed_loop(self, business_id: int, recipients: list[str]) -> float:
        """A faithful model of the replaced LongTaskManager: per recipient, read the cancel
        flag, send, update the progress row (one commit each), in one thread, in order."""
        client = WhatsAppCloudClient(
            self.session, base_url=self.stack.sandbox_url, api_version="v21.0", access_token="bench"
        )
        async with self.engine.begin() as conn:
            task_id = (
                await conn.execute(
                    text(
                        "INSERT INTO long_running_tasks (business_id, task_type, total_items)"
                        " VALUES (:b, 'broadcast', :n) RETURNING id"
                    ),
                    {"b": business_id, "n": len(recipients)},
                )
            ).scalar()
        success = failed = 0
        for i, to in enumerate(recipients):
            async with self.engine.connect() as conn:
                cancel = (
                    await conn.execute(
                        text("SELECT cancel_requested FROM long_running_tasks WHERE id = :t"),
                        {"t": task_id},
                    )
                ).scalar()
            if cancel:
                break
            try:
                await client.send(
                    sender_id=f"pn-{business_id}",
                    to=to,
                    message=TextMessage("Benchmark message"),
                    callback_data=f"seed:{task_id}:{i}",
                )
                success += 1
            except Exception:
                failed += 1
            async with self.engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE long_running_tasks SET processed_items = :p, success_count = :s,"
                        " failed_count = :f, updated_at = now() WHERE id = :t"
                    ),
                    {"p": success + failed, "s": success, "f": failed, "t": task_id},
                )
        return await self.send_rate(business_id)

    async def longtasks_broadcast(
        self, business_id: int, recipients: list[str]
    ) -> tuple[float, float, dict[str, Any]]:
        """(send-phase items/s, first to last provider accept, as for the baselines;
        end-to-end items/s from the POST to `completed`; the final task)."""
        started = time.perf_counter()
        task_id = await self.start_broadcast(business_id, recipients)
        task = await self.wait_done(business_id, task_id)
        elapsed = time.perf_counter() - started
        assert task["status"] == "completed", task
        assert task["success_count"] == len(recipients), task
        return await self.send_rate(business_id), len(recipients) / elapsed, task

    async def broadcast(
        self, recipients: int, seed_sample: int, latency_ms: float, rounds: int = 3
    ) -> dict[str, Any]:
        """longtasks beside the bare loop and the seed's, in alternating rounds (bare,
        longtasks, seed, then again): on a shared 2-core machine a single pair moves by 20%
        with whatever else runs, so the ratio is the median of the rounds, with its spread."""
        per_round = []
        for _ in range(rounds):
            lt_b, bare_b, seed_b = [await self.new_business() for _ in range(3)]
            for business_id in (lt_b, bare_b, seed_b):
                await self.configure_sender(business_id, latency_ms=latency_ms)
            bare = await self.bare_loop(bare_b, numbers(recipients))
            lt, lt_end_to_end, _ = await self.longtasks_broadcast(lt_b, numbers(recipients))
            seed = await self.seed_loop(seed_b, numbers(seed_sample))
            per_round.append(
                {
                    "bare_items_per_s": round(bare, 1),
                    "longtasks_items_per_s": round(lt, 1),
                    "longtasks_end_to_end_items_per_s": round(lt_end_to_end, 1),
                    "seed_items_per_s": round(seed, 1),
                    "ratio_to_bare": round(lt / bare, 3),
                }
            )

        def median(key: str) -> float:
            return float(statistics.median(r[key] for r in per_round))

        ratios = [r["ratio_to_bare"] for r in per_round]
        lt_median = median("longtasks_items_per_s")
        return {
            "recipients": recipients,
            "provider_latency_ms": latency_ms,
            "concurrency": self.concurrency,
            "rounds": rounds,
            "longtasks_items_per_s": lt_median,
            "longtasks_end_to_end_items_per_s": median("longtasks_end_to_end_items_per_s"),
            "bare_items_per_s": median("bare_items_per_s"),
            "seed_items_per_s": median("seed_items_per_s"),
            "seed_sample_recipients": seed_sample,
            "ratio_to_bare": round(statistics.median(ratios), 3),
            "ratio_to_bare_spread": [min(ratios), max(ratios)],
            "ratio_to_seed": round(lt_median / median("seed_items_per_s"), 1),
            "per_round": per_round,
        }

    async def cancel(self, runs: int, recipients: int, latency_ms: float) -> dict[str, Any]:
        """Cancel request -> the last send the provider receives."""
        latencies: list[float] = []
        for _ in range(runs):
            business_id = await self.new_business()
            await self.configure_sender(business_id, latency_ms=latency_ms)
            task_id = await self.start_broadcast(business_id, numbers(recipients))
            while (await self.task(business_id, task_id))["processed_items"] < 300:
                await asyncio.sleep(0.02)
            requested = time.time()
            async with self.session.post(
                f"{self.stack.api_url}/api/long_tasks/{task_id}/cancel",
                headers=self.headers(business_id),
            ) as response:
                assert response.status == 202
            task = await self.wait_done(business_id, task_id)
            assert task["status"] == "cancelled", task
            await asyncio.sleep(0.5)
            last = (await self.sender(business_id))["last_accept_at"]
            latencies.append(max(0.0, last - requested))
        return {
            "runs": runs,
            "p50_s": round(statistics.median(latencies), 3),
            "p95_s": round(_pct(latencies, 95), 3),
            "max_s": round(max(latencies), 3),
        }

    async def progress_lag(self, recipients: int, latency_ms: float) -> dict[str, Any]:
        """Provider has send #k -> REST shows processed >= k, sampled over a whole run."""
        business_id = await self.new_business()
        await self.configure_sender(business_id, latency_ms=latency_ms)
        task_id = await self.start_broadcast(business_id, numbers(recipients))
        seen: list[tuple[float, int]] = []
        while True:
            task = await self.task(business_id, task_id)
            seen.append((time.time(), task["processed_items"]))
            if task["status"] in ("completed", "cancelled", "failed"):
                break
            await asyncio.sleep(0.02)
        accept_times = sorted((await self.sender(business_id, times=True))["accept_times"])
        lags = []
        for k in range(1, len(accept_times) + 1, max(1, len(accept_times) // 200)):
            shown = next((t for t, p in seen if p >= k), None)
            if shown is not None:
                lags.append(max(0.0, shown - accept_times[k - 1]))
        return {
            "recipients": recipients,
            "samples": len(lags),
            "p50_s": round(statistics.median(lags), 3),
            "p95_s": round(_pct(lags, 95), 3),
            "max_s": round(max(lags), 3),
        }

    async def pause(self, runs: int, recipients: int, latency_ms: float) -> dict[str, Any]:
        """Pause request -> the last send the provider receives; resume request -> the first
        send after it; and that the resumed run sends every message exactly once."""
        stops: list[float] = []
        restarts: list[float] = []
        duplicates = 0
        for _ in range(runs):
            business_id = await self.new_business()
            await self.configure_sender(business_id, latency_ms=latency_ms)
            task_id = await self.start_broadcast(business_id, numbers(recipients))
            while (await self.task(business_id, task_id))["processed_items"] < 300:
                await asyncio.sleep(0.02)
            requested = time.time()
            await self.control(business_id, task_id, "pause")
            while (await self.task(business_id, task_id))["status"] != "paused":
                await asyncio.sleep(0.02)
            await asyncio.sleep(1.0)
            last = (await self.sender(business_id))["last_accept_at"]
            stops.append(max(0.0, last - requested))
            resumed = time.time()
            await self.control(business_id, task_id, "resume")
            task = await self.wait_done(business_id, task_id)
            assert task["status"] == "completed", task
            report = await self.sender(business_id, times=True)
            restarts.append(min(t for t in report["accept_times"] if t > resumed) - resumed)
            duplicates += report["accepted"] - report["unique_recipients"]
        return {
            "runs": runs,
            "recipients": recipients,
            "stop_p50_s": round(statistics.median(stops), 3),
            "stop_p95_s": round(_pct(stops, 95), 3),
            "restart_p50_s": round(statistics.median(restarts), 3),
            "restart_p95_s": round(_pct(restarts, 95), 3),
            "duplicates": duplicates,
        }

    async def control(self, business_id: int, task_id: int, verb: str) -> None:
        async with self.session.post(
            f"{self.stack.api_url}/api/long_tasks/{task_id}/{verb}",
            headers=self.headers(business_id),
        ) as response:
            assert response.status == 202, await response.text()

    async def eta(self, recipients: int, messages_per_s: float) -> dict[str, Any]:
        """`eta_seconds` at 10%, 30% and 60% done against the time it really took from there,
        for a broadcast paced at `messages_per_s` (the sender's rate limit)."""
        business_id = await self.new_business(messages_per_s=messages_per_s)
        await self.configure_sender(business_id, latency_ms=20)
        task_id = await self.start_broadcast(business_id, numbers(recipients))
        samples: list[tuple[float, int, int | None]] = []
        while True:
            task = await self.task(business_id, task_id)
            samples.append((time.time(), task["processed_items"], task["eta_seconds"]))
            if task["status"] in ("completed", "cancelled", "failed"):
                break
            await asyncio.sleep(0.1)
        ended = samples[-1][0]
        checkpoints = []
        for share in (0.1, 0.3, 0.6):
            at, done, eta = next(
                (t, p, e) for t, p, e in samples if p >= share * recipients and e is not None
            )
            actual = ended - at
            checkpoints.append(
                {
                    "done_pct": round(100 * done / recipients, 1),
                    "eta_s": eta,
                    "actual_remaining_s": round(actual, 1),
                    "error_pct": round(100 * abs(eta - actual) / actual, 1),
                }
            )
        return {
            "recipients": recipients,
            "messages_per_s": messages_per_s,
            "status": task["status"],
            "first_estimate_after_s": round(
                next(t for t, _, e in samples if e is not None) - samples[0][0], 1
            ),
            "checkpoints": checkpoints,
            "max_error_pct": max(c["error_pct"] for c in checkpoints),
        }

    async def rate_limit(self, limit: float, recipients: int, workers: int) -> dict[str, Any]:
        business_id = await self.new_business(messages_per_s=limit)
        await self.configure_sender(business_id, rate_limit_per_s=limit, latency_ms=20)
        while len(self.stack.workers) < workers:
            self.stack.start_worker()
        await asyncio.sleep(3)
        before = (await self.sandbox("/sandbox/stats"))["whatsapp"]["rate_limited"]
        task_id = await self.start_broadcast(business_id, numbers(recipients))
        task = await self.wait_done(business_id, task_id, poll_s=0.2)
        report = await self.sender(business_id, times=True)
        times = sorted(report["accept_times"])
        after = (await self.sandbox("/sandbox/stats"))["whatsapp"]["rate_limited"]
        achieved = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        return {
            "limit_per_s": limit,
            "achieved_per_s": round(achieved, 1),
            "ratio": round(achieved / limit, 3),
            "provider_429": after - before,
            "workers": workers,
            "recipients": recipients,
            "status": task["status"],
        }

    async def scale(self, sizes: list[int], latency_ms: float) -> list[dict[str, Any]]:
        rows = []
        worker = self.stack.workers[0]
        for size in sizes:
            business_id = await self.new_business()
            await self.configure_sender(business_id, latency_ms=latency_ms)
            with PeakRss(worker.pid) as rss:
                rate, end_to_end, task = await self.longtasks_broadcast(business_id, numbers(size))
            rows.append(
                {
                    "recipients": size,
                    "items_per_s": round(rate, 1),
                    "end_to_end_items_per_s": round(end_to_end, 1),
                    "worker_peak_rss_mb": round(rss.peak_mb, 1),
                    "max_run_history_events": await self.max_history(task["workflow_id"]),
                }
            )
        return rows

    async def max_history(self, workflow_id: str) -> int:
        from temporalio.client import Client

        client = await Client.connect(self.stack.temporal_address)
        longest = 0
        async for execution in client.list_workflows(f'WorkflowId="{workflow_id}"'):
            handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
            count = 0
            async for _ in handle.fetch_history_events():
                count += 1
            longest = max(longest, count)
        return longest

    async def api_load(
        self, clients: int, seconds: float, recipients: int, latency_ms: float
    ) -> dict[str, Any]:
        business_id = await self.new_business()
        await self.configure_sender(business_id, latency_ms=latency_ms)
        idle_task = await self.start_broadcast(business_id, numbers(10))
        await self.wait_done(business_id, idle_task)
        idle = await self._hammer(business_id, idle_task, clients, seconds)
        busy_task = await self.start_broadcast(business_id, numbers(recipients, start=50_000))
        busy = await self._hammer(business_id, busy_task, clients, seconds)
        still_running = (await self.task(business_id, busy_task))["status"] == "running"
        await self.wait_done(business_id, busy_task)
        return {
            "concurrency": clients,
            "seconds": seconds,
            "rps": busy["rps"],
            "p99_ms": busy["p99_ms"],
            "errors": busy["errors"],
            "idle_rps": idle["rps"],
            "idle_p99_ms": idle["p99_ms"],
            "during_broadcast": still_running,
        }

    async def _hammer(
        self, business_id: int, task_id: int, clients: int, seconds: float
    ) -> dict[str, Any]:
        return await self.hammer(
            f"{self.stack.api_url}/api/long_tasks/{task_id}", business_id, clients, seconds
        )

    async def hammer(
        self, url: str, business_id: int, clients: int, seconds: float
    ) -> dict[str, Any]:
        """`clients` viewers GET `url` back to back for `seconds`: rate, latencies, errors.

        The rate counts the answers that came between the first answer and the deadline: a
        short run counted every request begun before the deadline (up to `clients` more than
        the window held) and the ramp before the first answer, which moved half-second
        slices by +-30%."""
        headers = self.headers(business_id, Role.viewer)
        latencies: list[float] = []
        answered_at: list[float] = []
        errors = 0
        deadline = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                async with self.session.get(url, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                done = time.perf_counter()
                latencies.append(done - t0)
                answered_at.append(done)

        await asyncio.gather(*(client() for _ in range(clients)))
        first = min(answered_at)
        in_window = sum(1 for at in answered_at if at <= deadline) - 1
        return {
            "rps": round(in_window / (deadline - first), 1) if deadline > first else 0.0,
            "p50_ms": round(_pct(latencies, 50) * 1000, 1),
            "p99_ms": round(_pct(latencies, 99) * 1000, 1),
            "errors": errors,
        }


class WebhookBench(Bench):
    """Status webhooks into the ledger, beside a bare INSERT of the same rows."""

    async def webhook_ingest(self, items: int, batch: int, rounds: int = 2) -> dict[str, Any]:
        """A broadcast of `items` recipients (the sandbox's own webhooks dropped), then Meta's
        three statuses of each (sent, delivered, read; shuffled, so some arrive out of order)
        as signed POSTs of `batch` statuses to the API, one at a time, timed per POST; then
        the same POSTs again (Meta's retries: nothing changes). The yardstick: the same rows,
        one INSERT ... SELECT FROM unnest per batch into a table with the inbox's shape."""
        business_id = await self.new_business()
        sender = f"pn-{business_id}"
        await self.configure_sender(business_id, webhook_drop_rate=1.0)
        task_id = await self.start_broadcast(business_id, numbers(items, start=700_000))
        task = await self.wait_done(business_id, task_id, poll_s=0.2)
        assert task["status"] == "completed", task
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT item_key, provider_ref FROM task_items WHERE task_id = :t"),
                    {"t": task_id},
                )
            ).all()
        now = str(int(time.time()))
        statuses = [
            {
                "id": wamid,
                "status": word,
                "timestamp": now,
                "recipient_id": "972500000000",
                "biz_opaque_callback_data": f"lt1:{task_id}:{key}",
            }
            for key, wamid in rows
            for word in ("sent", "delivered", "read")
        ]
        random.Random(7).shuffle(statuses)
        bodies = [
            json.dumps(_notification(sender, statuses[i : i + batch])).encode()
            for i in range(0, len(statuses), batch)
        ]
        secret = Settings().whatsapp_app_secret
        passes: list[list[float]] = []
        for _ in range(rounds):
            latencies: list[float] = []
            for body in bodies:
                signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                started = time.perf_counter()
                async with self.session.post(
                    self.stack.api_url + "/webhooks/whatsapp",
                    data=body,
                    headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
                ) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)
            passes.append(latencies)
        final = await self.task(business_id, task_id)
        assert final["delivery"]["read"] == items, final["delivery"]
        bare = await self._bare_insert(statuses, batch, sender)
        first, again = passes[0], passes[-1]
        return {
            "statuses": len(statuses),
            "batch": batch,
            "statuses_per_s": round(len(statuses) / sum(first), 1),
            "p50_ms": round(statistics.median(first) * 1000, 1),
            "p99_ms": round(_pct(first, 99) * 1000, 1),
            "replayed_statuses_per_s": round(len(statuses) / sum(again), 1),
            "replayed_p99_ms": round(_pct(again, 99) * 1000, 1),
            "bare_insert_statuses_per_s": round(len(statuses) / sum(bare), 1),
            "bare_insert_p99_ms": round(_pct(bare, 99) * 1000, 1),
        }

    async def _bare_insert(
        self, statuses: list[dict[str, str]], batch: int, sender: str
    ) -> list[float]:
        """Seconds per batch to INSERT the same rows, committed, into an empty table shaped
        like the inbox: the least a durable ingest can cost."""
        async with self.engine.begin() as conn:
            await conn.execute(
                text("CREATE TABLE IF NOT EXISTS bench_bare_statuses (LIKE wa_status_inbox)")
            )
            await conn.execute(text("TRUNCATE bench_bare_statuses"))
        latencies = []
        for i in range(0, len(statuses), batch):
            chunk = statuses[i : i + batch]
            started = time.perf_counter()
            async with self.engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO bench_bare_statuses (wamid, status, phone_number_id,"
                        " callback, code, occurred_at, received_at)"
                        " SELECT w, s, :pnid, c, NULL, now(), now() FROM unnest("
                        " CAST(:w AS text[]), CAST(:s AS text[]), CAST(:c AS text[])) AS t(w, s, c)"
                    ),
                    {
                        "pnid": sender,
                        "w": [x["id"] for x in chunk],
                        "s": [x["status"] for x in chunk],
                        "c": [x["biz_opaque_callback_data"] for x in chunk],
                    },
                )
            latencies.append(time.perf_counter() - started)
        async with self.engine.begin() as conn:
            await conn.execute(text("DROP TABLE bench_bare_statuses"))
        return latencies


def _notification(sender: str, statuses: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": f"waba-{sender}",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "1555", "phone_number_id": sender},
                            "statuses": statuses,
                        },
                    }
                ],
            }
        ],
    }


class ReceiptBench(WebhookBench):
    """Receipt deletion and Gmail sync, beside their own yardsticks."""

    async def _insert_receipts(self, business_id: int, count: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO receipts (business_id, source, vendor, amount, currency,"
                    " issued_at, subject) SELECT :b, 'manual', 'Vendor ' || g,"
                    " (g % 1000) + 0.5, 'ILS',"
                    " DATE '2025-01-01' + (g % 300), 'Receipt ' || g"
                    " FROM generate_series(1, :n) AS g"
                ),
                {"b": business_id, "n": count},
            )

    async def _single_delete_s(self, business_id: int, count: int) -> float:
        async with self.engine.begin() as conn:
            started = time.perf_counter()
            result = await conn.execute(
                text("DELETE FROM receipts WHERE business_id = :b"), {"b": business_id}
            )
            elapsed = time.perf_counter() - started
        assert result.rowcount == count
        return elapsed

    async def receipt_delete(self, count: int) -> dict[str, Any]:
        """longtasks' paged, ledgered, cancellable delete by filter vs one DELETE of as many
        rows. Like the broadcast's, longtasks' rate is its delete phase: from the moment its
        first page began deleting to the moment its last page had deleted and recorded its
        receipts (the pages' own timestamps). The rate from POST to `completed` is beside it.
        The yardstick is the faster of one DELETE run before and one after longtasks."""
        before, after, business_id = [await self.new_business() for _ in range(3)]
        for owner in (before, after, business_id):
            await self._insert_receipts(owner, count)
        # Settle the table first, so autovacuum does not wake up mid-measurement on 300,000
        # new rows and take CPU from whichever side it happens to overlap.
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM (ANALYZE) receipts"))
        single = await self._single_delete_s(before, count)
        started = time.perf_counter()
        async with self.session.post(
            self.stack.api_url + "/api/receipts/bulk_delete",
            headers=self.headers(business_id),
            json={"filter": {"source": "manual"}},
        ) as response:
            body = await response.json()
            assert response.status == 202, body
        task_id = int(body["task"]["id"])
        task = await self.wait_done(business_id, task_id, poll_s=0.05)
        end_to_end = time.perf_counter() - started
        assert task["status"] == "completed", task
        assert task["success_count"] == count, task
        single = min(single, await self._single_delete_s(after, count))
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT count(*), sum(cardinality(deleted_ids)),"
                        " extract(epoch FROM max(settled_at) - min(started_at))"
                        " FROM receipt_delete_pages WHERE task_id = :t"
                    ),
                    {"t": task_id},
                )
            ).one()
        pages, recorded, phase = int(row[0]), int(row[1]), float(row[2])
        assert recorded == count, (recorded, count)
        async with self.engine.connect() as conn:
            spans = await conn.execute(
                text(
                    "SELECT extract(epoch FROM started_at - min(started_at) OVER ()) * 1000,"
                    " extract(epoch FROM settled_at - started_at) * 1000"
                    " FROM receipt_delete_pages WHERE task_id = :t ORDER BY page"
                ),
                {"t": task_id},
            )
            # Per page: ms after the first page started, and ms it took.
            page_spans_ms = [[round(float(a), 1), round(float(b), 1)] for a, b in spans]
        return {
            "receipts": count,
            "items_per_s": round(count / phase, 1),
            "single_statement_items_per_s": round(count / single, 1),
            "ratio": round(single / phase, 3),
            "end_to_end_items_per_s": round(count / end_to_end, 1),
            "pages": pages,
            "page_spans_ms": page_spans_ms,
        }

    async def receipt_sync(self, messages: int, quota_units_per_s: float) -> dict[str, Any]:
        """A full sync of a sandbox mailbox, against the rate Gmail's quota allows (each
        messages.get costs 5 units; listing 500 ids costs 5)."""
        business_id = await self.new_business()
        headers = self.headers(business_id)
        async with self.session.put(
            self.stack.api_url + "/api/receipts/gmail_connection",
            headers=headers,
            json={
                "email": f"bench{business_id}@longtasks.test",
                "refresh_token": f"sandbox:bench{business_id}@longtasks.test",
            },
        ) as response:
            assert response.status == 200, await response.text()
        started = time.perf_counter()
        async with self.session.post(
            self.stack.api_url + "/api/receipts/sync", headers=headers, json={}
        ) as response:
            body = await response.json()
            assert response.status == 202, body
        task = await self.wait_done(business_id, int(body["task"]["id"]), poll_s=0.2)
        elapsed = time.perf_counter() - started
        assert task["status"] == "completed", task
        assert task["total_items"] == messages, task
        limit = quota_units_per_s / (5 + 5 / 500)
        return {
            "messages": messages,
            "items_per_s": round(messages / elapsed, 1),
            "sandbox_limit_per_s": round(limit, 1),
            "ratio": round(messages / elapsed / limit, 3),
            "stored": task["success_count"] - task["skipped_count"],
            "skipped": task["skipped_count"],
            "failed": task["failed_count"],
        }


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)
