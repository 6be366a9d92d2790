"""The CLI's client verbs: `broadcast`, `tasks`, `watch`, `cancel`, over the REST API.

The API's base URL comes from `LONGTASKS_API` (default http://127.0.0.1:8000) and the bearer
token from `LONGTASKS_TOKEN` (`longtasks token --business-id N --role operator` prints one).

Exit codes: 0 the task completed (or the command succeeded), 1 the watched task failed, 2 it was
cancelled, 3 the command itself failed (API error, bad input, API unreachable), 130 the user
stopped watching with Ctrl-C and left the task running.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from cli.progress import (
    RateWindow,
    Snapshot,
    percent,
    render_line,
)

API_ENV = "LONGTASKS_API"
TOKEN_ENV = "LONGTASKS_TOKEN"  # noqa: S105 - the variable's name, not a secret
DEFAULT_API = "http://127.0.0.1:8000"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANCELLED = 2
EXIT_ERROR = 3
EXIT_INTERRUPTED = 130

REQUEST_TIMEOUT_S = 30.0
# The server sends a keep-alive comment every 15 s (SSE_KEEPALIVE_S); silence far longer than
# that means the stream is dead and the watcher falls back to polling.
SSE_READ_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 1.0
MAX_POLL_FAILURES = 30

PHONE_HEADERS = frozenset(
    {"phone", "phones", "phone number", "phone_number", "mobile", "טלפון", "מספר טלפון", "נייד"}
)

JSON = dict[str, Any]


# --------------------------------------------------------------------------- errors


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit code 3."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(CliError):
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
    elif status == 403:
        message += f" - the token in {TOKEN_ENV} has too weak a role for this"
    return ApiError(status, detail, message)


# --------------------------------------------------------------------------- HTTP client


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
        return _object(data)

    def list_tasks(
        self,
        *,
        task_type: str | None = None,
        status: str | None = None,
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
        return _object(data)

    def get_task(self, task_id: int) -> JSON:
        _, data = self.request("GET", f"/api/long_tasks/{task_id}")
        return _object(data)

    def cancel_task(self, task_id: int, reason: str | None = None) -> tuple[int, JSON]:
        """(HTTP status, task): 202 while it is being cancelled, 200 when already terminal."""
        body = {"reason": reason} if reason else None
        status, data = self.request("POST", f"/api/long_tasks/{task_id}/cancel", json_body=body)
        return status, _object(_object(data).get("task"))

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
                    yield _object(json.loads(event.data))


def _object(data: Any) -> JSON:
    if not isinstance(data, dict):
        raise CliError(f"unexpected answer from the API: {str(data)[:200]}")
    return data


# --------------------------------------------------------------------------- recipients


def parse_csv(text: str) -> list[list[str]]:
    """Rows of a CSV (comma, semicolon or tab, guessed from the first line), blank rows dropped."""
    text = text.removeprefix("\ufeff")
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    if first_line.count(delimiter) == 0:
        delimiter = ","
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return [row for row in rows if any(cell.strip() for cell in row)]


def recipients_from_text(text: str) -> list[str]:
    """Phones from a CSV or a plain list (one per line).

    The column named phone/טלפון (any case) when the header has one, else the first column; a
    first row whose first column has no digit is a header and is skipped. Numbers are passed on
    as written: the API normalizes them and reports invalid ones.
    """
    rows = parse_csv(text)
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    column = next((i for i, name in enumerate(header) if name in PHONE_HEADERS), None)
    body = rows
    if column is not None:
        body = rows[1:]
    else:
        column = 0
        first = rows[0][0] if rows[0] else ""
        if not any(ch.isdigit() for ch in first):
            body = rows[1:]
    return [row[column].strip() for row in body if len(row) > column and row[column].strip()]


def read_text_file(path: str, stdin: TextIO | None = None) -> str:
    """UTF-8 (with or without BOM), else Windows-1255 (Hebrew Excel); `-` reads stdin."""
    if path == "-":
        return (stdin or sys.stdin).read()
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1255", errors="replace")


def read_recipients(path: str, stdin: TextIO | None = None) -> list[str]:
    try:
        recipients = recipients_from_text(read_text_file(path, stdin))
    except csv.Error as exc:
        raise CliError(f"{path} is not a readable CSV: {exc}") from exc
    if not recipients:
        raise CliError(f"no phone numbers in {path}")
    return recipients


def default_name(path: str) -> str:
    return "broadcast" if path == "-" else (Path(path).stem or "broadcast")


def broadcast_body(args: argparse.Namespace, recipients: Sequence[str]) -> JSON:
    """The `POST /api/broadcasts` body from the verb's flags."""
    params = list(args.param or [])
    if args.template is not None:
        if not args.language:
            raise CliError("--template needs --language (e.g. --language he)")
        message: JSON = {
            "template": {"name": args.template, "language": args.language, "params": params}
        }
    else:
        if args.language or params:
            raise CliError("--language and --param go with --template, not --text")
        message = {"text": args.text}
    body: JSON = {
        "name": args.name or default_name(args.recipients),
        "message": message,
        "recipients": list(recipients),
    }
    if args.start_at:
        body["start_at"] = args.start_at
    if args.priority:
        body["priority"] = args.priority
    return body


