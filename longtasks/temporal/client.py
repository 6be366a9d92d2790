from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from temporalio.client import Client, Interceptor
from temporalio.runtime import Runtime

from longtasks.observability.tracing import temporal_interceptors
from longtasks.settings import Settings

log = logging.getLogger("longtasks.temporal")


async def connect(
    settings: Settings, *, runtime: Runtime | None = None, wait_s: float = 60.0
) -> Client:
    """A client; with tracing configured it carries the OpenTelemetry interceptor, which a
    worker built on it inherits. `runtime`: the worker's, with its Prometheus endpoint.

    A Temporal server that was just started (or restarted) accepts connections before its
    frontend is healthy; keep trying for `wait_s` rather than failing the process.
    """
    return await connect_address(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        interceptors=temporal_interceptors(settings),
        runtime=runtime,
        wait_s=wait_s,
    )


async def connect_address(
    address: str,
    *,
    namespace: str = "default",
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
    wait_s: float = 60.0,
) -> Client:
    deadline = asyncio.get_running_loop().time() + wait_s
    delay = 0.2
    while True:
        try:
            return await Client.connect(
                address,
                namespace=namespace,
                interceptors=interceptors,
                runtime=runtime,
            )
        except RuntimeError as exc:
            if asyncio.get_running_loop().time() + delay > deadline:
                raise
            log.info("Temporal at %s not ready (%s); retrying", address, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
