"""Following a task: the event stream, polling fallbacks, retries, and Ctrl-C's question
(against a scripted transport)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cli.display import ProgressDisplay
from cli.errors import EXIT_CANCELLED, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, CliError
from cli.watch import confirm, watch_task
from tests.cli.helpers import (
    FakeClock,
    TtyStringIO,
    done_json,
    mock_api,
    sse_body,
    sse_events,
    sse_response,
    task_json,
)


class Recorder:
    """A scripted API: SSE answers in order, then GET answers in order (the last repeats).

    Its clock is the progress display's: a poll answers a second after the last.
    """

    def __init__(
        self,
        sse: list[httpx.Response],
        polls: list[dict[str, Any]],
        clock: FakeClock | None = None,
    ) -> None:
        self.sse = sse
        self.polls = polls
        self.clock = clock or FakeClock()
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
        self.clock.now += 1.0
        return httpx.Response(200, json=task)


def run_watch(
    recorder: Recorder, *, stdin: io.StringIO | None = None, tty: bool = False
) -> tuple[int, str, str]:
    out, err = (TtyStringIO() if tty else io.StringIO()), io.StringIO()
    display = ProgressDisplay(out, clock=recorder.clock)
    with mock_api(recorder) as api:
        code = watch_task(
            api,
            7,
            out=out,
            err=err,
            stdin=stdin or io.StringIO(),
            sleep=lambda _: None,
            display=display,
        )
    return code, out.getvalue(), err.getvalue()


def test_watch_follows_the_event_stream() -> None:
    clock = FakeClock()
    snapshots = (task_json(), task_json(processed_items=150), done_json())
    recorder = Recorder([sse_response(sse_events(*snapshots, clock=clock))], [], clock)
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
    clock = FakeClock()
    snapshots = (task_json(), task_json(processed_items=100), done_json())
    recorder = Recorder([sse_response(sse_events(*snapshots, clock=clock))], [], clock)
    _, out, _ = run_watch(recorder)
    second = out.splitlines()[1]
    # A snapshot a second: 50 items in 1 s, 100 left.
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


def test_watch_on_a_terminal_draws_a_live_bar() -> None:
    recorder = Recorder([sse_response(sse_body(task_json(), task_json(), done_json()))], [])
    code, out, _ = run_watch(recorder, tty=True)
    assert code == EXIT_OK
    assert "\x1b[" in out, "a terminal gets rich's control codes and colours"
    assert "━" in out, "and its bar"
    assert "200 of 200 processed, 198 succeeded" in out.splitlines()[-1]


def test_watch_output_that_is_not_a_terminal_is_plain_text() -> None:
    recorder = Recorder([sse_response(sse_body(task_json(), done_json()))], [])
    _, out, _ = run_watch(recorder, tty=False)
    assert "\x1b" not in out and "\r" not in out
    assert out.splitlines()[0].startswith("task 7 running  25.0%  50/200  ok 48  failed 2")


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


def test_on_a_terminal_the_bar_drawn_after_the_question_leaves_it_on_screen() -> None:
    cancelled = done_json("cancelled", processed_items=60, cancelled_count=140)
    recorder = Recorder([sse_response(interrupted_stream()), sse_response(sse_body(cancelled))], [])
    screen = TtyStringIO()  # the bar and the question share one terminal
    with mock_api(recorder) as api:
        code = watch_task(
            api, 7, out=screen, err=screen, stdin=TtyStringIO("y\n"), sleep=lambda _: None
        )
    assert code == EXIT_CANCELLED
    after_question = screen.getvalue().split("waiting for task 7 to stop...\n")[1]
    assert "\x1b[1A" not in after_question.split("task 7")[0], "no cursor-up over the question"


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
