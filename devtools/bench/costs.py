"""What a run costs, measured around it: Postgres rows, bytes, transactions and WAL; Temporal
history events and actions; worker CPU. Differences of counters read before and after, so a
scenario states its cost per item and per page from the real run."""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

# Tables a broadcast writes per recipient, and an audience's own.
LEDGER_TABLES = ("task_items",)
RECIPIENT_TABLES = ("broadcast_recipients",)
AUDIENCE_TABLES = ("audience_members", "audience_errors", "audience_upload_chunks")

# Temporal Cloud bills these history events as actions (heartbeats are actions too, but
# leave no event; they are throttled to at most one per 80% of the heartbeat timeout).
ACTION_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_TIMER_STARTED,
    EventType.EVENT_TYPE_MARKER_RECORDED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
}


@dataclass(frozen=True)
class DbSnapshot:
    wal_lsn: int
    xact_commit: int
    tup_inserted: int
    tup_updated: int
    tup_deleted: int
    sizes: dict[str, int]


async def db_snapshot(engine: AsyncEngine, tables: tuple[str, ...]) -> DbSnapshot:
    async with engine.connect() as conn:
        # Counters of other backends reach pg_stat_database when they report (at the end of
        # a transaction, at most every second): read after the run has settled.
        await conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        row = (
            await conn.execute(
                text(
                    "SELECT pg_current_wal_lsn() - '0/0', xact_commit, tup_inserted,"
                    " tup_updated, tup_deleted FROM pg_stat_database"
                    " WHERE datname = current_database()"
                )
            )
        ).one()
        sizes = {}
        for table in tables:
            size = await conn.execute(
                text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}
            )
            sizes[table] = int(size.scalar_one())
    return DbSnapshot(int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]), sizes)


def db_cost(before: DbSnapshot, after: DbSnapshot, items: int, pages: int) -> dict[str, Any]:
    """Per item (and per page, for the counters a page pays once)."""
    rows = (
        (after.tup_inserted - before.tup_inserted)
        + (after.tup_updated - before.tup_updated)
        + (after.tup_deleted - before.tup_deleted)
    )
    wal = after.wal_lsn - before.wal_lsn
    xacts = after.xact_commit - before.xact_commit
    grown = {t: after.sizes[t] - before.sizes.get(t, 0) for t in after.sizes}
    items = max(items, 1)
    return {
        "wal_bytes_per_item": round(wal / items, 1),
        "wal_bytes_per_page": round(wal / pages) if pages else None,
        "rows_written_per_item": round(rows / items, 2),
        "transactions_per_item": round(xacts / items, 3),
        "transactions_per_page": round(xacts / pages, 1) if pages else None,
        "table_bytes_per_item": {t: round(g / items, 1) for t, g in grown.items()},
        "wal_mb": round(wal / 1e6, 1),
    }


async def history_cost(client: Client, workflow_id: str) -> dict[str, Any]:
    """Events and billable actions over every run of a task's workflow."""
    runs = events = actions = longest = 0
    activities: collections.Counter[str] = collections.Counter()
    async for execution in client.list_workflows(f'WorkflowId="{workflow_id}"'):
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        count = 0
        async for event in handle.fetch_history_events():
            count += 1
            if event.event_type in ACTION_EVENTS:
                actions += 1
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                activities[event.activity_task_scheduled_event_attributes.activity_type.name] += 1
        runs += 1
        events += count
        longest = max(longest, count)
    return {
        "runs": runs,
        "history_events": events,
        "max_run_history_events": longest,
        "actions": actions,
        "activities": dict(activities),
    }


class CpuClock:
    """CPU seconds a process spent (user + system) between `start` and `stop`."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self._start = 0.0
        self.seconds = 0.0

    def _now(self) -> float:
        times = self._proc.cpu_times()
        return float(times.user + times.system)

    def __enter__(self) -> CpuClock:
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = self._now() - self._start


class TreeCpuClock:
    """CPU seconds of a process and its children (a worker and its normalizing processes),
    counted over children alive at the end; a child's time is counted while it lives."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self._start: dict[int, float] = {}
        self.seconds = 0.0

    def _times(self) -> dict[int, float]:
        found = {}
        for proc in [self._proc, *self._proc.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            found[proc.pid] = float(times.user + times.system)
        return found

    def __enter__(self) -> TreeCpuClock:
        self._start = self._times()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._times()
        self.seconds = sum(t - self._start.get(pid, 0.0) for pid, t in end.items())


# -- statements, from the server's own log ------------------------------------------------------

_EXECUTE = re.compile(r"LOG:\s+(?:execute [^:]*|statement): ?(.*)$")


def _kind(sql: str) -> str:
    """A statement's kind: its verb and the table it works on."""
    words = sql.split()
    verb = words[0].upper() if words else "?"
    lowered = sql.lower()
    if verb == ";":
        return "; (the pool's liveness ping)"
    keys = {"INSERT": (" into ",), "UPDATE": ("update ",), "ALTER": (" table ",)}
    for key in keys.get(verb, (" from ",)):
        at = lowered.find(key)
        if at >= 0:
            rest = sql[at + len(key) :].split()
            if rest:
                return f"{verb} {rest[0].strip('(')}"
    if verb == "SELECT" and len(words) > 1:  # a function: pg_notify(...)
        return f"SELECT {words[1].split('(')[0]}"
    return verb


async def log_statements(engine: AsyncEngine, on: bool) -> None:
    """Make the server log every statement (a calibration run), or stop it."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        value = "all" if on else "none"
        await conn.execute(text(f"ALTER SYSTEM SET log_statement = '{value}'"))
        await conn.execute(text("SELECT pg_reload_conf()"))


def count_statements(log_file: Path, since: int) -> collections.Counter[str]:
    """Statements the server logged after byte `since` of its log, by kind. A statement's
    text goes on over the following tab-indented lines."""
    kinds: collections.Counter[str] = collections.Counter()
    statement: list[str] | None = None
    with log_file.open("rb") as log:
        log.seek(since)
        for raw in log:
            line = raw.decode("utf-8", "replace").rstrip()
            if statement is not None and line.startswith("\t"):
                statement.append(line.strip())
                continue
            if statement is not None:
                kinds[_kind(" ".join(statement).strip())] += 1
                statement = None
            match = _EXECUTE.search(line)
            if match is not None:
                statement = [match.group(1).strip()]
    if statement is not None:
        kinds[_kind(" ".join(statement).strip())] += 1
    return kinds
