"""How the client verbs end: their exit codes, and the one error a user can act on.

Exit codes: 0 the task completed (or the command succeeded), 1 the watched task failed, 2 it was
cancelled, 3 the command itself failed (API error, bad input, API unreachable), 130 the user
stopped watching with Ctrl-C and left the task running.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CANCELLED = 2
EXIT_ERROR = 3
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure the user can act on: printed as one line, exit code 3."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
