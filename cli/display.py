"""How the CLI shows a task: rich's live progress bar and colours on a terminal; plain lines
anywhere else. (The tasks table is `cli.table`; what a task is, `cli.snapshot`.)

On a terminal `longtasks watch` redraws rich's progress bar in place; the rate is rich's speed
estimate over the last RATE_WINDOW_S seconds of snapshots, and the ETA its time remaining at
that rate. When the output is not a terminal (a pipe, a file, CI) only plain text is written,
one line per change, no colours or control codes, so scripts and logs can read it:

    task 12 running  45.0%  540/1,200  ok 530  failed 10  cancelled 0  120/s  ETA 5s
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TextIO

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID
from rich.table import Column
from rich.text import Text

from cli.snapshot import CANCELLING, PAUSING, RESUMING, Snapshot
from longtasks.domain import TaskStatus

RATE_WINDOW_S = 10.0

_STATUS_STYLES: Mapping[str, str] = {
    TaskStatus.scheduled: "blue",
    TaskStatus.running: "cyan",
    TaskStatus.completed: "green",
    TaskStatus.cancelled: "yellow",
    TaskStatus.failed: "bold red",
    TaskStatus.paused: "magenta",
    TaskStatus.awaiting_approval: "bold magenta",
    TaskStatus.expired: "yellow",
    CANCELLING: "yellow",
    PAUSING: "magenta",
    RESUMING: "cyan",
}


def isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # closed stream
        return False


def console(stream: TextIO, *, tty: bool | None = None) -> Console:
    """A rich console on `stream`: colours and control codes only when it is a terminal.

    Whether it is one is decided here, not by rich's reading of FORCE_COLOR or TTY_COMPATIBLE:
    the plain form is a contract scripts rely on. NO_COLOR is still honoured.
    """
    terminal = isatty(stream) if tty is None else tty
    return Console(file=stream, force_terminal=terminal, highlight=False, soft_wrap=not terminal)


def format_duration(seconds: float | None) -> str:
    """`7s`, `1m05s`, `2h03m`, `3d04h`; `?` when unknown."""
    if seconds is None or math.isnan(seconds) or math.isinf(seconds):
        return "?"
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_rate(rate: float | None) -> str:
    """`-/s` when unknown, `12.5/s` below 100, `340/s`, `12.5k/s`."""
    if rate is None or math.isnan(rate):
        return "-/s"
    rate = max(0.0, rate)
    if rate < 100:
        return f"{rate:.1f}/s"
    if rate < 10_000:
        return f"{rate:,.0f}/s"
    return f"{rate / 1000:.1f}k/s"


def _counts(snapshot: Snapshot, *, compact: bool = False) -> str:
    counts = [f"ok {snapshot.success:,}", f"failed {snapshot.failed:,}"]
    if snapshot.skipped:
        counts.append(f"skipped {snapshot.skipped:,}")
    if snapshot.cancelled or not compact:
        counts.append(f"cancelled {snapshot.cancelled:,}")
    return "  ".join(counts)


def format_utc(when: dt.datetime) -> str:
    """`2026-12-03 01:52 UTC`: deadlines and start times, as the server keeps them."""
    return f"{when.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def _pace(snapshot: Snapshot, rate: float | None, eta_s: float | None) -> str:
    """Rate and ETA while a task runs; how long it took once it ended."""
    if snapshot.terminal:
        start = snapshot.started_at or snapshot.created_at
        if start is None or snapshot.completed_at is None:
            return ""
        elapsed = max(0.0, (snapshot.completed_at - start).total_seconds())
        pace = f"in {format_duration(elapsed)}"
        if elapsed > 0 and snapshot.processed:
            pace += f"  avg {format_rate(snapshot.processed / elapsed)}"
        return pace
    if snapshot.status == TaskStatus.scheduled:
        when = snapshot.start_at
        return f"starts at {format_utc(when)}" if when else "waiting to start"
    if snapshot.status == TaskStatus.awaiting_approval:
        until = snapshot.approval_expires_at
        return "awaiting approval" + (f" until {format_utc(until)}" if until else "")
    if snapshot.status == TaskStatus.paused:
        if snapshot.status_reason:
            return f"paused: {snapshot.status_reason}"
        if snapshot.paused_by:
            return f"paused by {snapshot.paused_by}, no ETA"
        return "no ETA while paused"
    # The server's estimate knows the sender's pace and the daily caps; the local one only
    # what it has seen.
    eta = snapshot.eta_seconds if snapshot.eta_seconds is not None else eta_s
    return f"{format_rate(rate)}  ETA {format_duration(eta)}"


def _line(snapshot: Snapshot, status: str, pace: str) -> str:
    parts = [
        f"task {snapshot.id} {status}",
        f"{snapshot.percent:.1f}%",
        f"{snapshot.processed:,}/{snapshot.total:,}",
        _counts(snapshot),
        pace,
    ]
    return "  ".join(part for part in parts if part)


def plain_line(snapshot: Snapshot, rate: float | None = None, eta_s: float | None = None) -> str:
    """The task on one line of plain text: status, percent, counts, then its pace."""
    return _line(snapshot, snapshot.shown_status, _pace(snapshot, rate, eta_s))


def styled_status(status: str) -> Text:
    return Text(status, style=_STATUS_STYLES.get(status, ""))


def _status_coloured(line: str, snapshot: Snapshot, status: str) -> Text:
    """`line`, which starts `task {id} {status}`, with its status coloured."""
    text = Text(line)
    start = len(f"task {snapshot.id} ")
    text.stylize(_STATUS_STYLES.get(status, ""), start, start + len(status))
    return text


def styled_line(snapshot: Snapshot, *, status: str | None = None) -> Text:
    """The task's line as a verb prints it once, after acting on it, its status coloured (on a
    terminal only); `status` overrides the shown one with what the verb knows it becomes.

    Nothing was measured here, so a moving task shows no rate, and the server's ETA if it has
    one (a `-/s  ETA ?` would only be noise).
    """
    shown = status or snapshot.shown_status
    moving = shown == TaskStatus.running and not snapshot.terminal
    if not moving:
        pace = _pace(snapshot, None, None) if shown == snapshot.status else ""
    elif snapshot.eta_seconds is not None:
        pace = f"ETA {format_duration(snapshot.eta_seconds)}"
    else:
        pace = ""
    return _status_coloured(_line(snapshot, shown, pace), snapshot, shown)


def summary_line(snapshot: Snapshot) -> str:
    line = (
        f"task {snapshot.id} {snapshot.status}: {snapshot.processed:,} of {snapshot.total:,}"
        f" processed, {snapshot.success:,} succeeded, {snapshot.failed:,} failed"
    )
    if snapshot.skipped:
        line += f", {snapshot.skipped:,} skipped"
    line += f", {snapshot.cancelled:,} cancelled"
    cancelled = snapshot.status == TaskStatus.cancelled
    # Why it ended so: a failure's error, a cancel's or rejection's reason, an expiry's words.
    why = (
        snapshot.error_message
        or (snapshot.cancel_reason if cancelled else None)
        or snapshot.status_reason
    )
    if why:
        line += f" ({why})"
    if snapshot.delivery is not None and snapshot.delivery.any_sent:
        # Keeps moving after the task ends, as WhatsApp's statuses come in.
        line += f"; delivery so far: {snapshot.delivery.text()}"
    return line


def print_summary(out: Console, snapshot: Snapshot) -> None:
    """The final line of a watch, its status coloured on a terminal."""
    out.print(_status_coloured(summary_line(snapshot), snapshot, snapshot.status))


class _SnapshotColumn(ProgressColumn):
    """A column drawn from the task's latest snapshot; cut short, never wrapped, when the
    terminal is too narrow for the whole line."""

    def __init__(self, draw: Callable[[Snapshot, Task], Text]) -> None:
        super().__init__(table_column=Column(no_wrap=True, overflow="ellipsis"))
        self._draw = draw

    def render(self, task: Task) -> Text:
        snapshot: Snapshot = task.fields["snapshot"]
        return self._draw(snapshot, task)


def _title(snapshot: Snapshot, task: Task) -> Text:
    return Text.assemble(f"task {snapshot.id} ", styled_status(snapshot.shown_status))


def _amount(snapshot: Snapshot, task: Task) -> Text:
    return Text(f"{snapshot.percent:5.1f}%  {snapshot.processed:,}/{snapshot.total:,}")


def _live_pace(snapshot: Snapshot, task: Task) -> Text:
    # A waiting task's why can be long (the circuit breaker's counts, a deadline): it gets a
    # line of its own below, so it never squeezes the title and the bar off the row.
    if _why(snapshot):
        pace = "" if snapshot.status == TaskStatus.awaiting_approval else "no ETA while paused"
    else:
        pace = _pace(snapshot, task.speed, task.time_remaining)
    return Text(pace, style="bold")


def _why(snapshot: Snapshot) -> str:
    """Why a task is not moving, in full: what a paused task's line ends with, or until when
    one waits for approval; empty for a moving or finished task."""
    if snapshot.terminal or snapshot.status not in (
        TaskStatus.paused,
        TaskStatus.awaiting_approval,
    ):
        return ""
    if snapshot.status == TaskStatus.awaiting_approval:
        return _pace(snapshot, None, None)
    # The line above says paused already.
    why = snapshot.status_reason or (
        f"paused by {snapshot.paused_by}" if snapshot.paused_by else ""
    )
    if snapshot.pause_requested:
        # A person or the breaker paused it: it waits for someone (a quota's wait ends alone).
        why += ("; " if why else "") + f"`longtasks resume {snapshot.id}` goes on"
    return why


class _TwoLineProgress(Progress):
    """Rich's progress row, then the task's counts on a line of their own: the whole line does
    not fit 80 columns once counts reach the thousands. A waiting task's why follows, folded
    to the terminal's width rather than cut."""

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        for task in self.tasks:
            snapshot: Snapshot = task.fields["snapshot"]
            yield Text(
                _counts(snapshot, compact=True), style="dim", no_wrap=True, overflow="ellipsis"
            )
            if why := _why(snapshot):
                yield Text(why, style=_STATUS_STYLES.get(snapshot.status, ""), overflow="fold")


