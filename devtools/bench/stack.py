"""The real stack for benchmarks, each piece its own process, on free ports in a temp dir."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg

from devtools.dev.processes import temporal_dev_command, wait_for_port
from devtools.embedded_postgres import app_url
from longtasks.db.engine import libpq_url
from longtasks.settings import Settings
from migrations.runner import migrate

# The compose stack's Postgres settings that take effect without a restart (see
# docker-compose.yml and docs/capacity.md): checkpoints far enough apart that a million-item
# broadcast does not rewrite the ledger's index pages into the WAL (full-page images) every
# few hundred thousand items.
POSTGRES_SETTINGS = {"max_wal_size": "4GB", "checkpoint_timeout": "15min"}


def tune_postgres(database_url: str) -> None:
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        for name, value in POSTGRES_SETTINGS.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        conn.execute("SELECT pg_reload_conf()")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class BenchStack:
    root: Path
    # The owner's (the bench's setup and inspection), and the services' (the application role).
    database_url: str
    app_database_url: str
    temporal_address: str
    sandbox_url: str
    api_url: str
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _pg: object | None = None

    def spawn(
        self, name: str, args: list[str], extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        proc = subprocess.Popen(args, env={**self.env, **(extra_env or {})}, stdout=log, stderr=log)
        log.close()
        return proc

    def start_worker(self, **extra_env: str) -> subprocess.Popen[bytes]:
        proc = self.spawn(
            f"worker-{len(self.workers)}", [sys.executable, "-m", "cli", "worker"], extra_env
        )
        self.workers.append(proc)
        return proc

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.workers.clear()

    @property
    def pg_log(self) -> Path | None:
        """The embedded server's log file (where `log_statement` writes), if it is ours."""
        pgdata = getattr(self._pg, "pgdata", None)
        return Path(pgdata) / "log" if pgdata is not None else None

    def close(self) -> None:
        self.stop_workers()
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        cleanup = getattr(self._pg, "cleanup", None)
        if cleanup is not None:
            cleanup()


async def start_stack(**worker_env: str) -> BenchStack:
    root = Path(tempfile.mkdtemp(prefix="longtasks-bench-"))
    database_url = os.environ.get("DATABASE_URL")
    owner_url = os.environ.get("MIGRATION_DATABASE_URL") or database_url
    pg = None
    if not database_url or not owner_url:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
        pg = pgserver.get_server(root / "pgdata", cleanup_mode="delete")  # type: ignore[attr-defined]
        owner_url = str(pg.get_uri())
        tune_postgres(owner_url)
        # The services connect as the application's role, under row-level security, as in
        # production; the bench's own setup and inspection use the owner.
        database_url = app_url(owner_url)
    migrate(owner_url, database_url)
    temporal_port, ui_port = free_port(), free_port()
    sandbox_port, api_port = free_port(), free_port()
    settings = Settings(
        temporal_address=f"127.0.0.1:{temporal_port}", data_dir=root, temporal_ui_port=ui_port
    )
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": database_url,
        "MIGRATION_DATABASE_URL": owner_url,
        "DATA_DIR": str(root),
        "TEMPORAL_ADDRESS": settings.temporal_address,
        "TEMPORAL_TASK_QUEUE": "bench",
        "SANDBOX_PORT": str(sandbox_port),
        "WHATSAPP_API_BASE": f"http://127.0.0.1:{sandbox_port}",
        "GMAIL_API_BASE": f"http://127.0.0.1:{sandbox_port}",
        "API_PORT": str(api_port),
        # The sandbox posts its status webhooks to this stack's API, as Meta would.
        "WHATSAPP_WEBHOOK_URL": f"http://127.0.0.1:{api_port}/webhooks/whatsapp",
        # Off unless the caller measures the limiter itself (API_RATE_LIMIT_PER_S=100000).
        "API_RATE_LIMIT_PER_S": os.environ.get("API_RATE_LIMIT_PER_S", "0"),
        **worker_env,
    }
    stack = BenchStack(
        root=root,
        database_url=owner_url,
        app_database_url=database_url,
        temporal_address=settings.temporal_address,
        sandbox_url=f"http://127.0.0.1:{sandbox_port}",
        api_url=f"http://127.0.0.1:{api_port}",
        env=env,
        _pg=pg,
    )
    stack.procs["temporal"] = stack.spawn(
        "temporal", temporal_dev_command(settings, ["--headless"])
    )
    wait_for_port("127.0.0.1", temporal_port, 60, stack.procs["temporal"])
    stack.procs["sandbox"] = stack.spawn("sandbox", [sys.executable, "-m", "cli", "sandbox"])
    wait_for_port("127.0.0.1", sandbox_port, 30, stack.procs["sandbox"])
    stack.procs["api"] = stack.spawn("api", [sys.executable, "-m", "cli", "api"])
    wait_for_port("127.0.0.1", api_port, 60, stack.procs["api"])
    await asyncio.sleep(0)
    return stack


class PeakRss:
    """Samples a process's resident memory; the peak is what the worker needed."""

    def __init__(self, pid: int) -> None:
        self._proc = psutil.Process(pid)
        self.peak_mb = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            try:
                rss = self._proc.memory_info().rss / 1e6
            except psutil.Error:
                return
            self.peak_mb = max(self.peak_mb, rss)
            await asyncio.sleep(0.1)

    def now_mb(self) -> float:
        return float(self._proc.memory_info().rss / 1e6)

    def __enter__(self) -> PeakRss:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
