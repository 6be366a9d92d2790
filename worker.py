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
from activities.pacing import SenderPacer
from activities.pages import PageTuning
from activities.tasks import TaskActivities
from db.embedded import resolve_database_url
from db.engine import create_engine
from providers.whatsapp import WhatsAppCloudClient, WhatsAppSender
from settings import Settings
from temporal_client.client import connect
from workflows.broadcast import BroadcastWorkflow

log = logging.getLogger("longtasks.worker")

WORKFLOWS = [BroadcastWorkflow]


@dataclass
class WorkerDeps:
    engine: AsyncEngine
    whatsapp: WhatsAppSender


def page_tuning(settings: Settings) -> PageTuning:
    return PageTuning(
        page_size=settings.broadcast_page_size,
        window=settings.page_window,
        pages_per_run=settings.pages_per_run,
        heartbeat_timeout_s=settings.heartbeat_timeout_s,
        cancel_poll_interval_s=settings.cancel_poll_interval_s,
    )


def build_worker(
    client: Client, settings: Settings, deps: WorkerDeps, *, task_queue: str | None = None
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
        ],
        max_concurrent_activities=settings.max_concurrent_activities,
        # SIGTERM: let pages in flight settle what they sent before the process exits.
        graceful_shutdown_timeout=timedelta(seconds=30),
    )


def whatsapp_session(settings: Settings) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=settings.send_concurrency * 2, ttl_dns_cache=300)
    )


def whatsapp_client(settings: Settings, session: aiohttp.ClientSession) -> WhatsAppCloudClient:
    return WhatsAppCloudClient(
        session,
        base_url=settings.whatsapp_api_base,
        api_version=settings.whatsapp_api_version,
        access_token=settings.whatsapp_access_token,
        timeout_s=settings.whatsapp_request_timeout_s,
    )


async def run_worker(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        engine = create_engine(resolve_database_url(settings), pool_size=settings.db_pool_size)
        stack.push_async_callback(engine.dispose)
        session = whatsapp_session(settings)
        stack.push_async_callback(session.close)
        client = await connect(settings)
        worker = build_worker(
            client, settings, WorkerDeps(engine=engine, whatsapp=whatsapp_client(settings, session))
        )
        log.info("worker polling task queue %s", settings.temporal_task_queue)
        async with worker:
            await stop.wait()
            log.info("shutting down: letting in-flight pages settle")


if __name__ == "__main__":
    asyncio.run(run_worker(Settings()))
