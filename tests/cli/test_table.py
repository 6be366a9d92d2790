"""`longtasks tasks`' table: aligned plain text off a terminal, coloured on one, and the widest
form that fits a terminal's width."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from cli.snapshot import Snapshot
from cli.table import TABLE_HEADERS, print_table, print_tasks, tasks_table
from tests.cli.helpers import TtyStringIO, done_json, task_json

CONTROL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_tasks_table_off_a_terminal_is_aligned_plain_text() -> None:
    tasks = [
        Snapshot.from_json(task_json(id=12)),
        Snapshot.from_json(done_json(id=3, task_type="receipt_sync")),
    ]
    out = io.StringIO()
    print_table(out, tasks_table(tasks, tty=False))
    text = out.getvalue()
    assert "\x1b" not in text
    lines = text.splitlines()
    assert all(line == line.rstrip() for line in lines)
    assert lines[0].split() == [
        "ID",
        "TYPE",
        "STATUS",
        "PROGRESS",
        "DONE/TOTAL",
        "OK",
        "FAILED",
        "CANCELLED",
        "CREATED",
    ]
    assert lines[1].split()[:6] == ["12", "broadcast", "running", "25.0%", "50/200", "48"]
    assert lines[2].split()[:6] == ["3", "receipt_sync", "completed", "100.0%", "200/200", "198"]
    assert lines[1].index("running") == lines[2].index("completed")


def test_tasks_table_on_a_terminal_has_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    out = TtyStringIO()
    print_table(out, tasks_table([Snapshot.from_json(done_json("failed"))], tty=True))
    assert "\x1b[1;31mfailed" in out.getvalue()


@pytest.mark.parametrize("columns", [80, 100, 160])
def test_a_terminal_gets_the_widest_table_that_fits_and_no_cut_cell(
    columns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    wide: dict[str, Any] = dict(
        total_items=3000, processed_items=3000, success_count=2873, failed_count=127
    )
    tasks = [
        Snapshot.from_json(done_json(id=16, **wide)),
        Snapshot.from_json(done_json(id=13, task_type="receipt_sync", **wide)),
        Snapshot.from_json(task_json(id=17, status="awaiting_approval", total_items=12_000)),
    ]
    out = TtyStringIO()
    print_tasks(out, tasks)
    lines = [CONTROL_CODES.sub("", line).rstrip() for line in out.getvalue().splitlines()]
    assert all(len(line) <= columns for line in lines)
    assert "…" not in out.getvalue()
    headers = lines[0].split()
    assert headers[:3] == ["ID", "TYPE", "STATUS"] and "DONE/TOTAL" in headers
    assert lines[2].split()[:3] == ["13", "receipt_sync", "completed"]
    assert "3,000/3,000" in lines[2] and "awaiting_approval" in lines[3]
    if columns >= 120:
        assert headers == list(TABLE_HEADERS), "room for everything: nothing left out"
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", lines[1])
