"""Audience scenarios: a customer list uploaded as CSV (the API's memory and answer time, the
import's rows/s beside a bare COPY of the same file), broadcasts to audiences of 10k to 1M
members with a personalized template (items/s, worker memory, history, and what each item
costs Postgres and Temporal), and the cleanup schedule reclaiming those bytes."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from temporalio.client import Client

from devtools.bench import costs
from devtools.bench.scenarios import ReceiptBench
from devtools.bench.stack import PeakRss
from longtasks.contracts import activities as act
from longtasks.contracts.ops import CleanupInput, CleanupOutcome
from longtasks.db.engine import libpq_url

FIRST = ["Dana", "Yossi", "Noa", "Avi", "Miriam", "דנה", "יוסי", "נועה", "אבי", "מרים"]
LAST = ["Cohen", "Levi", "Mizrahi", "Peretz", "Biton", "כהן", "לוי", "מזרחי", "פרץ", "ביטון"]
CITY = ["Tel Aviv", "Haifa", "Jerusalem", "Eilat", "Beersheba", "חיפה", "ירושלים", "אילת"]
TEMPLATE = {"name": "bench_hello", "language": "he", "params": ["Shalom", {"column": "first_name"}]}


def write_customer_csv(path: Path, rows: int, start: int = 0) -> int:
    """A spreadsheet export of `rows` distinct customers (about 40 bytes a row), in Excel's
    local form of the numbers; returns its size in bytes."""
    values = (v for v in itertools.count(3_000_001 + start) if v % 10_000 != 0)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,first_name,last_name,city\r\n")
        batch: list[str] = []
        for i, v in enumerate(itertools.islice(values, rows)):
            batch.append(
                f"052-{v:07d},{FIRST[i % 10]},{LAST[i // 10 % 10]},{CITY[i // 100 % 8]}\r\n"
            )
            if len(batch) == 10_000:
                out.write("".join(batch))
                batch.clear()
        out.write("".join(batch))
    return path.stat().st_size


class AudienceBench(ReceiptBench):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Audiences imported in this run, by size: (business, audience).
        self.audiences: dict[int, tuple[int, int]] = {}
        self._client: Client | None = None
        self._senders = itertools.count(1)

    async def temporal(self) -> Client:
        if self._client is None:
            self._client = await Client.connect(self.stack.temporal_address)
        return self._client

    async def fresh_sender(self, business_id: int, latency_ms: float) -> str:
        """A sender number of its own for one run, so the provider's first-to-last accept
        times are that run's alone."""
        sender = f"pn-{business_id}-{next(self._senders)}"
        async with self.engine.begin() as conn:
            await conn.execute(
                text("UPDATE businesses SET whatsapp_phone_number_id = :s WHERE id = :b"),
                {"s": sender, "b": business_id},
            )
        await self.sandbox(
            "/sandbox/config", {"sender": sender, "whatsapp": {"latency_ms": latency_ms}}
        )
        return sender

    async def sender_rate(self, sender: str) -> float:
        report = await self.sandbox(f"/sandbox/whatsapp/senders/{sender}")
        span = report["last_accept_at"] - report["first_accept_at"]
        return float((report["accepted"] - 1) / span) if span > 0 else 0.0

    async def upload(self, business_id: int, csv: Path) -> tuple[dict[str, Any], float]:
        """POST the file streamed from disk; (the answer, seconds until it came)."""
        started = time.perf_counter()
        with csv.open("rb") as body:
            async with self.session.post(
                self.stack.api_url + "/api/audiences",
                params={"name": csv.stem},
                data=body,
                headers={**self.headers(business_id), "Content-Type": "text/csv"},
            ) as response:
                answer: dict[str, Any] = await response.json()
                assert response.status == 202, answer
        return answer, time.perf_counter() - started

    async def audience(self, business_id: int, audience_id: int) -> dict[str, Any]:
        async with self.session.get(
            f"{self.stack.api_url}/api/audiences/{audience_id}", headers=self.headers(business_id)
        ) as response:
            result: dict[str, Any] = await response.json()
            return result

    async def wait_ready(self, business_id: int, audience_id: int) -> dict[str, Any]:
        while True:
            audience = await self.audience(business_id, audience_id)
            if audience["status"] != "importing":
                assert audience["status"] == "ready", audience
                return audience
            await asyncio.sleep(0.1)

    async def import_csv(self, business_id: int, csv: Path) -> dict[str, Any]:
        """Upload and import; the figures of both, and what the import cost."""
        api = self.stack.procs["api"]
        idle_rss = PeakRss(api.pid).now_mb()
        tables = costs.AUDIENCE_TABLES
        await asyncio.sleep(1.5)
        before = await costs.db_snapshot(self.engine, tables)
        worker = costs.TreeCpuClock(self.stack.workers[0].pid)
        with PeakRss(api.pid) as rss, costs.CpuClock(api.pid) as api_cpu:
            answer, answered_s = await self.upload(business_id, csv)
        stored = time.perf_counter()
        with worker:
            audience = await self.wait_ready(business_id, answer["audience"]["id"])
        imported_s = time.perf_counter() - stored
        rows = int(audience["row_count"])
        await asyncio.sleep(1.5)
        after = await costs.db_snapshot(self.engine, tables)
        cost = costs.db_cost(before, after, rows, 0)
        return {
            "audience_id": audience["id"],
            "rows": rows,
            "members": audience["valid_count"],
            "file_mb": round(csv.stat().st_size / 1e6, 1),
            "answered_202_s": round(answered_s, 2),
            "api_rss_idle_mb": round(idle_rss, 1),
            "api_peak_rss_mb": round(rss.peak_mb, 1),
            "import_s": round(imported_s, 1),
            "import_rows_per_s": round(rows / imported_s, 1),
            "end_to_end_rows_per_s": round(rows / (answered_s + imported_s), 1),
            "api_cpu_us_per_row": round(api_cpu.seconds / rows * 1e6, 1),
            "import_cpu_us_per_row": round(worker.seconds / rows * 1e6, 1),
            "member_bytes_per_row": cost["table_bytes_per_item"].get("audience_members"),
            "wal_bytes_per_row": cost["wal_bytes_per_item"],
        }

    def bare_copy(self, csv: Path) -> float:
        """rows/s of one COPY of the same file into a plain table: the floor of any import."""
        with psycopg.connect(libpq_url(self.stack.database_url), autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS bench_bare_copy"
                " (phone text, first_name text, last_name text, city text)"
            )
            conn.execute("TRUNCATE bench_bare_copy")
            started = time.perf_counter()
            with (
                conn.cursor() as cursor,
                cursor.copy("COPY bench_bare_copy FROM STDIN (FORMAT csv, HEADER true)") as copy,
                csv.open("rb") as body,
            ):
                while data := body.read(1 << 20):
                    copy.write(data)
            elapsed = time.perf_counter() - started
            rows = conn.execute("SELECT count(*) FROM bench_bare_copy").fetchone()
            conn.execute("DROP TABLE bench_bare_copy")
        assert rows is not None
        return float(rows[0]) / elapsed

    async def intake(self, rows: int) -> dict[str, Any]:
        """A customer list of `rows` rows: upload (202, API memory), import, bare COPY."""
        csv = self.stack.root / f"customers-{rows}.csv"
        write_customer_csv(csv, rows)
        business_id = await self.new_business()
        result = await self.import_csv(business_id, csv)
        result["bare_copy_rows_per_s"] = round(self.bare_copy(csv), 1)
        result["ratio_to_bare_copy"] = round(
            result["import_rows_per_s"] / result["bare_copy_rows_per_s"], 4
        )
        self.audiences[rows] = (business_id, int(result["audience_id"]))
        return result

    async def audience_of(self, rows: int) -> tuple[int, int]:
        """(business, audience) with `rows` members, imported once per run."""
        if rows not in self.audiences:
            await self.intake(rows)
        return self.audiences[rows]

    async def broadcast_to(self, business_id: int, audience_id: int) -> tuple[int, str]:
        """Start a personalized broadcast; (task id, workflow id)."""
        async with self.session.post(
            self.stack.api_url + "/api/broadcasts",
            headers=self.headers(business_id),
            json={"name": "bench", "message": {"template": TEMPLATE}, "audience_id": audience_id},
        ) as response:
            body = await response.json()
            assert response.status == 202, body
            return int(body["task"]["id"]), str(body["task"]["workflow_id"])

    async def finished(self, business_id: int, task_id: int, workflow_id: str) -> dict[str, Any]:
        """Wait for the run through Temporal (following continue-as-new), then read the task
        once. Not by polling the API: its reads, every 50 ms for the length of a broadcast,
        would be counted in the server's statements and transactions as the send path's."""
        client = await self.temporal()
        await client.get_workflow_handle(workflow_id).result()
        return await self.task(business_id, task_id)

    async def send_to_audience(self, rows: int) -> dict[str, Any]:
        """One personalized broadcast to an audience of `rows`: rate, memory, history, cost."""
        business_id, audience_id = await self.audience_of(rows)
        sender = await self.fresh_sender(business_id, latency_ms=20)
        worker = self.stack.workers[0]
        tables = costs.LEDGER_TABLES
        await asyncio.sleep(1.5)  # counters of earlier work reach pg_stat_database
        before = await costs.db_snapshot(self.engine, tables)
        started = time.perf_counter()
        with PeakRss(worker.pid) as rss, costs.CpuClock(worker.pid) as cpu:
            task_id, workflow_id = await self.broadcast_to(business_id, audience_id)
            task = await self.finished(business_id, task_id, workflow_id)
        elapsed = time.perf_counter() - started
        assert task["status"] == "completed", task
        assert task["success_count"] == rows, task
        await asyncio.sleep(1.5)
        after = await costs.db_snapshot(self.engine, tables)
        history = await costs.history_cost(await self.temporal(), task["workflow_id"])
        pages = history["activities"].get(act.BROADCAST_SEND_PAGE.name, 0)
        return {
            "recipients": rows,
            "items_per_s": round(await self.sender_rate(sender), 1),
            "end_to_end_items_per_s": round(rows / elapsed, 1),
            "worker_peak_rss_mb": round(rss.peak_mb, 1),
            "worker_cpu_s_per_1k_items": round(cpu.seconds / rows * 1000, 3),
            "max_run_history_events": history["max_run_history_events"],
            "runs": history["runs"],
            "temporal_actions_per_page": round(history["actions"] / pages, 2) if pages else None,
            "history_events_per_page": round(history["history_events"] / pages, 2)
            if pages
            else None,
            "pages": pages,
            **costs.db_cost(before, after, rows, pages),
            "task_id": task_id,
        }

    async def scale(self, sizes: list[int], latency_ms: float) -> list[dict[str, Any]]:
        return [await self.send_to_audience(size) for size in sizes]

    async def statements(self, rows: int) -> dict[str, Any]:
        """Every statement Postgres ran for one broadcast to an audience of `rows`, by kind,
        from the server's own log (a calibration run: logging costs time, so nothing here is
        timed)."""
        log = self.stack.pg_log
        if log is None:
            return {"skipped": "DATABASE_URL is external: its log is not ours to read"}
        business_id, audience_id = await self.audience_of(rows)
        await self.fresh_sender(business_id, latency_ms=20)
        since = log.stat().st_size
        await costs.log_statements(self.engine, on=True)
        try:
            task_id, workflow_id = await self.broadcast_to(business_id, audience_id)
            task = await self.finished(business_id, task_id, workflow_id)
        finally:
            await costs.log_statements(self.engine, on=False)
        assert task["status"] == "completed", task
        kinds = costs.count_statements(log, since)
        history = await costs.history_cost(await self.temporal(), task["workflow_id"])
        pages = history["activities"].get(act.BROADCAST_SEND_PAGE.name, 0)
        total = sum(kinds.values())
        return {
            "recipients": rows,
            "pages": pages,
            "statements": total,
            "statements_per_item": round(total / rows, 3),
            "statements_per_page": round(total / pages, 1) if pages else None,
            "by_kind": dict(kinds.most_common(15)),
        }

    async def _heap_and_index_bytes(self, tables: tuple[str, ...]) -> tuple[int, int]:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT sum(pg_table_size(t)), sum(pg_indexes_size(t))"
                        " FROM unnest(CAST(:tables AS regclass[])) AS t"
                    ),
                    {"tables": list(tables)},
                )
            ).one()
        return int(row[0]), int(row[1])

    async def reclaim(self, rows: int) -> dict[str, Any]:
        """The cleanup schedule's workflow (retention 0) deletes the finished broadcasts to an
        audience with their ledgers; after VACUUM (what autovacuum does after a cleanup) the
        same broadcast again should grow nothing: the bytes were reclaimed for reuse. Tables
        (heap) and indexes apart: a B-tree page emptied by a delete is reusable only once a
        later VACUUM finds no snapshot that could still see it, so VACUUM runs twice."""
        await self.audience_of(rows)
        tables = (*costs.LEDGER_TABLES, *costs.RECIPIENT_TABLES)
        before = await costs.db_snapshot(self.engine, tables)
        heap_before, index_before = await self._heap_and_index_bytes(tables)
        async with self.engine.connect() as conn:
            ledger_rows = (await conn.execute(text("SELECT count(*) FROM task_items"))).scalar()
        client = await self.temporal()
        outcome = await client.execute_workflow(
            "cleanup",
            CleanupInput(retention_days=0, batch_size=1000),
            id=f"bench-cleanup-{time.time_ns()}",
            task_queue="bench",
            result_type=CleanupOutcome,
        )
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for _ in range(2):
                await conn.execute(text("VACUUM task_items, broadcast_recipients, broadcasts"))
            left = (await conn.execute(text("SELECT count(*) FROM task_items"))).scalar()
        cleaned = await costs.db_snapshot(self.engine, tables)
        heap_cleaned, index_cleaned = await self._heap_and_index_bytes(tables)
        again = await self.send_to_audience(rows)
        after = await costs.db_snapshot(self.engine, tables)
        heap_after, index_after = await self._heap_and_index_bytes(tables)
        grown = sum(after.sizes.values()) - sum(cleaned.sizes.values())
        return {
            "recipients": rows,
            "ledger_rows_before_cleanup": ledger_rows,
            "ledger_rows_after_cleanup": left,
            "tasks_deleted": outcome.deleted,
            "bytes_before_cleanup_mb": round(sum(before.sizes.values()) / 1e6, 1),
            "bytes_after_cleanup_mb": round(sum(cleaned.sizes.values()) / 1e6, 1),
            "heap_mb_before_cleaned_again": [
                round(b / 1e6, 1) for b in (heap_before, heap_cleaned, heap_after)
            ],
            "index_mb_before_cleaned_again": [
                round(b / 1e6, 1) for b in (index_before, index_cleaned, index_after)
            ],
            "grown_by_the_same_broadcast_again_mb": round(grown / 1e6, 1),
            "broadcast_again_items_per_s": again["items_per_s"],
        }
