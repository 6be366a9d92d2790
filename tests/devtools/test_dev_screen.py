"""`longtasks dev`'s first screen: a line per start-up step, the addresses and a token, the rest
in the log it names; Ctrl-C stops everything. One real run, on its own ports and data."""

from __future__ import annotations

import io
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rich.console import Console

from devtools.dev.screen import DevScreen, StepFailed

REPO = Path(__file__).resolve().parents[2]
STEPS = ["Postgres", "migrations", "Temporal", "sandbox", "worker", "API"]
START_TIMEOUT_S = 240.0  # generous: the suite shares two cores with other work
STOP_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def dev_env(data_dir: Path) -> tuple[dict[str, str], int, int]:
    api, sandbox, temporal = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the embedded one
    env.update(
        DATA_DIR=str(data_dir),
        API_PORT=str(api),
        PUBLIC_BASE_URL=f"http://127.0.0.1:{api}",
        SANDBOX_PORT=str(sandbox),
        WHATSAPP_API_BASE=f"http://127.0.0.1:{sandbox}",
        GMAIL_API_BASE=f"http://127.0.0.1:{sandbox}",
        TEMPORAL_ADDRESS=f"127.0.0.1:{temporal}",
        TEMPORAL_UI_PORT=str(free_port()),
        WORKER_METRICS_PORT="0",
        ENVIRONMENT="development",
    )
    return env, api, temporal


def read_lines(stream: io.BufferedReader, into: queue.Queue[str | None]) -> None:
    for raw in stream:
        into.put(raw.decode("utf-8", errors="replace").rstrip("\n"))
    into.put(None)


def test_dev_shows_a_short_screen_keeps_the_rest_in_its_log_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    env, api_port, temporal_port = dev_env(data_dir)
    screen: list[str] = []
    rest: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "cli", "dev"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    ) as proc:
        assert proc.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=read_lines, args=(proc.stdout, lines), daemon=True).start()
        try:
            while not screen or screen[-1] != "Dev token (business 1, admin):":
                line = lines.get(timeout=START_TIMEOUT_S)
                assert line is not None, "\n".join(screen)
                screen.append(line)
            token = lines.get(timeout=START_TIMEOUT_S)
            assert token is not None
            screen.append(token)
            assert accepts(api_port) and accepts(temporal_port)
        finally:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
            proc.wait(timeout=STOP_TIMEOUT_S)
        while (line := lines.get(timeout=10)) is not None:
            rest.append(line)

    log = data_dir / "dev.log"
    assert screen[0] == f"longtasks dev: starting; all output goes to {log}"
    steps = [line.split()[1] for line in screen if line.startswith("  ✓ ")]
    assert steps == STEPS
    assert f"  log          {log}" in screen
    assert f"  CLI          export LONGTASKS_API=http://127.0.0.1:{api_port} " in "\n".join(screen)
    assert len(screen) <= 20, "\n".join(screen)
    assert not any(word in "\n".join(screen) for word in ("INFO", "initdb", "alembic"))

    written = log.read_text()
    assert "initdb" in written, "pgserver's transcript is in the log"
    assert "Running upgrade" in written, "and alembic's"
    assert "Uvicorn running" in written, "and the children's output"

    assert proc.returncode == 0
    assert rest[-1] == "stopping… api worker sandbox temporal Postgres stopped.", rest
    assert not accepts(api_port) and not accepts(temporal_port)


def test_a_failed_step_says_why_and_names_the_log(tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, soft_wrap=True)
    screen = DevScreen(console, tmp_path / "dev.log")
    with pytest.raises(StepFailed), screen.step("Temporal"):
        raise SystemExit("127.0.0.1:7233 did not open within 60s")
    screen.failed(["a line of the log"])
    assert out.getvalue().splitlines() == [
        "  ✗ Temporal   127.0.0.1:7233 did not open within 60s",
        "",
        f"start-up failed; the end of {tmp_path / 'dev.log'}:",
        "  a line of the log",
    ]
