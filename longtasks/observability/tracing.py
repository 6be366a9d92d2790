"""OpenTelemetry tracing across the API, workflows and activities, on only when configured.

With `OTEL_EXPORTER_OTLP_ENDPOINT` set, each process installs an OTLP/HTTP exporter, the API
opens a server span per request, and Temporal clients (the API's and the worker's) carry
`temporalio.contrib.opentelemetry.TracingInterceptor`: a request's span is the parent of the
workflow start, the workflow's spans and every activity's. Without it nothing is installed and
the OpenTelemetry API stays a no-op.
"""

from __future__ import annotations

import time
from typing import Any

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Interceptor

from longtasks.settings import Settings

_installed = False


def setup_tracing(settings: Settings) -> bool:
    """Install the global tracer provider once per process; False when tracing is off."""
    global _installed  # noqa: PLW0603 - one provider per process, by OpenTelemetry's design
    if not settings.otel_exporter_otlp_endpoint:
        return False
    if _installed:
        return True
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/")
    if not endpoint.endswith("/v1/traces"):
        endpoint += "/v1/traces"
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.otel_service_name})
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    _installed = True
    return True


def temporal_interceptors(settings: Settings) -> list[Interceptor]:
    """The client interceptors for Temporal; a worker built on the client inherits them."""
    if not settings.otel_exporter_otlp_endpoint:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


class RequestSpans:
    """A server span per HTTP request, named by its route template (`GET /api/long_tasks/{id}`).

    A small ASGI middleware instead of opentelemetry-instrumentation-fastapi: one span with the
    method, route and status is all the traces need, and it keeps the dependency list short.
    """

    def __init__(self, app: ASGIApp, tracer: trace.Tracer | None = None) -> None:
        self.app = app
        self.tracer = tracer or trace.get_tracer("longtasks.api")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        status = 500
        started = time.perf_counter()
        with self.tracer.start_as_current_span(
            f"{method} {scope.get('path', '')}", kind=trace.SpanKind.SERVER
        ) as span:

            async def traced_send(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, traced_send)
            finally:
                route = route_of(scope)
                span.update_name(f"{method} {route}")
                attributes: dict[str, Any] = {
                    "http.request.method": method,
                    "http.route": route,
                    "http.response.status_code": status,
                    "longtasks.duration_ms": round((time.perf_counter() - started) * 1000, 1),
                }
                span.set_attributes(attributes)
                if status >= 500:
                    span.set_status(trace.Status(trace.StatusCode.ERROR))


def route_of(scope: Scope) -> str:
    """The matched route's template, so ids never become span names or metric labels."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "unmatched"
