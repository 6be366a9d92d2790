"""How the CLI shows tasks: rich's live progress bar, tables and colours on a terminal; plain
lines anywhere else.

On a terminal `longtasks watch` redraws rich's progress bar in place; the rate is rich's speed
estimate over the last RATE_WINDOW_S seconds of snapshots, and the ETA its time remaining at
that rate. When the output is not a terminal (a pipe, a file, CI) only plain text is written,
one line per change, no colours or control codes, so scripts and logs can read it:

    task 12 running  45.0%  540/1,200  ok 530  failed 10  cancelled 0  120/s  ETA 5s
"""

from __future__ import annotations

import datetime as dt
import io
import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console, RenderableType
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID
from rich.table import Column, Table
from rich.text import Text

from longtasks.domain import TERMINAL_STATUSES, TaskStatus

RATE_WINDOW_S = 10.0
CANCELLING = "cancelling"  # shown for a running task whose cancel was requested
PAUSING = "pausing"  # shown for a running task whose pause was requested
RESUMING = "resuming"  # shown by `resume` for a paused task until its run goes on

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


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def parse_time(value: object) -> dt.datetime | None:
    """An ISO 8601 timestamp from the API (`...Z` or `+00:00`), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class DeliveryCounts:
    """A broadcast's items by delivery state (WhatsApp's status webhooks)."""

    accepted: int
    delivered: int
    read: int
    failed: int
    pending: int
    unconfirmed: int = 0
    resent: int = 0

    @classmethod
    def from_json(cls, data: Any) -> DeliveryCounts | None:
        if not isinstance(data, Mapping):
            return None
        return cls(
            accepted=_int(data, "accepted"),
            delivered=_int(data, "delivered"),
            read=_int(data, "read"),
            failed=_int(data, "failed"),
            pending=_int(data, "pending"),
            unconfirmed=_int(data, "unconfirmed"),
            resent=_int(data, "resent"),
        )

    @property
    def any_sent(self) -> bool:
        """Whether anything was sent (a broadcast rejected or cancelled before has nothing to
        say about delivery)."""
        return any((self.accepted, self.delivered, self.read, self.failed, self.unconfirmed))

    def text(self) -> str:
        parts = [
            f"{self.accepted:,} accepted",
            f"{self.delivered:,} delivered",
            f"{self.read:,} read",
            f"{self.failed:,} failed",
            f"{self.pending:,} pending",
        ]
        if self.unconfirmed:
            parts.append(f"{self.unconfirmed:,} unconfirmed")
        if self.resent:
            parts.append(f"{self.resent:,} re-sent")
        return ", ".join(parts)


@dataclass(frozen=True)
class Snapshot:
    """The fields of a task (the API's JSON) that the CLI shows."""

    id: int
    task_type: str
    status: str  # a TaskStatus value, or one a newer server added
    total: int
    processed: int
    success: int
    failed: int
    skipped: int
    cancelled: int
    cancel_requested: bool
    error_message: str | None
    created_at: dt.datetime | None
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    pause_requested: bool = False
    # Why it waits or paused (a quota, the circuit breaker), in the server's words.
    status_reason: str | None = None
    # The server's estimate (it knows the sender's pace and the daily caps); None: unknown.
    eta_seconds: float | None = None
    approval_expires_at: dt.datetime | None = None
    paused_by: str | None = None  # who paused it (a user, or `system` for the breaker)
    cancel_reason: str | None = None  # e.g. `rejected by ana: wrong list`
    start_at: dt.datetime | None = None  # a start the creator asked for, later than creation
    # Broadcasts: where their messages are (WhatsApp's statuses); None for other tasks.
    delivery: DeliveryCounts | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        error = data.get("error_message")
        return cls(
            id=_int(data, "id"),
            task_type=str(data.get("task_type") or "task"),
            status=str(data.get("status") or "unknown"),
            total=_int(data, "total_items"),
            processed=_int(data, "processed_items"),
            success=_int(data, "success_count"),
            failed=_int(data, "failed_count"),
            skipped=_int(data, "skipped_count"),
            cancelled=_int(data, "cancelled_count"),
            cancel_requested=bool(data.get("cancel_requested")),
            error_message=str(error) if error else None,
            created_at=parse_time(data.get("created_at")),
            started_at=parse_time(data.get("started_at")),
            completed_at=parse_time(data.get("completed_at")),
            pause_requested=bool(data.get("pause_requested")),
            status_reason=str(reason) if (reason := data.get("status_reason")) else None,
            eta_seconds=float(eta)
            if isinstance(eta := data.get("eta_seconds"), int | float) and not isinstance(eta, bool)
            else None,
            approval_expires_at=parse_time(data.get("approval_expires_at")),
            paused_by=str(by) if (by := data.get("paused_by")) else None,
            cancel_reason=str(why) if (why := data.get("cancel_reason")) else None,
            start_at=parse_time(data.get("start_at")),
            delivery=DeliveryCounts.from_json(data.get("delivery")),
        )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def shown_status(self) -> str:
        if self.terminal:
            return self.status
        if self.cancel_requested:
            return CANCELLING
        if self.pause_requested and self.status != TaskStatus.paused:
            return PAUSING
        return self.status

    @property
    def done(self) -> int:
        """Items that need no more work: processed, plus the cancelled ones once terminal."""
        return self.processed + (self.cancelled if self.terminal else 0)

    @property
    def percent(self) -> float:
        """0..100, one decimal; an empty task is 0% while it runs and 100% once terminal."""
        if self.total <= 0:
            return 100.0 if self.terminal else 0.0
        return round(min(100.0, max(0.0, 100.0 * self.done / self.total)), 1)

    def change_key(self) -> tuple[object, ...]:
        """What makes a new line worth printing when the output is not a terminal."""
        return (
            self.status,
            self.total,
            self.processed,
            self.success,
            self.failed,
            self.skipped,
            self.cancelled,
            self.cancel_requested,
            self.pause_requested,
            self.status_reason,
            self.delivery,
        )


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


_RIGHT_ALIGNED = frozenset({"ID", "PROGRESS", "DONE/TOTAL", "OK", "FAILED", "CANCELLED"})
TABLE_HEADERS = (
    "ID", "TYPE", "STATUS", "PROGRESS", "DONE/TOTAL", "OK", "FAILED", "CANCELLED", "CREATED",
)  # fmt: skip


def _created(snapshot: Snapshot, *, short: bool = False) -> str:
    if snapshot.created_at is None:
        return "-"
    return snapshot.created_at.astimezone().strftime(
        "%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S"
    )


def tasks_table(
    tasks: Sequence[Snapshot],
    *,
    tty: bool,
    short_dates: bool = False,
    without: Collection[str] = (),
) -> Table:
    """Aligned columns with a header, numbers right-aligned; statuses coloured on a terminal.
    `without` leaves out columns (a narrow terminal: see `print_tasks`)."""
    table = Table(box=None, pad_edge=False, header_style="bold" if tty else "")
    headers = [h for h in TABLE_HEADERS if h not in without]
    for header in headers:
        table.add_column(
            header,
            justify="right" if header in _RIGHT_ALIGNED else "left",
            # Numbers are never cut; what does not fit is left out instead (`print_tasks`).
            no_wrap=True,
        )
    for s in tasks:
        cells: dict[str, str | Text] = {
            "ID": str(s.id),
            "TYPE": s.task_type,
            "STATUS": styled_status(s.shown_status),
            "PROGRESS": f"{s.percent:.1f}%",
            "DONE/TOTAL": f"{s.processed:,}/{s.total:,}",
            "OK": f"{s.success:,}",
            "FAILED": f"{s.failed:,}",
            "CANCELLED": f"{s.cancelled:,}",
            "CREATED": _created(s, short=short_dates),
        }
        table.add_row(*(cells[h] for h in headers))
    return table


# A terminal too narrow for the whole table first loses the date's year and seconds, then the
# percentage (DONE/TOTAL says it too), then the cancelled count.
_NARROWER: tuple[tuple[bool, frozenset[str]], ...] = (
    (False, frozenset()),
    (True, frozenset()),
    (True, frozenset({"PROGRESS"})),
    (True, frozenset({"PROGRESS", "CANCELLED"})),
)


def print_tasks(out: TextIO, tasks: Sequence[Snapshot], *, tty: bool | None = None) -> None:
    """The tasks table: on a terminal, the widest form that fits it; elsewhere every column at
    full width (what scripts read)."""
    terminal = isatty(out) if tty is None else tty
    if not terminal:
        print_table(out, tasks_table(tasks, tty=False), tty=False)
        return
    shown = console(out, tty=True)
    unbounded = shown.options.update(width=100_000)  # rich clamps a measure to the width
    for short_dates, without in _NARROWER:
        table = tasks_table(tasks, tty=True, short_dates=short_dates, without=without)
        if shown.measure(table, options=unbounded).maximum <= shown.width:
            break
    shown.print(table)


def print_table(out: TextIO, table: Table, *, tty: bool | None = None) -> None:
    """On a terminal, fitted to its width; elsewhere at full width, without trailing blanks."""
    if tty if tty is not None else isatty(out):
        console(out, tty=True).print(table)
        return
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=False, width=100_000).print(table)
    out.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))
    out.flush()
