"""The API's Prometheus metrics: request latency by route, and tasks by type and status.

Its own `CollectorRegistry` per app (never the process-global one), so several apps in one
process (tests) do not collide. `longtasks_tasks` is computed from Postgres at scrape time
(one GROUP BY over an indexed column), so it is right whichever API replica is scraped.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from longtasks.observability.tracing import route_of

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "longtasks_http_request_duration_seconds",
            "HTTP request latency by method, route template and status",
            ["method", "route", "status"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.tasks = Gauge(
            "longtasks_tasks",
            "Tasks by type and status (all businesses), read from Postgres at scrape time",
            ["task_type", "status"],
            registry=self.registry,
        )

    def set_task_counts(self, counts: list[tuple[str, str, int]]) -> None:
        # Series whose count went to zero must say 0, not keep their last value.
        self.tasks.clear()
        for task_type, status, count in counts:
            self.tasks.labels(task_type=task_type, status=status).set(count)


class RequestMetrics:
    """Times every HTTP request; streams (SSE) count until their response ends."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self.metrics.request_seconds.labels(
                method=scope.get("method", "GET"), route=route_of(scope), status=str(status)
            ).observe(time.perf_counter() - started)
