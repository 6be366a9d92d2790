"""The control verbs (`pause`, `resume`, `approve`, `reject`, `retry-failed`) and how a paused
or waiting task is shown: lines, and end to end against the real stack."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from cli.display import plain_line, styled_line
from cli.errors import EXIT_CANCELLED, EXIT_ERROR, EXIT_OK
from cli.main import main
from cli.snapshot import RESUMING, Snapshot
from tests.cli.helpers import done_json, task_json
from tests.conftest import Stack, configure_sender, israeli_numbers, wait_for_status


def line(**overrides: object) -> str:
    return plain_line(Snapshot.from_json(task_json(**overrides)), 15.0, 10)


def test_paused_pausing_waiting_and_server_eta_lines() -> None:
    assert line(pause_requested=True).startswith("task 7 pausing ")
    paused = line(status="paused", pause_requested=True, status_reason="paused itself: 9 of 10")
    assert paused.startswith("task 7 paused ") and paused.endswith("paused: paused itself: 9 of 10")
    assert line(status="paused").endswith("  no ETA while paused")
    assert line(status="paused", paused_by="olga").endswith("  paused by olga, no ETA")
    waiting = line(status="awaiting_approval", approval_expires_at="2026-01-02T10:00:00Z")
    assert waiting.endswith("awaiting approval until 2026-01-02 10:00 UTC")
    # The server's estimate wins over the one made from the samples seen here.
    assert line(eta_seconds=3600).endswith("15.0/s  ETA 1h00m")
    assert line(eta_seconds=None).endswith("ETA 10s")
    assert line(status="expired", completed_at="2026-01-01T10:00:11Z").startswith("task 7 expired")


def once(shown: str | None = None, **overrides: object) -> str:
    return styled_line(Snapshot.from_json(task_json(**overrides)), status=shown).plain


def test_a_verbs_line_shows_no_rate_it_did_not_measure() -> None:
    assert once().endswith("ok 48  failed 2  cancelled 0")
    assert once(eta_seconds=3600).endswith("cancelled 0  ETA 1h00m")
    assert once(pause_requested=True, eta_seconds=3600).endswith("cancelled 0")
    assert once(cancel_requested=True).startswith("task 7 cancelling ")
    assert once(status="paused").endswith("no ETA while paused")
    # `resume` knows better than the answer, written before the run heard of it.
    resuming = once(RESUMING, status="paused", status_reason="paused by olga")
    assert resuming.startswith("task 7 resuming ") and resuming.endswith("cancelled 0")
    assert once(**done_json()).endswith("in 10s  avg 20.0/s")


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch, stack: Stack) -> Callable[[int, str, str], None]:
    def use(business_id: int, role: str, user: str) -> None:
        monkeypatch.setenv("LONGTASKS_API", stack.api_url)
        monkeypatch.setenv("LONGTASKS_TOKEN", stack.token(business_id, role, user=user))

    return use


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_pause_and_resume_from_the_command_line(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    as_user: Callable[[int, str, str], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    business_id = await new_business()
    await configure_sender(stack, business_id, latency_ms=30)
    as_user(business_id, "operator", "olga")
    recipients = tmp_path / "list.txt"
    recipients.write_text("\n".join(israeli_numbers(1500, start=470_000)) + "\n")
    assert await cli("broadcast", "--recipients", str(recipients), "--text", "Hi") == EXIT_OK
    task_id = int(capsys.readouterr().out.split()[1])

    assert await cli("pause", str(task_id)) == EXIT_OK
    out = capsys.readouterr().out
    assert f"task {task_id}: pause requested" in out
    async with stack.http(business_id, "viewer") as http:
        paused = await wait_for_status(http, task_id, {"paused"})
    assert await cli("tasks", "--status", "paused") == EXIT_OK
    assert str(task_id) in capsys.readouterr().out
    assert await cli("pause", str(task_id)) == EXIT_OK
    assert f"task {task_id}: was pausing already" in capsys.readouterr().out

    assert await cli("resume", str(task_id)) == EXIT_OK
    out = capsys.readouterr().out
    assert f"task {task_id}: resumed: it goes on where it stopped" in out
    assert f"task {task_id} resuming " in out or f"task {task_id} running " in out
    assert await cli("watch", str(task_id)) == EXIT_OK
    summary = capsys.readouterr().out.splitlines()[-1]
    assert summary.startswith(f"task {task_id} completed: 1,500 of 1,500 processed, 1,500")
    assert paused["success_count"] < 1500


async def test_approve_reject_and_retry_failed_from_the_command_line(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    as_user: Callable[[int, str, str], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "admin", user="ana") as http:
        assert (await http.put("/api/policy", json={"approval_required_above": 3})).status_code
    recipients = tmp_path / "list.txt"
    # Two the sandbox does not reach (numbers ending in 0000): failures a retry may take.
    numbers = [*israeli_numbers(4, start=480_000), "052-3710000", "052-3720000"]
    recipients.write_text("\n".join(numbers) + "\n")

    as_user(business_id, "admin", "carl")
    assert await cli("broadcast", "--recipients", str(recipients), "--text", "Hi") == EXIT_OK
    out = capsys.readouterr().out
    first = int(out.split()[1])
    assert "until an admin other than you approves it by " in out
    assert f"  longtasks approve {first}    (or: longtasks reject {first})" in out
    assert await cli("broadcast", "--recipients", str(recipients), "--text", "Hi") == EXIT_OK
    second = int(capsys.readouterr().out.split()[1])
    # The creator may not approve their own task.
    assert await cli("approve", str(first)) != EXIT_OK
    assert "cannot approve" in capsys.readouterr().err

    as_user(business_id, "admin", "ana")
    assert await cli("reject", str(second), "--reason", "twice") == EXIT_OK
    assert f"task {second}: rejected" in capsys.readouterr().out
    assert await cli("watch", str(second)) == EXIT_CANCELLED
    assert capsys.readouterr().out.rstrip().endswith("(rejected by ana: twice)")
    assert await cli("approve", str(first)) == EXIT_OK
    assert f"task {first}: approved" in capsys.readouterr().out
    assert await cli("watch", str(first)) == EXIT_OK
    assert "4 succeeded, 2 failed" in capsys.readouterr().out

    # Approved before its start time: it waits for it, and says so.
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=3)).replace(second=0, microsecond=0)
    as_user(business_id, "admin", "carl")
    argv = ["--recipients", str(recipients), "--text", "Hi", "--start-at", later.isoformat()]
    assert await cli("broadcast", *argv) == EXIT_OK
    out = capsys.readouterr().out
    third = int(out.split()[1])
    assert f"starts at {later:%Y-%m-%d %H:%M} UTC\n" in out and "longtasks approve" in out
    as_user(business_id, "admin", "ana")
    assert await cli("approve", str(third)) == EXIT_OK
    out = capsys.readouterr().out
    assert f"task {third}: approved: it starts at the time it was given" in out
    assert out.rstrip().endswith(f"starts at {later:%Y-%m-%d %H:%M} UTC")
    assert await cli("cancel", str(third)) == EXIT_OK
    capsys.readouterr()

    # Two items to retry: under the threshold, so it starts at once.
    assert await cli("retry-failed", str(first), "--follow") == EXIT_OK
    out = capsys.readouterr().out
    assert f"retries 2 failed items of task {first}" in out
    assert "0 succeeded, 2 failed" in out


async def test_a_task_waiting_for_the_daily_cap_is_not_the_users_to_resume(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    as_user: Callable[[int, str, str], None],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "admin", user="ana") as admin:
        assert (await admin.put("/api/policy", json={"daily_send_cap": 3})).status_code == 200
        recipients = tmp_path / "list.txt"
        recipients.write_text("\n".join(israeli_numbers(6, start=490_000)) + "\n")
        as_user(business_id, "operator", "olga")
        assert await cli("broadcast", "--recipients", str(recipients), "--text", "Hi") == EXIT_OK
        task_id = int(capsys.readouterr().out.split()[1])
        await wait_for_status(admin, task_id, {"paused"})

        assert await cli("resume", str(task_id)) == EXIT_OK
        out = capsys.readouterr().out
        assert f"task {task_id}: was not paused by anyone: it goes on by itself" in out
        assert "paused: the business's daily send cap is reached (3 messages per day)" in out

        assert (await admin.put("/api/policy", json={"daily_send_cap": 100})).status_code == 200
    assert await cli("watch", str(task_id)) == EXIT_OK
    assert f"task {task_id} completed: 6 of 6 processed" in capsys.readouterr().out


async def test_policy_shown_to_anyone_and_changed_by_an_admin(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    as_user: Callable[[int, str, str], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    business_id = await new_business()
    as_user(business_id, "admin", "ana")
    argv = ["--approval-required-above", "2,000", "--daily-send-cap", "500"]
    assert await cli("policy", *argv, "--auto-pause-share", "40%") == EXIT_OK
    capsys.readouterr()
    # Left out, a field keeps its value; `off` turns one off.
    assert await cli("policy", "--daily-send-cap", "off") == EXIT_OK
    capsys.readouterr()

    as_user(business_id, "viewer", "vic")
    assert await cli("policy") == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines[:4]] == [
        ["approval_required_above", "2,000"],
        ["daily_send_cap", "off"],
        ["auto_pause_failure_share", "0.4"],
        ["auto_pause_window", "200"],
    ]
    assert lines[4].startswith("(last changed by ana at ")
    async with stack.http(business_id, "viewer") as http:
        policy = (await http.get("/api/policy")).json()
    assert policy["approval_required_above"] == 2000 and policy["daily_send_cap"] is None

    as_user(business_id, "operator", "olga")
    assert await cli("policy", "--daily-send-cap", "5") == EXIT_ERROR
    assert "needs the admin role" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        await cli("policy", "--daily-send-cap", "lots")
    assert usage.value.code == 2
    assert "'lots': a whole number, or off" in capsys.readouterr().err
