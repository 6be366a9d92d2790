"""What the CLI tests share: task JSON as the API answers it, a fake terminal, an event stream
whose clock advances with each snapshot, and an ApiClient on a scripted transport."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx

from cli.rest import ApiClient


def task_json(**overrides: Any) -> dict[str, Any]:
    task: dict[str, Any] = {
        "id": 7,
        "business_id": 1,
        "task_type": "broadcast",
        "status": "running",
        "total_items": 200,
        "processed_items": 50,
        "success_count": 48,
        "failed_count": 2,
        "skipped_count": 0,
        "cancelled_count": 0,
        "progress_pct": 25.0,
        "cancel_requested": False,
        "error_message": None,
        "created_at": "2026-01-01T10:00:00Z",
        "started_at": "2026-01-01T10:00:01Z",
        "completed_at": None,
    }
    task.update(overrides)
    return task


def done_json(status: str = "completed", **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "status": status,
        "processed_items": 200,
        "success_count": 198,
        "failed_count": 2,
        "completed_at": "2026-01-01T10:00:11Z",
    }
    values.update(overrides)
    return task_json(**values)


class TtyStringIO(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    """Seconds that move only when a test (or a scripted answer) says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sse_events(*tasks: dict[str, Any], clock: FakeClock | None = None) -> Iterator[bytes]:
    """An event stream, one chunk an event; `clock` advances a second before each snapshot."""
    yield b"retry: 2000\n\n: keep-alive\n\n"
    for version, task in enumerate(tasks, start=1):
        if clock is not None:
            clock.now += 1.0
        yield f"id: {version}\nevent: task\ndata: {json.dumps(task)}\n\n".encode()


def sse_body(*tasks: dict[str, Any]) -> bytes:
    return b"".join(sse_events(*tasks))


def sse_response(content: bytes | Iterable[bytes]) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=content)


def mock_api(handler: Callable[[httpx.Request], httpx.Response]) -> ApiClient:
    return ApiClient("http://api.test", "tok", transport=httpx.MockTransport(handler))
