"""The REST API's client for the CLI: requests, errors a user can read, and the task event stream.

The API's base URL comes from `LONGTASKS_API` (default http://127.0.0.1:8000) and the bearer
token from `LONGTASKS_TOKEN` (`longtasks token --business-id N --role operator` prints one).
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from cli.errors import CliError
from longtasks.domain import TaskStatus, TaskType

API_ENV = "LONGTASKS_API"
TOKEN_ENV = "LONGTASKS_TOKEN"  # noqa: S105 - the variable's name, not a secret
DEFAULT_API = "http://127.0.0.1:8000"

REQUEST_TIMEOUT_S = 30.0
# The server sends a keep-alive comment every 15 s (SSE_KEEPALIVE_S); silence far longer than
# that means the stream is dead and the watcher falls back to polling.
SSE_READ_TIMEOUT_S = 60.0

JSON = dict[str, Any]


class ApiError(CliError):
    """The API answered with an error status; `detail` is what the server said."""

    def __init__(self, status_code: int, detail: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail


class EventsUnavailable(Exception):
    """The server has no event stream for this task (404/405, or not `text/event-stream`)."""


def describe_detail(detail: object) -> str:
    """The server's `detail`: a string, or FastAPI's list of validation errors (422)."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for entry in detail:
            if isinstance(entry, Mapping):
                loc = [str(p) for p in entry.get("loc", []) if p not in ("body", "query", "path")]
                msg = str(entry.get("msg", entry))
                parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
            else:
                parts.append(str(entry))
        return "; ".join(parts)
    if detail is None:
        return ""
    return json.dumps(detail, ensure_ascii=False)


_STATUS_TEXT = {
    400: "bad request",
    401: "not authenticated",
    403: "permission denied",
    404: "not found",
    409: "conflict",
    413: "too large",
    422: "invalid request",
    429: "rate limited",
    503: "service unavailable",
}


def api_error(response: httpx.Response) -> ApiError:
    """An ApiError whose message names the status and shows the server's `detail`."""
    try:
        body = response.json()
        detail = describe_detail(body.get("detail") if isinstance(body, dict) else body)
    except ValueError:
        detail = response.text.strip()[:300]
    status = response.status_code
    label = _STATUS_TEXT.get(status, response.reason_phrase or "error").lower()
    message = f"{label} (HTTP {status})"
    if detail:
        message += f": {detail}"
    if status == 401:
        message += (
            f" - set {TOKEN_ENV} to a valid token"
            " (`longtasks token --business-id N --role operator` prints one)"
        )
    elif status == 403 and (not detail or "role" in detail):
        # Other refusals (the creator approving their own task) name their own reason.
        message += f" - the token in {TOKEN_ENV} has too weak a role for this"
    return ApiError(status, detail, message)


@dataclass
class SseEvent:
    event: str
    data: str
    id: str | None


class SseParser:
    """Server-Sent Events, line by line (https://html.spec.whatwg.org/#event-stream-interpretation)."""

    def __init__(self) -> None:
        self.last_event_id: str | None = None
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> SseEvent | None:
        """One line without its line ending; returns an event at each blank line ending one."""
        if line == "":
            if not self._data:
                self._event = ""
                return None
            event = SseEvent(self._event or "message", "\n".join(self._data), self.last_event_id)
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        return None


