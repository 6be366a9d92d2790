from __future__ import annotations

from temporalio.client import Client
from temporalio.runtime import Runtime

from observability.tracing import temporal_interceptors
from settings import Settings


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client; with tracing configured it carries the OpenTelemetry interceptor, which a
    worker built on it inherits. `runtime`: the worker's, with its Prometheus endpoint."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        interceptors=temporal_interceptors(settings),
        runtime=runtime,
    )
