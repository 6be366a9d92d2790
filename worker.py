"""The worker: the composition root. settings -> engine -> adapters -> activity objects -> Worker.

`longtasks worker` runs it; tests call `build_worker` with their own task queue.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker

from activities.broadcast import BroadcastActivities, BroadcastTuning
from activities.cleanup import CleanupActivities
from activities.notify import NotifyActivities
from activities.pacing import SenderPacer
from activities.pages import PageTuning
from activities.receipt_sync import ReceiptSyncActivities, SyncTuning
from activities.receipts import ReceiptDeleteActivities
from activities.tasks import TaskActivities
from longtasks.db.engine import create_engine
from longtasks.db.repositories.gmail import TokenCipher
from longtasks.observability.logs import configure_logging
from longtasks.observability.metrics import ProviderMetrics, worker_runtime
from longtasks.observability.tracing import setup_tracing
from longtasks.providers.gmail import GmailApi, GmailHttpClient
from longtasks.providers.whatsapp import WhatsAppCloudClient, WhatsAppSender, error_kind
from longtasks.settings import Settings
from longtasks.temporal.cleanup_schedule import ensure_cleanup_schedule
from longtasks.temporal.client import connect
from workflows.broadcast import BroadcastWorkflow
from workflows.cleanup import CleanupWorkflow
from workflows.receipts import (
    ReceiptDeleteWorkflow,
    ReceiptSyncKickWorkflow,
    ReceiptSyncWorkflow,
)

# SIGTERM: pages in flight get this long to finish and settle what they sent.
GRACEFUL_SHUTDOWN_S = 30

log = logging.getLogger("longtasks.worker")

WORKFLOWS = [BroadcastWorkflow, CleanupWorkflow]
WORKFLOWS += [ReceiptDeleteWorkflow, ReceiptSyncWorkflow, ReceiptSyncKickWorkflow]


@dataclass
class WorkerDeps:
    engine: AsyncEngine
    whatsapp: WhatsAppSender
    # None: receipt syncs on this worker fail with a clear error (no Gmail client configured).
    gmail: GmailApi | None = None


def page_tuning(settings: Settings) -> PageTuning:
    return PageTuning(
        page_size=settings.broadcast_page_size,
        window=settings.page_window,
        pages_per_run=settings.pages_per_run,
        heartbeat_timeout_s=settings.heartbeat_timeout_s,
        cancel_poll_interval_s=settings.cancel_poll_interval_s,
    )


def build_worker(
    client: Client,
    settings: Settings,
    deps: WorkerDeps,
    *,
    task_queue: str | None = None,
) -> Worker:
    tasks = TaskActivities(deps.engine)
    broadcast = BroadcastActivities(
        deps.engine,
        deps.whatsapp,
        BroadcastTuning(
            pages=page_tuning(settings),
            send_concurrency=settings.send_concurrency,
            default_messages_per_s=settings.whatsapp_default_messages_per_s,
        ),
        SenderPacer(deps.engine),
    )
    notify = NotifyActivities(deps.engine, settings)
    cleanup = CleanupActivities(deps.engine)
    queue = task_queue or settings.temporal_task_queue
    receipt_delete = ReceiptDeleteActivities(
        deps.engine, page_tuning(settings), settings.receipt_delete_page_size
    )
    receipt_sync = ReceiptSyncActivities(
        deps.engine,
        deps.gmail,
        TokenCipher(settings.encryption_key),
        SyncTuning(
            pages=page_tuning(settings),
            fetch_page_size=settings.gmail_fetch_page_size,
            list_page_size=settings.gmail_list_page_size,
            fetch_concurrency=settings.gmail_fetch_concurrency,
        ),
        client=client,
        task_queue=queue,
    )
    return Worker(
        client,
        task_queue=task_queue or settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=[
            tasks.mark_running,
            tasks.request_cancel,
            tasks.set_status_reason,
            tasks.finish,
            broadcast.begin,
            broadcast.send_page,
            notify.notify_finished,
            cleanup.delete_batch,
            receipt_delete.begin,
            receipt_delete.delete_page,
            receipt_sync.start,
            receipt_sync.list_page,
            receipt_sync.begin,
            receipt_sync.fetch_page,
            receipt_sync.complete,
            receipt_sync.start_scheduled,
        ],
        max_concurrent_activities=settings.max_concurrent_activities,
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


async def run_worker(settings: Settings) -> None:
    configure_logging(settings)
    setup_tracing(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve_worker(settings, stop)


async def serve_worker(settings: Settings, stop: asyncio.Event) -> None:
    """The worker process's body until `stop` is set (tests run it with their own event)."""
    async with AsyncExitStack() as stack:
        engine = create_engine(settings.require_database_url(), pool_size=settings.db_pool_size)
        stack.push_async_callback(engine.dispose)
        session = whatsapp_session(settings)
        stack.push_async_callback(session.close)
        # Temporal's SDK metrics and our longtasks_* on WORKER_METRICS_PORT (0 = off).
        client = await connect(settings, runtime=worker_runtime(settings))
        schedule_id = await ensure_cleanup_schedule(client, settings)
        log.info("cleanup schedule %s is in place", schedule_id)
        worker = build_worker(
            client,
            settings,
            WorkerDeps(
                engine=engine,
                whatsapp=whatsapp_client(settings, session),
                gmail=gmail_client(settings, session),
            ),
        )
        log.info("worker polling task queue %s", settings.temporal_task_queue)
        async with worker:
            await stop.wait()
            log.info("shutting down: letting in-flight pages settle")


if __name__ == "__main__":
    asyncio.run(run_worker(Settings()))
