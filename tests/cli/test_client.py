"""The CLI's client verbs: progress math and rendering, recipient files, the watcher's fallbacks
and Ctrl-C (against a mock transport), and the verbs end to end against the real stack."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.client import (
    EXIT_CANCELLED,
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ApiClient,
    CliError,
    ProgressPrinter,
    SseParser,
    api_error,
    broadcast_body,
    confirm,
    default_name,
    describe_detail,
    format_table,
    read_recipients,
    recipients_from_text,
    summary_line,
    watch_task,
)
from cli.main import build_parser, main
from cli.progress import (
    RateWindow,
    Snapshot,
    bar,
    eta_seconds,
    fit,
    format_duration,
    format_rate,
    percent,
    render_line,
)
from tests.conftest import Stack, configure_sender, israeli_numbers

# --------------------------------------------------------------------------- helpers


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


def sse_body(*tasks: dict[str, Any]) -> bytes:
    chunks = ["retry: 2000\n\n", ": keep-alive\n\n"]
    for version, task in enumerate(tasks, start=1):
        chunks.append(f"id: {version}\nevent: task\ndata: {json.dumps(task)}\n\n")
    return "".join(chunks).encode()


def sse_response(content: bytes | Iterator[bytes]) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=content)


def mock_api(handler: Callable[[httpx.Request], httpx.Response]) -> ApiClient:
    return ApiClient("http://api.test", "tok", transport=httpx.MockTransport(handler))


# --------------------------------------------------------------------------- progress math


def test_percent_rounds_clamps_and_treats_empty_tasks() -> None:
    assert percent(1, 3) == 33.3
    assert percent(0, 200) == 0.0
    assert percent(200, 200) == 100.0
    assert percent(250, 200) == 100.0
    assert percent(-5, 200) == 0.0
    assert percent(0, 0) == 0.0
    assert percent(0, 0, terminal=True) == 100.0


@pytest.mark.parametrize("width", [1, 10, 24, 37])
def test_bar_has_exactly_width_cells(width: int) -> None:
    for fraction in (0.0, 0.01, 0.5, 0.999, 1.0, 1.7, -1.0, float("nan")):
        rendered = bar(fraction, width)
        assert rendered.startswith("[") and rendered.endswith("]")
        assert len(rendered) == width + 2


def test_bar_fills_in_proportion_and_is_full_only_at_the_end() -> None:
    assert bar(0.0, 10) == "[----------]"
    assert bar(0.5, 10) == "[#####-----]"
    assert bar(0.26, 10) == "[##--------]"
    assert bar(0.999, 10) == "[#########-]"
    assert bar(1.0, 10) == "[##########]"
    assert bar(2.0, 10) == "[##########]"


def test_rate_is_unknown_until_two_samples_span_time() -> None:
    window = RateWindow(10)
    assert window.rate() is None
    window.add(5.0, 100)
    assert window.rate() is None
    window.add(5.0, 120)  # same instant: replaces, still no span
    assert window.rate() is None
    window.add(7.0, 140)
    assert window.rate() == pytest.approx(10.0)


def test_rate_follows_the_sliding_window() -> None:
    window = RateWindow(10)
    for second in range(11):  # 10 items/s for 10 s
        window.add(float(second), second * 10)
    assert window.rate() == pytest.approx(10.0)
    for second in range(11, 31):  # then 50 items/s
        window.add(float(second), 100 + (second - 10) * 50)
    assert window.rate() == pytest.approx(50.0)


def test_rate_resets_when_progress_goes_back() -> None:
    window = RateWindow(10)
    window.add(0.0, 500)
    window.add(1.0, 600)
    window.add(2.0, 10)
    assert window.rate() is None


def test_rate_window_rejects_a_zero_window() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateWindow(0)


def test_eta_math() -> None:
    assert eta_seconds(100, 10.0) == 10.0
    assert eta_seconds(150, 20.0) == 7.5
    assert eta_seconds(0, None) == 0.0
    assert eta_seconds(100, None) is None
    assert eta_seconds(100, 0.0) is None


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
    line = render_line(Snapshot.from_json(task_json()), rate=15.0, width=20)
    assert line.startswith("task 7 running")
    assert "[#####---------------]" in line
    assert " 25.0%" in line
    assert "50/200" in line
    assert "ok 48" in line and "failed 2" in line and "cancelled 0" in line
    assert "15.0/s" in line
    assert "ETA 10s" in line


def test_terminal_line_shows_duration_instead_of_eta() -> None:
    line = render_line(Snapshot.from_json(done_json()), rate=None, width=10)
    assert "task 7 completed" in line
    assert "[##########]" in line and "100.0%" in line
    assert "in 10s" in line and "avg 20.0/s" in line
    assert "ETA" not in line


def test_cancelled_line_counts_cancelled_items_as_done() -> None:
    snapshot = Snapshot.from_json(
        done_json(
            "cancelled", processed_items=80, success_count=80, failed_count=0, cancelled_count=120
        )
    )
    assert snapshot.done == 200
    line = render_line(snapshot, width=10)
    assert "100.0%" in line and "cancelled 120" in line


def test_cancel_requested_shows_cancelling_and_unknown_rate() -> None:
    line = render_line(Snapshot.from_json(task_json(cancel_requested=True)))
    assert line.startswith("task 7 cancelling")
    assert "-/s" in line and "ETA ?" in line


def test_scheduled_line_says_it_waits() -> None:
    line = render_line(Snapshot.from_json(task_json(status="scheduled", processed_items=0)))
    assert "waiting to start" in line


@pytest.mark.parametrize("columns", [60, 80, 100])
def test_narrow_terminals_get_a_compact_line_that_keeps_the_eta(columns: int) -> None:
    snapshot = Snapshot.from_json(
        task_json(
            id=1234,
            total_items=100_000,
            processed_items=54_321,
            success_count=54_000,
            failed_count=321,
        )
    )
    wide = render_line(snapshot, rate=432.1)
    assert len(wide) >= 100
    line = render_line(snapshot, rate=432.1, columns=columns)
    assert len(line) < columns
    assert line.startswith("task 1234 running [")
    assert "cancelled" not in line, "a zero cancelled count goes first"
    if columns >= 80:
        assert "432/s ETA 1m46s" in line, "rate and ETA survive the cut"
    if columns >= 100:
        assert line.endswith("ok 54,000 failed 321")
    assert render_line(snapshot, rate=432.1, columns=200) == wide


def test_fit_cuts_to_the_terminal_width() -> None:
    assert fit("short", 80) == "short"
    cut = fit("x" * 100, 40)
    assert len(cut) == 39 and cut.endswith("…")


# --------------------------------------------------------------------------- recipients


def test_csv_with_a_phone_column() -> None:
    text = 'name,phone,city\nDana,052-3000001,Haifa\n\nYossi,"052-3000002",TLV\n'
    assert recipients_from_text(text) == ["052-3000001", "052-3000002"]


def test_hebrew_header_semicolons_and_bom() -> None:
    text = "\ufeffשם;טלפון\r\nדנה;052-3000001\r\nיוסי;+972 52 300 0002\r\n"
    assert recipients_from_text(text) == ["052-3000001", "+972 52 300 0002"]


def test_first_column_when_no_phone_header() -> None:
    assert recipients_from_text("number,name\n0523000001,a\n0523000002,b\n") == [
        "0523000001",
        "0523000002",
    ]
    # No header at all: the first row is data.
    assert recipients_from_text("0523000001,a\n0523000002,b\n") == ["0523000001", "0523000002"]


def test_plain_list_one_per_line() -> None:
    text = "052-3000001\n 052 300 0002 \n\n052-3000003\n"
    assert recipients_from_text(text) == ["052-3000001", "052 300 0002", "052-3000003"]


def test_tabs_and_short_rows() -> None:
    text = "id\tphone\n1\t052-3000001\n2\n3\t052-3000003\n"
    assert recipients_from_text(text) == ["052-3000001", "052-3000003"]


def test_empty_file_has_no_recipients(tmp_path: Path) -> None:
    assert recipients_from_text("") == []
    assert recipients_from_text("phone\n\n") == []
    path = tmp_path / "empty.csv"
    path.write_text("phone\n")
    with pytest.raises(CliError, match="no phone numbers"):
        read_recipients(str(path))


def test_windows_hebrew_encoding_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes("טלפון\n052-3000001\n".encode("cp1255"))
    assert read_recipients(str(path)) == ["052-3000001"]
    assert read_recipients("-", io.StringIO("052-3000009\n")) == ["052-3000009"]
    with pytest.raises(CliError, match="cannot read"):
        read_recipients(str(tmp_path / "missing.csv"))
    huge = tmp_path / "huge.csv"
    huge.write_text('"' + "9" * 200_000 + '"\n')
    with pytest.raises(CliError, match="not a readable CSV"):
        read_recipients(str(huge))


def broadcast_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["broadcast", *argv])


def test_broadcast_body_from_flags() -> None:
    args = broadcast_args(
        "--recipients",
        "dir/customers.csv",
        "--text",
        "Hi",
        "--priority",
        "high",
        "--start-at",
        "2026-12-01T09:00:00Z",
    )
    assert broadcast_body(args, ["1"]) == {
        "name": "customers",
        "message": {"text": "Hi"},
        "recipients": ["1"],
        "start_at": "2026-12-01T09:00:00Z",
        "priority": "high",
    }
    args = broadcast_args(
        "--recipients",
        "-",
        "--template",
        "promo",
        "--language",
        "he",
        "--param",
        "Dana",
        "--param",
        "20%",
        "--name",
        "Promo",
    )
    assert broadcast_body(args, ["1"]) == {
        "name": "Promo",
        "message": {"template": {"name": "promo", "language": "he", "params": ["Dana", "20%"]}},
        "recipients": ["1"],
    }
    assert default_name("-") == "broadcast"


def test_broadcast_flags_that_do_not_fit_together() -> None:
    with pytest.raises(CliError, match="--language"):
        broadcast_body(broadcast_args("--recipients", "a.csv", "--template", "promo"), ["1"])
    with pytest.raises(CliError, match="go with --template"):
        broadcast_body(
            broadcast_args("--recipients", "a.csv", "--text", "x", "--param", "p"), ["1"]
        )
    with pytest.raises(SystemExit):  # argparse: exactly one of --text/--template
        broadcast_args("--recipients", "a.csv")


# --------------------------------------------------------------------------- HTTP details


def test_sse_parser() -> None:
    parser = SseParser()
    lines = [
        "retry: 2000",
        "",
        ": keep-alive",
        "",
        "id: 3",
        "event: task",
        'data: {"a":',
        "data: 1}",
        "",
        "data:x",
        "",
    ]
    events = [e for e in (parser.feed(line) for line in lines) if e is not None]
    assert [(e.event, e.data, e.id) for e in events] == [
        ("task", '{"a":\n1}', "3"),
        ("message", "x", "3"),
    ]


def test_validation_details_are_readable() -> None:
    detail = [
        {"type": "missing", "loc": ["body", "name"], "msg": "Field required"},
        {"type": "value_error", "loc": ["body", "start_at"], "msg": "needs a time zone"},
        {"loc": [], "msg": "whole body"},
    ]
    assert describe_detail(detail) == (
        "name: Field required; start_at: needs a time zone; whole body"
    )
    assert describe_detail("plain") == "plain"
    assert describe_detail(None) == ""


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"detail": "token expired"}, "not authenticated (HTTP 401): token expired"),
        (
            403,
            {"detail": "this action needs the operator role"},
            "permission denied (HTTP 403): this action needs the operator role",
        ),
        (404, {"detail": "task 9 not found"}, "not found (HTTP 404): task 9 not found"),
        (
            422,
            {"detail": [{"loc": ["body", "recipients"], "msg": "too short"}]},
            "invalid request (HTTP 422): recipients: too short",
        ),
        (502, None, "bad gateway (HTTP 502): <html>oops</html>"),
    ],
)
def test_api_errors_show_the_servers_detail(
    status: int, body: dict[str, Any] | None, expected: str
) -> None:
    if body is None:
        response = httpx.Response(status, text="<html>oops</html>")
    else:
        response = httpx.Response(status, json=body)
    error = api_error(response)
    assert error.status_code == status
    assert error.message.startswith(expected)
    if status == 401:
        assert "LONGTASKS_TOKEN" in error.message


def test_table_aligns_columns() -> None:
    lines = format_table([task_json(id=12), done_json(id=3, task_type="receipt_sync")])
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


def test_missing_token_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LONGTASKS_TOKEN", raising=False)
    assert main(["tasks"]) == EXIT_ERROR
    assert "LONGTASKS_TOKEN is not set" in capsys.readouterr().err


def test_unreachable_api_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LONGTASKS_TOKEN", "x")
    monkeypatch.setenv("LONGTASKS_API", "http://127.0.0.1:9")
    assert main(["cancel", "1"]) == EXIT_ERROR
    assert "cannot reach the API at http://127.0.0.1:9" in capsys.readouterr().err


# --------------------------------------------------------------------------- the watcher


class Recorder:
    """A scripted API: SSE answers in order, then GET answers in order (the last repeats)."""

    def __init__(self, sse: list[httpx.Response], polls: list[dict[str, Any]]) -> None:
        self.sse = sse
        self.polls = polls
        self.calls: list[str] = []
        self.cancel_bodies: list[Any] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls.append(f"{request.method} {path}")
        if path.endswith("/events"):
            return self.sse.pop(0) if self.sse else httpx.Response(404, json={"detail": "no"})
        if path.endswith("/cancel"):
            self.cancel_bodies.append(json.loads(request.content) if request.content else None)
            return httpx.Response(202, json={"task": task_json(cancel_requested=True)})
        task = self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]
        return httpx.Response(200, json=task)


def run_watch(
    recorder: Recorder, *, stdin: io.StringIO | None = None, tty: bool = False
) -> tuple[int, str, str]:
    out, err = (TtyStringIO() if tty else io.StringIO()), io.StringIO()
    ticks = iter(range(1000))
    printer = ProgressPrinter(out, clock=lambda: float(next(ticks)), columns=lambda: 200)
    with mock_api(recorder) as api:
        code = watch_task(
            api,
            7,
            out=out,
            err=err,
            stdin=stdin or io.StringIO(),
            sleep=lambda _: None,
            printer=printer,
        )
    return code, out.getvalue(), err.getvalue()


def test_watch_follows_the_event_stream() -> None:
    recorder = Recorder(
        [sse_response(sse_body(task_json(), task_json(processed_items=150), done_json()))], []
    )
    code, out, err = run_watch(recorder)
    assert code == EXIT_OK
    assert recorder.calls == ["GET /api/long_tasks/7/events"]
    lines = out.splitlines()
    assert len(lines) == 4  # three snapshots and the summary
    assert "50/200" in lines[0] and "-/s" in lines[0], "one sample: rate unknown"
    assert "150/200" in lines[1] and "ETA" in lines[1]
    assert lines[-1] == (
        "task 7 completed: 200 of 200 processed, 198 succeeded, 2 failed, 0 cancelled"
    )
    assert err == ""


def test_watch_rate_and_eta_come_from_the_snapshots() -> None:
    recorder = Recorder(
        [sse_response(sse_body(task_json(), task_json(processed_items=100), done_json()))], []
    )
    _, out, _ = run_watch(recorder)
    second = out.splitlines()[1]
    # The fake clock ticks 1 s per snapshot: 50 items in 1 s, 100 left.
    assert "50.0/s" in second and "ETA 2s" in second


def test_watch_falls_back_to_polling_when_there_is_no_stream() -> None:
    recorder = Recorder(
        [httpx.Response(405)],
        [
            task_json(),
            task_json(),
            done_json("failed", error_message="provider rejected the token"),
        ],
    )
    code, out, err = run_watch(recorder)
    assert code == EXIT_FAILED
    assert recorder.calls[0] == "GET /api/long_tasks/7/events"
    assert recorder.calls[1:] == ["GET /api/long_tasks/7"] * 3
    lines = out.splitlines()
    assert len(lines) == 3, "an unchanged snapshot prints no line"
    assert lines[-1].endswith("(provider rejected the token)")
    assert err == "", "a server without SSE is not an error"


def test_watch_falls_back_to_polling_when_the_stream_breaks() -> None:
    def broken() -> Iterator[bytes]:
        yield sse_body(task_json())
        raise httpx.ReadError("connection reset")

    recorder = Recorder([sse_response(broken())], [done_json("cancelled", cancelled_count=0)])
    code, out, err = run_watch(recorder)
    assert code == EXIT_CANCELLED
    assert "event stream broke (connection reset); polling" in err
    assert "task 7 cancelled" in out


def test_watch_retries_a_lost_api_only_after_the_first_snapshot() -> None:
    answers: list[httpx.Response | Exception] = [
        httpx.Response(404, json={"detail": "no stream"}),
        httpx.Response(200, json=task_json()),
        httpx.ConnectError("refused"),
        httpx.Response(503, json={"detail": "database unavailable"}),
        httpx.Response(200, json=done_json()),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    out, err = io.StringIO(), io.StringIO()
    with mock_api(handler) as api:
        code = watch_task(api, 7, out=out, err=err, stdin=io.StringIO(), sleep=lambda _: None)
    assert code == EXIT_OK
    assert err.getvalue().count("retrying") == 1
    assert not answers

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    err = io.StringIO()
    with mock_api(refused) as api, pytest.raises(CliError, match="cannot reach the API"):
        watch_task(api, 7, out=io.StringIO(), err=err, stdin=io.StringIO(), sleep=lambda _: None)
    assert err.getvalue() == "", "no retries before the task was ever seen"


def test_watch_polls_when_the_stream_ends_early() -> None:
    recorder = Recorder([sse_response(sse_body(task_json()))], [done_json()])
    code, _, err = run_watch(recorder)
    assert code == EXIT_OK
    assert "ended before the task did" in err


def test_watch_of_a_missing_task_is_not_found() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "task 7 not found"})

    with mock_api(handler) as api, pytest.raises(CliError, match="task 7 not found"):
        watch_task(
            api, 7, out=io.StringIO(), err=io.StringIO(), stdin=io.StringIO(), sleep=lambda _: None
        )


def test_watch_redraws_in_place_on_a_terminal() -> None:
    recorder = Recorder([sse_response(sse_body(task_json(), task_json(), done_json()))], [])
    code, out, _ = run_watch(recorder, tty=True)
    assert code == EXIT_OK
    assert out.count("\r") == 3, "every snapshot redraws, even an unchanged one"
    assert out.count("\n") == 2, "the bar's line and the summary"


def interrupted_stream() -> Iterator[bytes]:
    yield sse_body(task_json())
    raise KeyboardInterrupt


def test_ctrl_c_then_yes_cancels_and_keeps_watching() -> None:
    cancelled = done_json(
        "cancelled", processed_items=60, success_count=60, failed_count=0, cancelled_count=140
    )
    recorder = Recorder([sse_response(interrupted_stream()), sse_response(sse_body(cancelled))], [])
    code, out, err = run_watch(recorder, stdin=TtyStringIO("y\n"))
    assert code == EXIT_CANCELLED
    assert "Cancel task 7? [y/N] " in err
    assert "cancel requested" in err
    assert recorder.calls == [
        "GET /api/long_tasks/7/events",
        "POST /api/long_tasks/7/cancel",
        "GET /api/long_tasks/7/events",
    ]
    assert recorder.cancel_bodies == [{"reason": "cancelled from the CLI"}]
    assert out.splitlines()[-1].startswith("task 7 cancelled: 60 of 200 processed")


@pytest.mark.parametrize("stdin", [TtyStringIO("n\n"), TtyStringIO(""), io.StringIO("y\n")])
def test_ctrl_c_without_yes_leaves_the_task_running(stdin: io.StringIO) -> None:
    recorder = Recorder([sse_response(interrupted_stream())], [])
    code, _, err = run_watch(recorder, stdin=stdin)
    assert code == EXIT_INTERRUPTED
    assert "Cancel task 7? [y/N]" in err
    assert "keeps running" in err
    assert not any("cancel" in call for call in recorder.calls)


def test_confirm() -> None:
    err = io.StringIO()
    assert confirm("Q? ", TtyStringIO("y\n"), err)
    assert confirm("Q? ", TtyStringIO(" YES \n"), err)
    assert not confirm("Q? ", TtyStringIO("\n"), err)
    assert not confirm("Q? ", TtyStringIO(""), err)  # EOF
    assert not confirm("Q? ", io.StringIO("y\n"), err)  # not a terminal
    assert "not a terminal" in err.getvalue()


def test_summary_mentions_skipped_only_when_there_are_some() -> None:
    assert "skipped" not in summary_line(Snapshot.from_json(done_json()))
    assert ", 3 skipped" in summary_line(Snapshot.from_json(done_json(skipped_count=3)))


# --------------------------------------------------------------------------- the real stack


@pytest.fixture
def client_env(monkeypatch: pytest.MonkeyPatch, stack: Stack) -> Callable[[int, str], None]:
    def use(business_id: int, role: str = "operator") -> None:
        monkeypatch.setenv("LONGTASKS_API", stack.api_url)
        monkeypatch.setenv("LONGTASKS_TOKEN", stack.token(business_id, role))

    return use


async def cli(*argv: str) -> int:
    """`longtasks ...` in a thread: its blocking HTTP must not stall the stack's event loop."""
    return await asyncio.to_thread(main, list(argv))


