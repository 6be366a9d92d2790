"""The client verbs: flags to request bodies, clear errors, and end to end against the real
stack."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from cli.errors import EXIT_CANCELLED, EXIT_ERROR, EXIT_OK, CliError
from cli.main import build_parser, main
from cli.verbs import broadcast_body, default_name
from tests.conftest import Stack, configure_sender, israeli_numbers


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
