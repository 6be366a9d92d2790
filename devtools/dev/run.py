"""`longtasks dev`: everything on embedded defaults, one Ctrl-C to stop it all.

Postgres (DATABASE_URL, else embedded pgserver under .data/), migrations, the Temporal dev server
(SQLite under .data/, so state survives a restart), the sandbox providers, the worker and the
API, each its own process, started in dependency order and stopped in reverse. The terminal
shows a line per step and then the addresses (`devtools.dev.screen`); all other output goes to
`DATA_DIR/dev.log` (`devtools.dev.log`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from types import FrameType

from rich.console import Console

from devtools.dev.demo_gmail import DEMO_MAILBOX, connect_demo_mailbox, ensure_demo_schedule
from devtools.dev.log import DevLog
from devtools.dev.processes import child_env, self_command, temporal_dev_command, wait_for_port
from devtools.dev.screen import TAIL_LINES, Addresses, DevScreen, StepFailed
from devtools.embedded_postgres import app_url, start_embedded_postgres
from longtasks.auth.tokens import dev_token
from longtasks.db.engine import create_engine
from longtasks.db.repositories.businesses import ensure_business
from longtasks.domain import Role
from longtasks.settings import Settings


class _Stop(BaseException):
    """Ctrl-C or SIGTERM: stop what has started, in reverse. A BaseException, like
    KeyboardInterrupt, so that no step reports it as its own failure."""


async def seed(database_url: str) -> None:
    """Two businesses, so tenant isolation can be tried at once."""
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await ensure_business(conn, 1, name="Demo business")
            await ensure_business(conn, 2, name="Another business")
    finally:
        await engine.dispose()


def run_dev(settings: Settings, console: Console | None = None) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = DevLog.open(settings.data_dir)
    # soft_wrap: long lines (the token) are left whole for the terminal, or a file, to take.
    screen = DevScreen(console or Console(highlight=False, soft_wrap=True), log.path)
    env = child_env(DATA_DIR=str(settings.data_dir))
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    pg = None

    def start(name: str, cmd: list[str], port: tuple[str, int] | None, timeout: float) -> int:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log.file, stderr=subprocess.STDOUT, start_new_session=True
        )
        children.append((name, proc))
        if port is not None:
            wait_for_port(*port, timeout_s=timeout, proc=proc)
        return proc.pid

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    exit_code = 0
    screen.starting()
    try:
        with log.capturing_logging():
            with screen.step("Postgres") as step:
                if settings.database_url:
                    database_url = settings.database_url
                    owner_url = settings.migration_database_url or database_url
                    step.detail = "DATABASE_URL"
                else:
                    pg = start_embedded_postgres(settings.data_dir)
                    # Its superuser owns the schema; the services connect as the
                    # application's role, as in production.
                    owner_url = str(pg.get_uri())
                    database_url = app_url(owner_url)
                    step.detail = f"embedded, data in {settings.data_dir / 'pgdata'}"
            env["DATABASE_URL"] = database_url
            env["MIGRATION_DATABASE_URL"] = owner_url
            with screen.step("migrations") as step:
                # Imported here: alembic logs its plugin set-up at import, and that belongs
                # in the log, which this process's logging goes to only from here on.
                from alembic.script import ScriptDirectory

                from migrations.runner import alembic_config, migrate

                migrate(owner_url, database_url)
                # The demo's rows span two businesses: written as the owner.
                asyncio.run(seed(owner_url))
                asyncio.run(connect_demo_mailbox(owner_url, settings))
                head = ScriptDirectory.from_config(alembic_config(owner_url)).get_current_head()
                step.detail = f"at {head}; demo businesses 1 and 2, Gmail {DEMO_MAILBOX}"
            host, _, port = settings.temporal_address.rpartition(":")
            with screen.step("Temporal") as step:
                start("temporal", temporal_dev_command(settings), (host, int(port)), 60)
                step.detail = (
                    f"{settings.temporal_address}, state in {settings.data_dir / 'temporal.db'}"
                )
            with screen.step("sandbox") as step:
                address = (settings.sandbox_host, settings.sandbox_port)
                start("sandbox", self_command("sandbox"), address, 30)
                step.detail = f"WhatsApp and Gmail APIs on {address[0]}:{address[1]}"
            with screen.step("worker") as step:
                pid = start("worker", self_command("worker"), None, 0)
                schedule = asyncio.run(ensure_demo_schedule(settings))
                step.detail = f"pid {pid}; Gmail sync schedule {schedule}"
            with screen.step("API") as step:
                address = (settings.api_host, settings.api_port)
                start("api", self_command("api"), address, 60)
                step.detail = settings.public_base_url
            admin = dev_token(settings, business_id=1, role=Role.admin, subject="dev-admin")
            base = settings.public_base_url
            screen.running(
                Addresses(
                    web_page=f"{base}/#token={admin}",
                    api=f"{base}/api",
                    docs=f"{base}/docs",
                    temporal_ui=f"http://{host}:{settings.temporal_ui_port}",
                    sandbox=(
                        f"http://{settings.sandbox_host}:{settings.sandbox_port}/sandbox/stats"
                    ),
                    token=admin,
                )
            )
            while True:
                for name, proc in children:
                    if proc.poll() is not None:
                        screen.child_exited(name, proc.returncode)
                        raise StepFailed(name)
                time.sleep(0.5)
    except _Stop:
        pass
    except StepFailed:
        screen.failed(log.tail(TAIL_LINES))
        exit_code = 1
    finally:
        # A second Ctrl-C while stopping would leave processes behind: ignore it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        screen.stopping()
        for name, proc in reversed(children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            screen.stopped(name)
        if pg is not None:
            with log.capturing_logging():
                pg.cleanup()
            # pgserver's exit hook runs again at interpreter exit, after the log is closed, and
            # says at INFO that there is nothing left to do: not worth a line on the screen.
            logging.getLogger("pgserver").setLevel(logging.WARNING)
            screen.stopped("Postgres")
        screen.all_stopped()
        log.close()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    return exit_code
