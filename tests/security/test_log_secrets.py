"""No secret and no personal data in a log: every line the API and browser suites made the
service write (uvicorn's access log, our loggers, the test clients' request lines), through the
production formatters, is searched for a token, a ticket, a phone number and an email address.

Runs last (tests/conftest.py sorts it there) and reads the session's logs; when this session did
not run the API and browser suites, it runs them first, in a child pytest, and reads those.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from longtasks.observability.redact import redact
from tests.conftest import COLLECTED_SUITES, FaultReport, SecurityRow

ROOT = Path(__file__).resolve().parents[2]
SUITES = ("api", "browser")

LEAKS = {
    "a token (JWT)": re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    "a ticket": re.compile(r"t1\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"),
    "a credential in a query": re.compile(
        r"(?i)[?&](?:access_token|token|ticket)=(?!\[redacted\])[^&\s\"']+"
    ),
    "a bearer header": re.compile(r"(?i)bearer\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{8,}"),
    "a phone number (E.164)": re.compile(r"(?<![\w+])\+[1-9]\d{7,14}\b"),
    "a phone number (local)": re.compile(r"(?<![\w.-])0\d{1,2}-?\d{7}\b"),
    # Starts only where a run starts, taken whole: linear on the sweep's 60k-character lines.
    "an email address": re.compile(
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}"
    ),
}


def leaks_in(lines: Iterable[str]) -> list[tuple[str, str]]:
    found = []
    for line in lines:
        for label, pattern in LEAKS.items():
            if pattern.search(line):
                found.append((label, line[:300]))
    return found


def test_the_scan_finds_what_it_looks_for() -> None:
    """Without redaction each of these lines would be a leak; with it, none is."""
    raw = [
        '127.0.0.1:1 - "GET /api/long_tasks/1/events?ticket=t1.'
        + "a" * 30
        + "."
        + "b" * 40
        + ' HTTP/1.1" 200',
        "GET /?token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        "headers {'Authorization': 'Bearer abcdefghijkl'}",
        "sent to +972523456789",
        "recipient 052-3456789",
        "mailbox dana@example.com",
    ]
    assert len(leaks_in(raw)) >= len(raw)
    assert leaks_in(redact(line) for line in raw) == []


def _log_files() -> list[Path]:
    if all(suite in COLLECTED_SUITES for suite in SUITES):
        from tests.conftest import SESSION_LOGS

        for handler in logging.getLogger().handlers:
            handler.flush()
        return sorted(SESSION_LOGS.glob(f"session-{os.getpid()}.*"))
    # Run the suites in a child pytest with its logs in a directory of their own.
    log_dir = Path(tempfile.mkdtemp(prefix="longtasks-log-scan-"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *(f"tests/{s}" for s in SUITES), "-q", "-x"],
        cwd=ROOT,
        env={**os.environ, "LONGTASKS_TEST_LOGS": str(log_dir)},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return sorted(log_dir.glob("session-*"))


def test_no_token_ticket_phone_or_email_in_any_log_line(fault_report: FaultReport) -> None:
    files = _log_files()
    assert {f.suffix for f in files} == {".jsonl", ".txt"}, files
    lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    # The logs saw what matters: requests whose URLs carried tickets, and the sign-in link.
    access = [line for line in lines if "uvicorn.access" in line]
    assert len(access) > 100, len(access)
    assert any("ticket=[redacted]" in line for line in access)
    assert any("token=[redacted]" in line for line in access)
    leaks = leaks_in(lines)
    assert not leaks, "\n".join(f"{label}: {line}" for label, line in leaks[:20])
    fault_report.add_security(
        SecurityRow(
            area="logs",
            check="every line of the API and browser suites' logs (JSON and text formats,"
            " uvicorn access lines included) searched for tokens, tickets, phone numbers and"
            " email addresses",
            cases=len(lines),
            outcome="0 found",
        )
    )
