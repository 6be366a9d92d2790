"""The worker: the composition root. settings -> engine -> adapters -> registry -> Worker.

What the worker runs is the task-type registry's (`task_types/`): every task type's workflow and
activities, and the components beside them (task rows, cleanup, the Gmail Schedule's kick).
`longtasks worker` runs the built-in registry; tests call `build_worker` with their own task
queue, and may pass a registry of their own.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import sys
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import NoReturn

import aiohttp
from temporalio.client import Client
from temporalio.worker import Worker

from longtasks.db.engine import create_engine
from longtasks.db.tenancy import require_walled_role
from longtasks.observability.logs import configure_logging
from longtasks.observability.metrics import ProviderMetrics, worker_runtime
from longtasks.observability.tracing import setup_tracing
from longtasks.providers.gmail import GmailHttpClient
from longtasks.providers.whatsapp import WhatsAppCloudClient, error_kind
from longtasks.settings import Environment, Settings
from longtasks.temporal.client import connect
from longtasks.temporal.tenancy import ActForTheTask
from task_types import BUILTIN
from task_types.registry import Registry, WorkerContext, WorkerDeps

# SIGTERM: pages in flight get this long to finish and settle what they sent.
GRACEFUL_SHUTDOWN_S = 30

log = logging.getLogger("longtasks.worker")


def build_worker(
    client: Client,
    settings: Settings,
    deps: WorkerDeps,
    *,
    task_queue: str | None = None,
    registry: Registry = BUILTIN,
) -> Worker:
    """A Worker running every workflow and activity the registry names."""
    queue = task_queue or settings.temporal_task_queue
    context = WorkerContext(deps=deps, settings=settings, client=client, task_queue=queue)
    return Worker(
        client,
        task_queue=queue,
        workflows=registry.workflows(),
        activities=registry.activities(context),
        max_concurrent_activities=settings.max_concurrent_activities,
        # Each activity acts for its task's business: the database shows it no other's rows.
        interceptors=[ActForTheTask(deps.engine)],
        # SIGTERM: let pages in flight settle what they sent before the process exits.
        graceful_shutdown_timeout=timedelta(seconds=GRACEFUL_SHUTDOWN_S),
    )


def whatsapp_session(settings: Settings) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.send_concurrency * 2, ttl_dns_cache=300)
    )


def gmail_client(settings: Settings, session: aiohttp.ClientSession) -> GmailHttpClient:
    return GmailHttpClient(
        session,
        settings.gmail_api_base,
        settings.gmail_token_endpoint,
        settings.gmail_client_id,
        settings.gmail_client_secret,
        settings.gmail_quota_units_per_s,
        timeout_s=settings.gmail_request_timeout_s,
    )


def whatsapp_client(settings: Settings, session: aiohttp.ClientSession) -> WhatsAppCloudClient:
    return WhatsAppCloudClient(
        session,
        base_url=settings.whatsapp_api_base,
        api_version=settings.whatsapp_api_version,
        access_token=settings.whatsapp_access_token,
        timeout_s=settings.whatsapp_request_timeout_s,
        metrics=ProviderMetrics("whatsapp", error_kind),
    )


async def run_worker(settings: Settings, registry: Registry = BUILTIN) -> None:
    configure_logging(settings)
    setup_tracing(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve_worker(settings, stop, registry)


async def serve_worker(
    settings: Settings, stop: asyncio.Event, registry: Registry = BUILTIN
) -> None:
    """The worker process's body until `stop` is set (tests run it with their own event)."""
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.require_database_url(), pool_size=settings.db_pool_size)
        stack.push_async_callback(engine.dispose)
        await require_walled_role(engine, refuse=settings.environment is Environment.production)
        session = whatsapp_session(settings)
        stack.push_async_callback(session.close)
        # Temporal's SDK metrics and our longtasks_* on WORKER_METRICS_PORT (0 = off).
        client = await connect(settings, runtime=worker_runtime(settings))
        added = await registry.ensure_in_database(engine)
        if added:
            log.info("task types registered in the database: %s", ", ".join(added))
        await registry.on_worker_start(client, settings)
        worker = build_worker(
            client,
            settings,
            WorkerDeps(
                engine=engine,
                whatsapp=whatsapp_client(settings, session),
                gmail=gmail_client(settings, session),
            ),
            registry=registry,
        )
        log.info("worker polling task queue %s", settings.temporal_task_queue)
        async with worker:
            await stop.wait()
            log.info("shutting down: letting in-flight pages settle")


def main(settings: Settings) -> NoReturn:
    """The worker process from start to exit (the `longtasks worker` command)."""
    asyncio.run(run_worker(settings))
    # Temporal's core (Rust, its Tokio threads) can still call into Python while the
    # interpreter finalizes, and the process then aborts after a clean shutdown (SIGABRT,
    # "PyGILState_Release: thread state ... must be current when releasing";
    # temporalio/sdk-python#300; met by the SIGTERM fault test on a loaded machine). By now
    # every page has settled and every resource is closed: run the exit handlers ourselves
    # (logs, the tracer's last export, an embedded Postgres's stop) and leave before
    # finalization, so a graceful shutdown exits 0.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(Settings())
