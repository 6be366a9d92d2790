"""Structured logs: one JSON object a line, carrying business_id, task_id and workflow_id.

Where the ids come from, most specific first:
- `extra={...}` on the call (`log.info("...", extra={"task_id": 7})`);
- Temporal's own context: `activity.logger` and `workflow.logger` attach the run's details
  (`temporal_activity` / `temporal_workflow` in `extra`), whose workflow id
  (`longtask-{id}-...`) names the task;
- `bind(...)`: a context variable an edge (a request, an activity) sets for its own work.

Every line goes through `redact` last: no credential, email address or phone number is written.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from longtasks.contracts.tasks import TASK_WORKFLOW_ID
from longtasks.observability.redact import redact
from longtasks.settings import Settings

_context: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "longtasks_log_context", default=None
)
# The ASGI scope's state of the request being served: the API's auth puts the principal there.
_request_state: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "longtasks_request_state", default=None
)
# ASCII digits, bigint-sized: int() of an 8000-digit path segment raises (a 500 before routing).
_TASK_PATH = re.compile(r"^/api/long_tasks/([0-9]{1,19})(?:/|\.|$)")
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
# Attributes every LogRecord has; anything else on a record came in through `extra`.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
_TEMPORAL_KEYS = ("temporal_activity", "temporal_workflow")


@contextlib.contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add fields to every log line written inside the block (this task and its children)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def context_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = dict(_context.get() or {})
    for key in _TEMPORAL_KEYS:
        details = getattr(record, key, None)
        if isinstance(details, Mapping):
            for name in ("workflow_id", "run_id", "workflow_run_id", "activity_type", "attempt"):
                if details.get(name) is not None:
                    fields[name] = details[name]
            if details.get("workflow_type") is not None:
                fields["workflow_type"] = details["workflow_type"]
    for name, value in record.__dict__.items():
        if name not in _STANDARD and name not in _TEMPORAL_KEYS:
            fields[name] = value
    state = _request_state.get()
    if state is not None and "business_id" not in fields:
        business_id = getattr(state.get("principal"), "business_id", None)
        if business_id is not None:
            fields["business_id"] = business_id
    workflow_id = fields.get("workflow_id")
    if "task_id" not in fields and isinstance(workflow_id, str):
        match = TASK_WORKFLOW_ID.match(workflow_id)
        if match:
            fields["task_id"] = int(match.group(1))
    return fields


def request_id_of(scope: Scope) -> str:
    """The caller's `X-Request-ID` when it is a sane one (so a trace spans systems), else ours."""
    for name, value in scope.get("headers", []):
        if name == b"x-request-id" and _REQUEST_ID.fullmatch(value):
            return str(value.decode("ascii"))
    return uuid.uuid4().hex


class RequestLogContext:
    """ASGI middleware: every request gets a request id (`X-Request-ID`, echoed in the answer,
    in `scope["state"]["request_id"]` for the audit log); log lines written while serving it
    carry that id, its business_id (once authenticated) and, on `/api/long_tasks/{id}...`, its
    task_id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        request_id = state["request_id"] = request_id_of(scope)
        state_token = _request_state.set(state)
        match = _TASK_PATH.match(scope.get("path", ""))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        fields: dict[str, Any] = {"request_id": request_id}
        if match:
            fields["task_id"] = int(match.group(1))
        try:
            with bind(**fields):
                await self.app(scope, receive, send_with_id)
        finally:
            _request_state.reset(state_token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(context_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """Human lines for development, with the ids appended when there are any."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = {
            k: v
            for k, v in context_fields(record).items()
            if k in ("business_id", "task_id", "workflow_id", "request_id")
        }
        if ids:
            line += " " + " ".join(f"{k}={v}" for k, v in ids.items())
        return redact(line)


def configure_logging(settings: Settings) -> None:
    """Route every logger (ours, uvicorn's, temporalio's) through one stderr handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if settings.effective_log_format == "json" else TextFormatter()
    )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
