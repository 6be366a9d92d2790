"""`longtasks dev`: everything on embedded defaults, one Ctrl-C to stop it all.

Postgres (DATABASE_URL, else embedded pgserver under .data/), migrations, the Temporal dev server
(SQLite under .data/, so state survives a restart), the sandbox providers, the worker and the
API, each its own process, started in dependency order and stopped in reverse.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from types import FrameType

from api.auth import issue_token
from devtools.dev.demo_gmail import connect_demo_mailbox, ensure_demo_schedule
from devtools.dev.processes import child_env, self_command, temporal_dev_command, wait_for_port
from devtools.embedded_postgres import start_embedded_postgres
from longtasks.db.engine import create_engine
from longtasks.db.repositories.businesses import ensure_business
from longtasks.domain import Role
from longtasks.settings import Settings
from migrations.runner import upgrade


async def seed(database_url: str) -> None:
    """Two businesses, so tenant isolation can be tried at once."""
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await ensure_business(conn, 1, name="Demo business")
            await ensure_business(conn, 2, name="Another business")
    finally:
        await engine.dispose()


def run_dev(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    pg = None
    database_url = settings.database_url
    if not database_url:
        print("starting embedded Postgres under", settings.data_dir / "pgdata", flush=True)
        pg = start_embedded_postgres(settings.data_dir)
        database_url = str(pg.get_uri())
    print("applying migrations", flush=True)
    upgrade(database_url)
    asyncio.run(seed(database_url))
    asyncio.run(connect_demo_mailbox(database_url, settings))

    env = child_env(DATABASE_URL=database_url, DATA_DIR=str(settings.data_dir))
    children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(name: str, cmd: list[str], port: tuple[str, int] | None, timeout: float) -> None:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True)
        children.append((name, proc))
        if port is not None:
            wait_for_port(*port, timeout_s=timeout, proc=proc)
        print(f"  {name} started (pid {proc.pid})", flush=True)

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    exit_code = 0
    try:
        host, _, port = settings.temporal_address.rpartition(":")
        start("temporal", temporal_dev_command(settings), (host, int(port)), 60)
        start(
            "sandbox", self_command("sandbox"), (settings.sandbox_host, settings.sandbox_port), 30
        )
        start("worker", self_command("worker"), None, 0)
        print(f"  Gmail sync schedule {asyncio.run(ensure_demo_schedule(settings))}", flush=True)
        start("api", self_command("api"), (settings.api_host, settings.api_port), 60)
        admin = issue_token(
            settings.jwt_secret, business_id=1, role=Role.admin, ttl_s=settings.jwt_ttl_s
        )
        base = settings.public_base_url
        print(
            "\nlongtasks is running:\n"
            f"  web page     {base}/?token={admin}\n"
            f"  REST API     {base}/api   (OpenAPI docs: {base}/docs)\n"
            f"  Temporal UI  http://{host}:{settings.temporal_ui_port}\n"
            f"  sandbox      http://{settings.sandbox_host}:{settings.sandbox_port}/sandbox/stats\n"
            "  tokens       longtasks token --business-id 1 --role operator\n"
            "\nPress Ctrl-C to stop everything.\n"
            f"Dev token (business 1, admin):\n{admin}",
            flush=True,
        )
        while not stopping:
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping", file=sys.stderr)
                    stopping = True
                    exit_code = 1
            time.sleep(0.5)
    except SystemExit as exc:
        print(f"start-up failed: {exc}", file=sys.stderr)
        exit_code = 1
    finally:
        print("\nstopping...", flush=True)
        for name, proc in reversed(children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            print(f"  {name} stopped", flush=True)
        if pg is not None:
            pg.cleanup()
    return exit_code
