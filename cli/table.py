"""`longtasks tasks`: the tasks as aligned columns; on a terminal the widest form that fits it,
statuses coloured; elsewhere every column at full width, plain (what scripts read)."""

from __future__ import annotations

import io
from collections.abc import Collection, Sequence
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.display import console, isatty, styled_status
from cli.snapshot import Snapshot

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