# --------------------------------------------------------------------------- watching


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # closed stream
        return False


def exit_code_for(status: str) -> int:
    return {"completed": EXIT_OK, "failed": EXIT_FAILED, "cancelled": EXIT_CANCELLED}.get(
        status, EXIT_ERROR
    )


class ProgressPrinter:
    """Redraws one line in place on a terminal; elsewhere prints a line per change."""

    def __init__(
        self,
        out: TextIO,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        columns: Callable[[], int] = lambda: shutil.get_terminal_size().columns,
    ) -> None:
        self.out = out
        self.tty = _isatty(out) if tty is None else tty
        self.clock = clock
        self.columns = columns
        self.rates = RateWindow()
        self._last_key: tuple[object, ...] | None = None
        self._drawn = 0  # characters of the line on screen (tty), 0 when none is open

    def show(self, snapshot: Snapshot) -> None:
        self.rates.add(self.clock(), snapshot.processed)
        if self.tty:
            columns = self.columns()
            line = render_line(snapshot, rate=self.rates.rate(), columns=columns)
            # Blank out the rest of a longer previous line, never past the last column.
            pad = " " * max(0, min(self._drawn, columns - 1) - len(line))
            self.out.write("\r" + line + pad)
            self._drawn = max(1, len(line))
        else:
            key = snapshot.change_key()
            if key == self._last_key:
                return
            self._last_key = key
            self.out.write(render_line(snapshot, rate=self.rates.rate()) + "\n")
        self.out.flush()

    def end_line(self) -> None:
        """Ends the redrawn line (before a prompt, a message or the summary)."""
        if self._drawn:
            self.out.write("\n")
            self.out.flush()
            self._drawn = 0


def confirm(prompt: str, stdin: TextIO, err: TextIO) -> bool:
    """A y/N question; No when stdin is not a terminal, at EOF, or on a second Ctrl-C."""
    if not _isatty(stdin):
        err.write(f"{prompt}N (stdin is not a terminal)\n")
        err.flush()
        return False
    err.write(prompt)
    err.flush()
    try:
        answer = stdin.readline()
    except (KeyboardInterrupt, EOFError):
        answer = ""
    if not answer:
        err.write("\n")
        return False
    return answer.strip().lower() in ("y", "yes")


