"""Worker metrics: Temporal's SDK metrics and ours, on one Prometheus endpoint.

The worker's Temporal `Runtime` serves Prometheus on `WORKER_METRICS_HOST:WORKER_METRICS_PORT`
(`temporal_*`: task slots, poll latency, activity and workflow task latencies ...). Our own
`longtasks_*` instruments are created on the same runtime's meter (`activity.metric_meter()`
inside an activity), so one scrape target has both and there is no second registry or port.
Inside an activity the meter also labels each series with `activity_type`, `namespace` and
`task_queue`. Outside an activity (unit use) the helpers do nothing.

The API has its own registry (prometheus_client) and `/metrics`: see `api/metrics.py`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from longtasks.settings import Settings

ITEMS_PROCESSED = "longtasks_items_processed_total"
PROVIDER_REQUEST_SECONDS = "longtasks_provider_request_seconds"
PROVIDER_ERRORS = "longtasks_provider_errors_total"
TASKS_FINISHED = "longtasks_tasks_finished_total"
NOTIFICATIONS = "longtasks_notifications_total"
CLEANUP_DELETED = "longtasks_cleanup_deleted_tasks_total"

_LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]


def worker_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime exporting Prometheus metrics; None when WORKER_METRICS_PORT is 0."""
    if settings.worker_metrics_port <= 0:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"{settings.worker_metrics_host}:{settings.worker_metrics_port}",
                durations_as_seconds=True,
                histogram_bucket_overrides={PROVIDER_REQUEST_SECONDS: _LATENCY_BUCKETS},
            )
        )
    )


def _meter() -> MetricMeter | None:
    try:
        return activity.metric_meter()
    except RuntimeError:  # not in an activity
        return None


def task_type_of_activity() -> str:
    """`broadcast.send_page` -> `broadcast`: activity names start with their task type."""
    try:
        return activity.info().activity_type.partition(".")[0]
    except RuntimeError:
        return "unknown"


def count_items(task_type: str, *, succeeded: int, failed: int, skipped: int = 0) -> None:
    """Items that just settled, by task type and outcome (each item counted once)."""
    meter = _meter()
    if meter is None:
        return
    counter = meter.create_counter(ITEMS_PROCESSED, "Items settled, by task type and outcome")
    # Skipped items are counted among `succeeded` by the ledger; report them apart here.
    for outcome, count in (
        ("succeeded", succeeded - skipped),
        ("failed", failed),
        ("skipped", skipped),
    ):
        if count > 0:
            counter.add(count, {"task_type": task_type, "outcome": outcome})


def count_finished(task_type: str, status: str) -> None:
    meter = _meter()
    if meter is not None:
        meter.create_counter(TASKS_FINISHED, "Tasks that reached a terminal status").add(
            1, {"task_type": task_type, "status": status}
        )


def count_notification(channel: str, outcome: str) -> None:
    meter = _meter()
    if meter is not None:
        meter.create_counter(NOTIFICATIONS, "Task-finished notifications, by outcome").add(
            1, {"channel": channel, "outcome": outcome}
        )


def count_cleanup(deleted: int) -> None:
    meter = _meter()
    if meter is not None and deleted > 0:
        meter.create_counter(CLEANUP_DELETED, "Terminal tasks deleted by the cleanup").add(deleted)


class ProviderMetrics:
    """Latency and errors of one provider's requests; handed to its client by the worker."""

    def __init__(self, provider: str, classify: Callable[[BaseException], str]) -> None:
        self.provider = provider
        self.classify = classify

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Time one request; an exception is an error of the kind `classify` names."""
        outcome = "ok"
        started = time.perf_counter()
        try:
            yield
        except Exception as exc:
            outcome = self.classify(exc)
            raise
        finally:
            self._record(time.perf_counter() - started, outcome)

    def _record(self, seconds: float, outcome: str) -> None:
        meter = _meter()
        if meter is None:
            return
        attributes = {"provider": self.provider, "outcome": outcome}
        meter.create_histogram_float(
            PROVIDER_REQUEST_SECONDS, "Provider request latency", unit="s"
        ).record(seconds, attributes)
        if outcome != "ok":
            meter.create_counter(PROVIDER_ERRORS, "Provider requests that failed").add(
                1, attributes
            )
