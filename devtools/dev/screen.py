"""What `longtasks dev` shows: a line per start-up step, then the addresses and a token.

Everything else goes to the log the first line names (`devtools.dev.log`). On a terminal a
spinner says which step is under way and marks are coloured; anywhere else the same lines are
plain text.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.text import Text

TAIL_LINES = 20  # of the log, shown when start-up fails
_log = logging.getLogger(__name__)


class StepFailed(Exception):
    """A start-up step did not complete; its line says why and the runner stops."""


@dataclass
class Step:
    name: str
    detail: str = ""


@dataclass(frozen=True)
class Addresses:
    web_page: str
    api: str
    docs: str
    temporal_ui: str
    sandbox: str
    token: str


def step_line(step: Step, seconds: float) -> Text:
    return Text.assemble(
        "  ", ("✓", "green"), f" {step.name:<11}{step.detail}", (f"  {seconds:.1f}s", "dim")
    )


def failed_line(step: Step, reason: str) -> Text:
    return Text.assemble("  ", ("✗", "bold red"), f" {step.name:<11}", (reason, "red"))


def running_lines(addresses: Addresses, log: Path) -> list[str]:
    """The addresses a person needs, the log, how to stop, and a token (last, alone, so
    `tail -1` of a captured screen is the token)."""
    return [
        "",
        "longtasks is running:",
        f"  web page     {addresses.web_page}",
        f"  REST API     {addresses.api}   (OpenAPI docs: {addresses.docs})",
        f"  Temporal UI  {addresses.temporal_ui}",
        f"  sandbox      {addresses.sandbox}",
        # The client verbs read these two; a user's name lets approvals tell people apart.
        f"  CLI          export LONGTASKS_API={addresses.api.removesuffix('/api')}"
        " LONGTASKS_TOKEN=<the dev token below>",
        "  tokens       longtasks token --business-id 1 --role operator --user dana",
        f"  log          {log}",
        "",
        "Press Ctrl-C to stop everything.",
        "Dev token (business 1, admin):",
        addresses.token,
    ]


class DevScreen:
    def __init__(self, console: Console, log: Path) -> None:
        self.console = console
        self.log = log

    def starting(self) -> None:
        self.console.print(f"longtasks dev: starting; all output goes to {self.log}")

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """One start-up step: its line once done (what it did, how long it took), or a line
        saying why it failed, the traceback going to the log, and StepFailed."""
        step = Step(name)
        started = time.monotonic()
        try:
            with self.console.status(f"starting {name}…"):
                yield step
        except (Exception, SystemExit) as exc:
            _log.error("%s failed", name, exc_info=True)
            self.console.print(failed_line(step, str(exc) or type(exc).__name__))
            raise StepFailed(name) from exc
        self.console.print(step_line(step, time.monotonic() - started))

    def failed(self, tail: list[str]) -> None:
        self.console.print(f"\nstart-up failed; the end of {self.log}:", style="bold red")
        for line in tail:
            self.console.print(Text(f"  {line}"))

    def running(self, addresses: Addresses) -> None:
        for line in running_lines(addresses, self.log):
            self.console.print(Text(line))

    def child_exited(self, name: str, code: int) -> None:
        self.console.print(
            f"{name} exited with {code}; stopping (its output is in {self.log})", style="red"
        )

    def stopping(self) -> None:
        self.console.print("\nstopping…", end="")

    def stopped(self, name: str) -> None:
        self.console.print(f" {name}", end="")

    def all_stopped(self) -> None:
        self.console.print(" stopped.")
