"""How the CLI shows a task: plain lines off a terminal (what scripts read), rich's live bar,
rate and ETA on one; what it reads from the API's JSON."""

from __future__ import annotations

import io
import re

import pytest

from cli.display import (
    RATE_WINDOW_S,
    ProgressDisplay,
    format_duration,
    format_rate,
    plain_line,
    summary_line,
)
from cli.snapshot import Snapshot
from tests.cli.helpers import FakeClock, TtyStringIO, done_json, task_json

CONTROL_CODES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def snapshot(**overrides: object) -> Snapshot:
    return Snapshot.from_json(task_json(**overrides))


def test_percent_rounds_clamps_and_treats_empty_tasks() -> None:
    assert snapshot(total_items=3, processed_items=1).percent == 33.3
    assert snapshot(processed_items=0).percent == 0.0
    assert snapshot(processed_items=200).percent == 100.0
    assert snapshot(processed_items=250).percent == 100.0
    assert snapshot(processed_items=-5).percent == 0.0
    assert snapshot(total_items=0, processed_items=0).percent == 0.0
    assert Snapshot.from_json(done_json(total_items=0, processed_items=0)).percent == 100.0


def test_durations_and_rates_are_short() -> None:
    assert format_duration(None) == "?"
    assert format_duration(float("inf")) == "?"
    assert format_duration(0.4) == "0s"
    assert format_duration(7) == "7s"
    assert format_duration(65) == "1m05s"
    assert format_duration(7380) == "2h03m"
    assert format_duration(3 * 86400 + 4 * 3600) == "3d04h"
    assert format_rate(None) == "-/s"
    assert format_rate(12.345) == "12.3/s"
    assert format_rate(340.4) == "340/s"
    assert format_rate(1234.0) == "1,234/s"
    assert format_rate(12_500.0) == "12.5k/s"


def test_running_line_shows_counts_rate_and_eta() -> None:
    line = plain_line(snapshot(), 15.0, 10)
    assert line == ("task 7 running  25.0%  50/200  ok 48  failed 2  cancelled 0  15.0/s  ETA 10s")


def test_terminal_line_shows_duration_instead_of_eta() -> None:
    line = plain_line(Snapshot.from_json(done_json()))
    assert line.startswith("task 7 completed  100.0%  200/200")
    assert line.endswith("in 10s  avg 20.0/s")
    assert "ETA" not in line


def test_cancelled_line_counts_cancelled_items_as_done() -> None:
    cancelled = Snapshot.from_json(
        done_json(
            "cancelled", processed_items=80, success_count=80, failed_count=0, cancelled_count=120
        )
    )
    assert cancelled.done == 200
    line = plain_line(cancelled)
    assert "100.0%" in line and "cancelled 120" in line


def test_cancel_requested_shows_cancelling_and_unknown_rate() -> None:
    line = plain_line(snapshot(cancel_requested=True))
    assert line.startswith("task 7 cancelling")
    assert line.endswith("-/s  ETA ?")


def test_a_task_that_is_not_moving_says_why_instead_of_an_eta() -> None:
    assert plain_line(snapshot(status="scheduled", processed_items=0)).endswith("waiting to start")
    later = snapshot(status="scheduled", processed_items=0, start_at="2026-01-02T11:00:00+02:00")
    assert plain_line(later).endswith("starts at 2026-01-02 09:00 UTC")
    assert plain_line(snapshot(status="awaiting_approval")).endswith("awaiting approval")
    assert plain_line(snapshot(status="paused")).endswith("no ETA while paused")


def test_an_expired_task_has_ended() -> None:
    expired = Snapshot.from_json(done_json("expired", processed_items=0, success_count=0))
    assert expired.terminal
    assert "ETA" not in plain_line(expired)


def test_summary_mentions_skipped_only_when_there_are_some() -> None:
    assert "skipped" not in summary_line(Snapshot.from_json(done_json()))
    assert ", 3 skipped" in summary_line(Snapshot.from_json(done_json(skipped_count=3)))


def test_summary_of_a_cancelled_or_expired_task_says_why() -> None:
    rejected = done_json("cancelled", cancel_reason="rejected by ana: wrong list")
    assert summary_line(Snapshot.from_json(rejected)).endswith("(rejected by ana: wrong list)")
    expired = done_json("expired", status_reason="nobody approved it in time; nothing was sent")
    assert summary_line(Snapshot.from_json(expired)).endswith(
        "(nobody approved it in time; nothing was sent)"
    )
    finished = done_json(cancel_reason="ignored once it completed")
    assert summary_line(Snapshot.from_json(finished)).endswith("0 cancelled")