class ApiClient:
    """The REST API, synchronously (a CLI does one thing at a time)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout_s,
            transport=transport,
        )
        self._timeout_s = timeout_s

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ApiClient:
        env = os.environ if environ is None else environ
        token = env.get(TOKEN_ENV, "").strip()
        if not token:
            raise CliError(
                f"{TOKEN_ENV} is not set: get a token with"
                " `longtasks token --business-id N --role operator` and export it"
            )
        return cls(env.get(API_ENV, "").strip() or DEFAULT_API, token)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unreachable(self, exc: httpx.TransportError) -> CliError:
        return CliError(
            f"cannot reach the API at {self.base_url}: {exc or type(exc).__name__}"
            f" (is `longtasks api` running? set {API_ENV} to its URL)"
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str | int] | None = None,
    ) -> tuple[int, Any]:
        try:
            response = self._http.request(method, path, json=json_body, params=params)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise api_error(response)
        if response.status_code == 204 or not response.content:
            return response.status_code, None
        try:
            return response.status_code, response.json()
        except ValueError as exc:
            raise CliError(f"the API answered {method} {path} with non-JSON: {exc}") from exc

    def start_broadcast(self, body: Mapping[str, Any]) -> JSON:
        _, data = self.request("POST", "/api/broadcasts", json_body=dict(body))
        return json_object(data)

    def list_tasks(
        self,
        *,
        task_type: TaskType | None = None,
        status: TaskStatus | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JSON:
        params: dict[str, str | int] = {}
        if task_type:
            params["task_type"] = task_type
        if status:
            params["status"] = status
        if limit:
            params["limit"] = limit
        if cursor:
            params["cursor"] = cursor
        _, data = self.request("GET", "/api/long_tasks", params=params)
        return json_object(data)

    def get_task(self, task_id: int) -> JSON:
        _, data = self.request("GET", f"/api/long_tasks/{task_id}")
        return json_object(data)

    def cancel_task(self, task_id: int, reason: str | None = None) -> tuple[int, JSON]:
        """(HTTP status, task): 202 while it is being cancelled, 200 when already terminal."""
        body = {"reason": reason} if reason else None
        status, data = self.request("POST", f"/api/long_tasks/{task_id}/cancel", json_body=body)
        return status, json_object(json_object(data).get("task"))

    def control_task(
        self, task_id: int, verb: str, body: Mapping[str, Any] | None = None
    ) -> tuple[int, JSON]:
        """`pause`, `resume`, `approve` or `reject`: (HTTP status, task). 202 when the call
        changed the task, 200 when it already was as asked; a refusal raises ApiError."""
        status, data = self.request(
            "POST", f"/api/long_tasks/{task_id}/{verb}", json_body=dict(body) if body else None
        )
        return status, json_object(json_object(data).get("task"))

    def retry_failed(self, task_id: int, error_codes: list[str] | None = None) -> JSON:
        """`POST /api/long_tasks/{id}/retry_failed`: the new task and how many items it holds."""
        body = {"error_codes": error_codes} if error_codes else None
        _, data = self.request("POST", f"/api/long_tasks/{task_id}/retry_failed", json_body=body)
        return json_object(data)

    def policy(self, changes: Mapping[str, Any] | None = None) -> JSON:
        """`GET /api/policy`, or `PUT` it with `changes` (fields left out keep their value,
        None turns one off): the business's policy after it."""
        if changes is None:
            _, data = self.request("GET", "/api/policy")
        else:
            _, data = self.request("PUT", "/api/policy", json_body=dict(changes))
        return json_object(data)

    def task_events(self, task_id: int) -> Generator[JSON, None, None]:
        """The task's snapshots from `GET /api/long_tasks/{id}/events`, until the stream ends.

        Raises EventsUnavailable when the server has no such stream, ApiError for 401/403,
        httpx.TransportError or ValueError when the stream breaks.
        """
        timeout = httpx.Timeout(self._timeout_s, read=SSE_READ_TIMEOUT_S)
        with self._http.stream(
            "GET",
            f"/api/long_tasks/{task_id}/events",
            headers={"Accept": "text/event-stream"},
            timeout=timeout,
        ) as response:
            if response.status_code in (404, 405):
                raise EventsUnavailable(f"HTTP {response.status_code}")
            if response.status_code >= 400:
                response.read()
                raise api_error(response)
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith("text/event-stream"):
                raise EventsUnavailable(f"content-type {content_type!r}")
            parser = SseParser()
            for line in response.iter_lines():
                event = parser.feed(line)
                if event is not None and event.event in ("task", "message") and event.data:
                    yield json_object(json.loads(event.data))


def json_object(data: Any) -> JSON:
    """`data` when it is a JSON object; anything else is an unexpected answer."""
    if not isinstance(data, dict):
        raise CliError(f"unexpected answer from the API: {str(data)[:200]}")
    return data
