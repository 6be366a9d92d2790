"""Fault injection: workers as real processes (killed, stopped, multiplied), a Temporal server
that restarts on its own database file, a Postgres that goes away, a misbehaving provider.

The suite writes a markdown table of what it tried and what it saw to
`.artifacts/fault-report.md` (a committed copy lives in docs/fault-report.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

# The report lives in tests/conftest.py so other suites (tests/security) add rows to it too.
from tests.conftest import FaultReport, FaultRow, Stack, get_task_row

__all__ = ["FaultReport", "FaultRow"]


class WorkerProcess:
    """`longtasks worker` as its own OS process, as in production."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._env = env
        self._log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log_path.open("ab") as log:  # the child keeps its own copy of the fd
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cli", "worker"],
                env=self._env,
                stdout=log,
                stderr=log,
            )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout_s: float = 60) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


WorkerFactory = Callable[..., WorkerProcess]


@pytest.fixture
def worker_env(stack: Stack) -> dict[str, str]:
    target = stack.client.service_client.config.target_host
    return {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": stack.settings.database_url or "",
        "TEMPORAL_ADDRESS": target,
        "TEMPORAL_TASK_QUEUE": f"faults-{uuid.uuid4().hex[:8]}",
        "WHATSAPP_API_BASE": stack.sandbox_url,
        "BROADCAST_PAGE_SIZE": "100",
        "PAGE_WINDOW": "4",
        "PAGES_PER_RUN": "10",
        "HEARTBEAT_TIMEOUT_S": "2",
        "SEND_CONCURRENCY": "32",
        "CANCEL_POLL_INTERVAL_S": "0.1",
        # Unconfirmed sends are decided seconds after later statuses prove the pipeline (a
        # webhook can lag by seconds when a POST is retried on this loaded machine).
        "WHATSAPP_UNCONFIRMED_GRACE_S": "10",
        "WHATSAPP_UNCONFIRMED_MAX_WAIT_S": "120",
        # Several workers share this machine: no fixed metrics port to fight over.
        "WORKER_METRICS_PORT": "0",
    }


@pytest.fixture
async def workers(worker_env: dict[str, str], tmp_path: Path) -> AsyncIterator[WorkerFactory]:
    started: list[WorkerProcess] = []

    def make(**overrides: str) -> WorkerProcess:
        worker = WorkerProcess({**worker_env, **overrides}, tmp_path / f"worker-{len(started)}.log")
        worker.start()
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()


async def wait_for_processed(
    engine: AsyncEngine, task_id: int, at_least: int, timeout_s: float = 180
) -> int:
    """Wait until `at_least` items settled; fail only when nothing moved for `timeout_s`
    seconds (a fresh worker process takes tens of seconds to poll on a loaded 2-core machine)."""
    loop = asyncio.get_running_loop()
    seen, since = -1, loop.time()
    while True:
        task = await get_task_row(engine, task_id)
        if task.processed_items >= at_least or task.is_terminal:
            return task.processed_items
        if task.processed_items != seen:
            seen, since = task.processed_items, loop.time()
        elif loop.time() - since > timeout_s:
            raise AssertionError(
                f"task {task_id} stuck at {task.processed_items} < {at_least} for {timeout_s}s"
            )
        await asyncio.sleep(0.02)


async def wait_terminal(engine: AsyncEngine, task_id: int, timeout_s: float = 180) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        task = await get_task_row(engine, task_id)
        if task.is_terminal:
            return task
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"task {task_id} not terminal after {timeout_s}s: {task}")
        await asyncio.sleep(0.1)


@contextlib.contextmanager
def suppress_all() -> Iterator[None]:
    with contextlib.suppress(Exception):
        yield