def test_a_broadcasts_summary_says_where_its_messages_are_and_a_status_is_a_change() -> None:
    counts = {"accepted": 20, "delivered": 150, "read": 26, "failed": 2, "pending": 2}
    done = Snapshot.from_json(done_json(delivery={**counts, "unconfirmed": 1, "resent": 0}))
    assert summary_line(done).endswith(
        "; delivery so far: 20 accepted, 150 delivered, 26 read, 2 failed, 2 pending, 1 unconfirmed"
    )
    # Statuses keep coming after the end: a watch prints a line for each change.
    later = Snapshot.from_json(done_json(delivery={**counts, "accepted": 19, "read": 27}))
    assert later.change_key() != done.change_key()
    assert "delivery" not in summary_line(Snapshot.from_json(done_json(task_type="gmail_sync")))
    nothing_sent = {"accepted": 0, "delivered": 0, "read": 0, "failed": 0, "pending": 200}
    rejected = done_json("cancelled", processed_items=0, delivery=nothing_sent)
    assert "delivery" not in summary_line(Snapshot.from_json(rejected))


def shown(display: ProgressDisplay, clock: FakeClock, at: float, processed: int) -> None:
    clock.now = at
    display.show(snapshot(total_items=10_000, processed_items=processed))


def test_plain_display_prints_a_line_per_change_with_rate_and_eta() -> None:
    out, clock = io.StringIO(), FakeClock()
    display = ProgressDisplay(out, clock=clock)
    shown(display, clock, 0.0, 100)
    shown(display, clock, 0.0, 100)  # unchanged: no line
    shown(display, clock, 2.0, 140)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("-/s  ETA ?"), "one sample: the rate is unknown"
    assert lines[1].endswith("20.0/s  ETA 8m13s"), "40 items in 2 s; 9,860 left"
    assert "\x1b" not in out.getvalue()


def test_the_rate_follows_the_last_seconds() -> None:
    out, clock = io.StringIO(), FakeClock()
    display = ProgressDisplay(out, clock=clock)
    for second in range(11):  # 10 items/s for 10 s
        shown(display, clock, float(second), second * 10)
    assert out.getvalue().splitlines()[-1].endswith("10.0/s  ETA 16m30s")
    start = 10 + int(RATE_WINDOW_S)
    for second in range(11, start + 2):  # then 50 items/s, for longer than the window
        shown(display, clock, float(second), 100 + (second - 10) * 50)
    assert " 50.0/s " in out.getvalue().splitlines()[-1]


@pytest.mark.parametrize("columns", [80, 100])
def test_a_terminal_gets_a_live_bar_that_fits_and_keeps_the_eta(
    columns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    out, clock = TtyStringIO(), FakeClock()
    display = ProgressDisplay(out, clock=clock)
    wide = dict(id=1234, total_items=100_000, success_count=54_000, failed_count=321)
    clock.now = 1.0
    display.show(Snapshot.from_json(task_json(processed_items=50_000, **wide)))
    clock.now = 11.0
    display.show(Snapshot.from_json(task_json(processed_items=54_321, **wide)))
    display.end_line()
    frames = [CONTROL_CODES.sub("", frame) for frame in out.getvalue().split("\r")]
    progress, counts = frames[-1].strip("\n").split("\n")
    assert len(progress) <= columns
    assert progress.startswith("task 1234 running ━")
    assert progress.rstrip().endswith("54.3%  54,321/100,000 432/s  ETA 1m46s")
    assert counts.rstrip() == "ok 54,000  failed 321", "a zero cancelled count left out"
    assert "\x1b[36mrunning" in out.getvalue(), "the status in colour"


def live_frame(**overrides: object) -> list[str]:
    """The last frame rich drew for one snapshot, without control codes, line by line."""
    out = TtyStringIO()
    display = ProgressDisplay(out, clock=FakeClock())
    display.show(Snapshot.from_json(task_json(**overrides)))
    display.end_line()
    frame = CONTROL_CODES.sub("", out.getvalue().split("\r")[-1])
    return [line.rstrip() for line in frame.strip("\n").split("\n")]


def test_a_waiting_tasks_why_gets_a_line_of_its_own_and_the_bar_keeps_its_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    wide = dict(id=1234, total_items=100_000, processed_items=54_321, success_count=54_000)
    reason = (
        "paused itself: 25 of the last 50 sends failed (50%; the policy pauses at 50%);"
        " most often 131026"
    )
    row, counts, *why = live_frame(status="paused", status_reason=reason, **wide)
    assert row.startswith("task 1234 paused ━") and row.endswith("no ETA while paused")
    assert counts.startswith("ok 54,000")
    assert " ".join(why) == reason, "folded to the width, not cut"
    assert all(len(line) <= 80 for line in [row, *why])

    *_, why_line = live_frame(status="paused", paused_by="olga", pause_requested=True, **wide)
    assert why_line == "paused by olga; `longtasks resume 1234` goes on"
    *_, why_line = live_frame(status="paused", status_reason="the daily cap", **wide)
    assert why_line == "the daily cap", "a quota's wait ends by itself: no resume to suggest"
    row, _, why_line = live_frame(
        status="awaiting_approval", approval_expires_at="2026-01-02T10:00:00Z", **wide
    )
    assert row.startswith("task 1234 awaiting_approval ━") and len(row) <= 80
    assert why_line == "awaiting approval until 2026-01-02 10:00 UTC"
    assert len(live_frame(**wide)) == 2, "a moving task: the row and its counts only"
