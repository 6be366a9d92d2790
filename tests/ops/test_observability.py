"""JSON logs carry the task's ids; the API's request spans are named by route template."""

from __future__ import annotations

import json
import logging

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from longtasks.observability.logs import JsonFormatter, RequestLogContext, bind
from longtasks.observability.tracing import RequestSpans, temporal_interceptors
from longtasks.settings import Environment, Settings


def _record(**extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "t", "levelname": "INFO", "msg": "hi %s", "args": (1,)})
    record.__dict__.update(extra)
    return record


def test_json_lines_take_ids_from_temporal_context_and_bind() -> None:
    formatter = JsonFormatter()
    activity_record = _record(
        temporal_activity={
            "activity_type": "broadcast.send_page",
            "attempt": 2,
            "workflow_id": "longtask-42",
            "workflow_run_id": "r1",
        }
    )
    with bind(business_id=7):
        line = json.loads(formatter.format(activity_record))
    assert line["message"] == "hi 1"
    assert (line["task_id"], line["workflow_id"], line["business_id"]) == (42, "longtask-42", 7)
    assert line["activity_type"] == "broadcast.send_page" and line["attempt"] == 2
    # Today's workflow ids carry a part unique to the task; the task id is still read off them.
    current = _record(temporal_workflow={"workflow_id": "longtask-43-0123456789ab"})
    assert json.loads(formatter.format(current))["task_id"] == 43
    other = _record(temporal_workflow={"workflow_id": "gmail-sync-kick-43"})
    assert "task_id" not in json.loads(formatter.format(other))
    outside = json.loads(formatter.format(_record(task_id=5)))
    assert outside["task_id"] == 5 and "business_id" not in outside


def test_log_format_defaults() -> None:
    assert Settings(environment=Environment.development).effective_log_format == "text"
    assert Settings(environment=Environment.test).effective_log_format == "json"
    assert Settings(log_format="text", environment=Environment.test).effective_log_format == "text"


async def test_request_spans_and_log_context() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen: list[dict[str, object]] = []
    app = FastAPI()

    @app.get("/api/long_tasks/{task_id}")
    async def one(task_id: int) -> dict[str, int]:
        record = _record()
        seen.append(json.loads(JsonFormatter().format(record)))
        return {"id": task_id}

    app.add_middleware(RequestLogContext)
    app.add_middleware(RequestSpans, tracer=provider.get_tracer("test"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/api/long_tasks/9")).status_code == 200
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["GET /api/long_tasks/{task_id}"]
    assert spans[0].attributes is not None
    assert spans[0].attributes["http.response.status_code"] == 200
    assert seen[0]["task_id"] == 9


def test_tracing_is_off_without_an_endpoint() -> None:
    assert temporal_interceptors(Settings()) == []
    assert len(temporal_interceptors(Settings(otel_exporter_otlp_endpoint="http://c:4318"))) == 1