class ProgressDisplay:
    """One task's progress: rich's live bar on a terminal, a plain line per change elsewhere.

    Either way rich's task keeps the samples its rate and ETA come from; `clock` is its time
    source (seconds, monotonic).
    """

    def __init__(
        self,
        out: TextIO,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.tty = isatty(out) if tty is None else tty
        self.clock = clock
        self._progress = self._new_progress()
        self._task: TaskID | None = None
        self._live = False
        self._last_key: tuple[object, ...] | None = None

    def _new_progress(self) -> Progress:
        return _TwoLineProgress(
            _SnapshotColumn(_title),
            BarColumn(bar_width=20),
            _SnapshotColumn(_amount),
            _SnapshotColumn(_live_pace),
            console=console(self.out, tty=self.tty),
            get_time=self.clock,
            speed_estimate_period=RATE_WINDOW_S,
            disable=not self.tty,
            # Our error stream is written to directly (after end_line); nothing to capture.
            redirect_stdout=False,
            redirect_stderr=False,
        )

    def show(self, snapshot: Snapshot) -> None:
        # Rich's bar and percentage run on (done, total); an empty task that has not ended has
        # an unknown total (a pulsing bar), an empty one that ended is complete.
        total: float | None = snapshot.total or (1 if snapshot.terminal else None)
        done = snapshot.done if snapshot.total else (1 if snapshot.terminal else 0)
        if self._task is None:
            self._task = self._progress.add_task("", total=total, snapshot=snapshot)
        self._progress.update(self._task, total=total, completed=done, snapshot=snapshot)
        if self.tty:
            if not self._live:
                self._progress.start()
                self._live = True
            self._progress.refresh()
            return
        key = snapshot.change_key()
        if key == self._last_key:
            return
        self._last_key = key
        task = self._progress.tasks[0]
        rate, eta_s = task.speed, task.time_remaining
        self.out.write(plain_line(snapshot, rate, eta_s) + "\n")
        self.out.flush()

    def end_line(self) -> None:
        """Stops redrawing (before a prompt, a message or the summary); the last bar stays."""
        if self._live:
            self._progress.stop()
            self._live = False
            # A live display started again would first move the cursor up over as many lines
            # as its last frame had, erasing whatever was written since (a prompt, a note):
            # the next one starts afresh, its rate from new samples.
            self._progress = self._new_progress()
            self._task = None
