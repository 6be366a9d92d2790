"""Following a task to its end: the event stream, else polling; Ctrl-C asks whether to cancel.

The watcher prefers `GET /api/long_tasks/{id}/events` (a snapshot at each change) and falls
back to polling once a second when the server has no stream or the stream breaks. Lost
connections are retried once the task has been seen; before that, a failure is the answer
(wrong URL, API down, no such task).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TextIO

import httpx

from cli.display import ProgressDisplay, console, isatty, print_summary
from cli.errors import EXIT_CANCELLED, EXIT_ERROR, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, CliError
from cli.rest import ApiClient, ApiError, EventsUnavailable
from cli.snapshot import Snapshot
from longtasks.domain import TaskStatus

POLL_INTERVAL_S = 1.0
MAX_POLL_FAILURES = 30

_EXIT_CODES: dict[str, int] = {
    TaskStatus.completed: EXIT_OK,
    TaskStatus.failed: EXIT_FAILED,
    TaskStatus.cancelled: EXIT_CANCELLED,
    # Nobody approved it in time: nothing was done, as for a cancel.
    TaskStatus.expired: EXIT_CANCELLED,
}


def exit_code_for(status: str) -> int:
    return _EXIT_CODES.get(status, EXIT_ERROR)


def confirm(prompt: str, stdin: TextIO, err: TextIO) -> bool:
    """A y/N question; No when stdin is not a terminal, at EOF, or on a second Ctrl-C."""
    if not isatty(stdin):
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
        display: ProgressDisplay,
        err: TextIO,
        *,
        poll_interval_s: float = POLL_INTERVAL_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api
        self.task_id = task_id
        self.display = display
        self.err = err
        self.poll_interval_s = poll_interval_s
        self.sleep = sleep
        self.use_events = True
        self.seen = False  # a snapshot arrived: from then on, lost connections are retried

    def _show(self, snapshot: Snapshot) -> None:
        self.seen = True
        self.display.show(snapshot)

    def _note(self, message: str) -> None:
        self.display.end_line()
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


def watch_task(
    api: ApiClient,
    task_id: int,
    *,
    out: TextIO,
    err: TextIO,
    stdin: TextIO,
    poll_interval_s: float = POLL_INTERVAL_S,
    sleep: Callable[[float], None] = time.sleep,
    display: ProgressDisplay | None = None,
) -> int:
    """Follows the task to the end; Ctrl-C asks whether to cancel it. Returns the exit code."""
    display = display or ProgressDisplay(out)
    watcher = Watcher(api, task_id, display, err, poll_interval_s=poll_interval_s, sleep=sleep)
    cancel_sent = False
    try:
        while True:
            try:
                final = watcher.run()
                break
            except KeyboardInterrupt:
                display.end_line()
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
    finally:
        # Also on an error: rich hides the cursor while its bar is live.
        display.end_line()
    print_summary(console(out, tty=display.tty), final)
    out.flush()
    return exit_code_for(final.status)