async def test_broadcast_follow_tasks_and_cancel_end_to_end(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    client_env: Callable[[int, str], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    business_id = await new_business()
    client_env(business_id, "operator")
    numbers = israeli_numbers(120, start=200_000)
    csv_file = tmp_path / "customers.csv"
    rows = ["name,phone", *(f"customer {i},{n}" for i, n in enumerate(numbers))]
    rows += [f"again,{numbers[0]}", "broken,12"]
    csv_file.write_text("\n".join(rows) + "\n", encoding="utf-8")

    code = await cli("broadcast", "--recipients", str(csv_file), "--text", "Hello", "--follow")
    out = capsys.readouterr().out
    assert code == EXIT_OK, out
    first = out.splitlines()[0]
    assert first.startswith("task ")
    task_id = int(first.split()[1])
    assert "'customers'" in first
    assert "120 accepted, 1 invalid, 1 duplicates dropped" in first
    assert (
        f"task {task_id} completed: 121 of 121 processed, 120 succeeded, 1 failed, "
        "0 cancelled" in out
    )
    assert "121/121" in out and "100.0%" in out

    assert await cli("tasks", "--type", "broadcast", "--status", "completed") == EXIT_OK
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["ID", "TYPE", "STATUS"]
    assert [line.split()[:5] for line in table[1:]] == [
        [str(task_id), "broadcast", "completed", "100.0%", "121/121"]
    ]

    assert await cli("tasks", "--all", "--limit", "1") == EXIT_OK
    assert str(task_id) in capsys.readouterr().out

    assert await cli("cancel", str(task_id), "--reason", "too late") == EXIT_OK
    out = capsys.readouterr().out
    assert f"task {task_id} is completed; nothing to cancel" in out
    assert "120" in out

    assert await cli("watch", str(task_id)) == EXIT_OK
    assert f"task {task_id} completed" in capsys.readouterr().out


async def test_cancel_then_watch_a_running_broadcast(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    client_env: Callable[[int, str], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    business_id = await new_business()
    await configure_sender(stack, business_id, latency_ms=50)
    client_env(business_id, "operator")
    csv_file = tmp_path / "list.txt"
    csv_file.write_text("\n".join(israeli_numbers(3000, start=210_000)) + "\n")

    assert (
        await cli(
            "broadcast",
            "--recipients",
            str(csv_file),
            "--text",
            "Hi",
            "--name",
            "slow one",
            "--priority",
            "low",
        )
        == EXIT_OK
    )
    task_id = int(capsys.readouterr().out.split()[1])

    assert await cli("cancel", str(task_id), "--reason", "changed my mind") == EXIT_OK
    out = capsys.readouterr().out
    assert f"task {task_id}: cancel requested" in out or f"task {task_id} is cancelled" in out

    assert await cli("watch", str(task_id)) == EXIT_CANCELLED
    out = capsys.readouterr().out
    assert f"task {task_id} cancelled: " in out
    summary = out.splitlines()[-1]
    assert "cancelled" in summary and "of 3,000 processed" in summary


async def test_api_errors_are_shown_with_the_servers_detail(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    client_env: Callable[[int, str], None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    business_id = await new_business()
    csv_file = tmp_path / "one.csv"
    csv_file.write_text("052-3456789\n")

    client_env(business_id, "viewer")
    code = await cli("broadcast", "--recipients", str(csv_file), "--text", "Hi")
    assert code == EXIT_ERROR
    assert "permission denied (HTTP 403): this action needs the operator role" in (
        capsys.readouterr().err
    )

    client_env(business_id, "operator")
    assert await cli("watch", "999999999") == EXIT_ERROR
    assert "not found (HTTP 404): task 999999999 not found" in capsys.readouterr().err

    code = await cli(
        "broadcast",
        "--recipients",
        str(csv_file),
        "--text",
        "Hi",
        "--start-at",
        "2030-01-01T09:00:00",
    )
    assert code == EXIT_ERROR
    err = capsys.readouterr().err
    assert "invalid request (HTTP 422)" in err and "start_at" in err and "time zone" in err

    assert await cli("tasks", "--limit", "0") == EXIT_ERROR
    assert "--limit must be between 1 and 500" in capsys.readouterr().err

    monkeypatch.setenv("LONGTASKS_TOKEN", "not-a-jwt")
    assert await cli("tasks") == EXIT_ERROR
    err = capsys.readouterr().err
    assert "not authenticated (HTTP 401): invalid token" in err