class Watcher:
    """Follows a task to its terminal snapshot: the event stream, else polling once a second."""

    def __init__(
        self,
        api: ApiClient,
        task_id: int,
        printer: ProgressPrinter,
        err: TextIO,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api
        self.task_id = task_id
        self.printer = printer
        self.err = err
        self.poll_interval_s = poll_interval_s
        self.sleep = sleep
        self.use_events = True
        self.seen = False  # a snapshot arrived: from then on, lost connections are retried

    def _show(self, snapshot: Snapshot) -> None:
        self.seen = True
        self.printer.show(snapshot)

    def _note(self, message: str) -> None:
        self.printer.end_line()
        self.err.write(f"longtasks: {message}\n")
        self.err.flush()

    def run(self) -> Snapshot:
        if self.use_events:
            try:
                final = self._follow_events()
            except EventsUnavailable:
                final = None  # an older server: polling is the documented fallback
            except (httpx.TransportError, httpx.StreamError, ValueError, CliError) as exc:
                if isinstance(exc, ApiError) and exc.status_code in (401, 403):
                    raise
                if self.seen:
                    self._note(f"event stream broke ({exc or type(exc).__name__}); polling")
                final = None
            else:
                if final is None:
                    self._note("event stream ended before the task did; polling instead")
            if final is not None:
                return final
            self.use_events = False
        return self._poll()

    def _follow_events(self) -> Snapshot | None:
        events = self.api.task_events(self.task_id)
        with contextlib.closing(events):
            for data in events:
                snapshot = Snapshot.from_json(data)
                self._show(snapshot)
                if snapshot.terminal:
                    return snapshot
        return None

    def _poll(self) -> Snapshot:
        failures = 0
        while True:
            try:
                data = self.api.get_task(self.task_id)
            except CliError as exc:
                # Before the first snapshot a failure is the answer (wrong URL, API down).
                retryable = self.seen and (not isinstance(exc, ApiError) or exc.status_code >= 500)
                failures += 1
                if not retryable or failures >= MAX_POLL_FAILURES:
                    raise
                if failures == 1:
                    self._note(f"{exc.message}; retrying")
                self.sleep(self.poll_interval_s)
                continue
            failures = 0
            snapshot = Snapshot.from_json(data)
            self._show(snapshot)
            if snapshot.terminal:
                return snapshot
            self.sleep(self.poll_interval_s)


def summary_line(snapshot: Snapshot) -> str:
    line = (
        f"task {snapshot.id} {snapshot.status}: {snapshot.processed:,} of {snapshot.total:,}"
        f" processed, {snapshot.success:,} succeeded, {snapshot.failed:,} failed"
    )
    if snapshot.skipped:
        line += f", {snapshot.skipped:,} skipped"
    line += f", {snapshot.cancelled:,} cancelled"
    if snapshot.error_message:
        line += f" ({snapshot.error_message})"
    return line


def watch_task(
    api: ApiClient,
    task_id: int,
    *,
    out: TextIO,
    err: TextIO,
    stdin: TextIO,
    poll_interval_s: float = POLL_INTERVAL_S,
    sleep: Callable[[float], None] = time.sleep,
    printer: ProgressPrinter | None = None,
) -> int:
    """Follows the task to the end; Ctrl-C asks whether to cancel it. Returns the exit code."""
    printer = printer or ProgressPrinter(out)
    watcher = Watcher(api, task_id, printer, err, poll_interval_s=poll_interval_s, sleep=sleep)
    cancel_sent = False
    while True:
        try:
            final = watcher.run()
            break
        except KeyboardInterrupt:
            printer.end_line()
            if cancel_sent:
                err.write(f"stopped watching; task {task_id} is still being cancelled\n")
                return EXIT_INTERRUPTED
            if not confirm(f"Cancel task {task_id}? [y/N] ", stdin, err):
                err.write(
                    f"stopped watching; task {task_id} keeps running"
                    f" (`longtasks watch {task_id}` to follow it again)\n"
                )
                return EXIT_INTERRUPTED
            status, task = api.cancel_task(task_id, "cancelled from the CLI")
            cancel_sent = True
            snapshot = Snapshot.from_json(task)
            if status == 200 or snapshot.terminal:
                err.write(f"task {task_id} had already finished ({snapshot.status})\n")
            else:
                err.write(f"cancel requested; waiting for task {task_id} to stop...\n")
            err.flush()
    printer.end_line()
    out.write(summary_line(final) + "\n")
    out.flush()
    return exit_code_for(final.status)


# --------------------------------------------------------------------------- tasks table


def _created(snapshot: Snapshot) -> str:
    if snapshot.created_at is None:
        return "-"
    return snapshot.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


TABLE_HEADERS = (
    "ID",
    "TYPE",
    "STATUS",
    "PROGRESS",
    "DONE/TOTAL",
    "OK",
    "FAILED",
    "CANCELLED",
    "CREATED",
)
_RIGHT_ALIGNED = frozenset({"ID", "PROGRESS", "DONE/TOTAL", "OK", "FAILED", "CANCELLED"})


def task_row(task: Mapping[str, Any]) -> tuple[str, ...]:
    s = Snapshot.from_json(task)
    status = "cancelling" if s.cancel_requested and not s.terminal else s.status
    return (
        str(s.id),
        s.task_type,
        status,
        f"{percent(s.done, s.total, terminal=s.terminal):.1f}%",
        f"{s.processed:,}/{s.total:,}",
        f"{s.success:,}",
        f"{s.failed:,}",
        f"{s.cancelled:,}",
        _created(s),
    )


def format_table(tasks: Sequence[Mapping[str, Any]]) -> list[str]:
    """Aligned columns with a header; numbers right-aligned."""
    rows = [TABLE_HEADERS, *(task_row(t) for t in tasks)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADERS))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(w) if header in _RIGHT_ALIGNED else cell.ljust(w)
            for cell, w, header in zip(row, widths, TABLE_HEADERS, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


# --------------------------------------------------------------------------- the verbs


@dataclass
class Streams:
    out: TextIO
    err: TextIO
    stdin: TextIO

    @classmethod
    def default(cls) -> Streams:
        return cls(sys.stdout, sys.stderr, sys.stdin)


def _run(body: Callable[[ApiClient, Streams], int], streams: Streams | None = None) -> int:
    """Builds the client from the environment, prints a CliError as one line."""
    streams = streams or Streams.default()
    # `longtasks` logs at INFO; httpx would log every request (one a second while polling).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        with ApiClient.from_env() as api:
            return body(api, streams)
    except CliError as exc:
        streams.err.write(f"longtasks: error: {exc.message}\n")
        streams.err.flush()
        return exc.exit_code
    except KeyboardInterrupt:
        streams.err.write("\ninterrupted\n")
        return EXIT_INTERRUPTED


def broadcast(api: ApiClient, args: argparse.Namespace, streams: Streams) -> int:
    recipients = read_recipients(args.recipients, streams.stdin)
    body = broadcast_body(args, recipients)
    started = api.start_broadcast(body)
    task = _object(started.get("task"))
    snapshot = Snapshot.from_json(task)
    streams.out.write(
        f"task {snapshot.id} {snapshot.status}: broadcast #{started.get('broadcast_id')}"
        f" {body['name']!r} to {len(recipients):,} rows:"
        f" {started.get('recipients_accepted', 0):,} accepted,"
        f" {started.get('recipients_invalid', 0):,} invalid,"
        f" {started.get('duplicates_dropped', 0):,} duplicates dropped\n"
    )
    if task.get("start_at") and snapshot.status == "scheduled":
        streams.out.write(f"starts at {task['start_at']}\n")
    streams.out.flush()
    if not args.follow:
        return EXIT_OK
    return watch_task(api, snapshot.id, out=streams.out, err=streams.err, stdin=streams.stdin)


def list_tasks(api: ApiClient, args: argparse.Namespace, streams: Streams) -> int:
    if not 1 <= args.limit <= 500:
        raise CliError("--limit must be between 1 and 500")
    tasks: list[JSON] = []
    cursor: str | None = None
    seen_cursors: set[str] = set()
    while True:
        page = api.list_tasks(
            task_type=args.type, status=args.status, limit=args.limit, cursor=cursor
        )
        tasks.extend(_object(item) for item in page.get("items") or [])
        next_cursor = page.get("next_cursor")
        if not args.all or not next_cursor or next_cursor in seen_cursors:
            break
        seen_cursors.add(next_cursor)
        cursor = str(next_cursor)
    if not tasks:
        streams.out.write("no tasks\n")
    else:
        streams.out.write("\n".join(format_table(tasks)) + "\n")
        if not args.all and page.get("next_cursor"):
            streams.out.write(f"(first {len(tasks)} shown; --all for every task)\n")
    streams.out.flush()
    return EXIT_OK


def watch(api: ApiClient, args: argparse.Namespace, streams: Streams) -> int:
    return watch_task(api, args.task_id, out=streams.out, err=streams.err, stdin=streams.stdin)


def cancel(api: ApiClient, args: argparse.Namespace, streams: Streams) -> int:
    status, task = api.cancel_task(args.task_id, args.reason)
    snapshot = Snapshot.from_json(task)
    if status == 200 or snapshot.terminal:
        streams.out.write(f"task {snapshot.id} is {snapshot.status}; nothing to cancel\n")
    else:
        streams.out.write(
            f"task {snapshot.id}: cancel requested (`longtasks watch {snapshot.id}` to see it"
            " stop)\n"
        )
    streams.out.write(render_line(snapshot) + "\n")
    streams.out.flush()
    return EXIT_OK


def run_broadcast(args: argparse.Namespace, streams: Streams | None = None) -> int:
    return _run(lambda api, s: broadcast(api, args, s), streams)


def run_tasks(args: argparse.Namespace, streams: Streams | None = None) -> int:
    return _run(lambda api, s: list_tasks(api, args, s), streams)


def run_watch(args: argparse.Namespace, streams: Streams | None = None) -> int:
    return _run(lambda api, s: watch(api, args, s), streams)


def run_cancel(args: argparse.Namespace, streams: Streams | None = None) -> int:
    return _run(lambda api, s: cancel(api, args, s), streams)
