"""Where `longtasks dev` puts what a person does not need on the first screen: one log file.

The children's output (Temporal, the sandbox, the worker, the API) and this process's own
logging (pgserver's initdb transcript, alembic's set-up and revisions, the Temporal client) go
to `DATA_DIR/dev.log`; the previous run's log is kept as `dev.log.1`, so the output of a run
that crashed survives the restart that follows it.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO

LOG_NAME = "dev.log"


class DevLog:
    def __init__(self, path: Path, file: IO[bytes]) -> None:
        self.path = path
        self.file = file  # children write here directly (their stdout and stderr)

    @classmethod
    def open(cls, data_dir: Path) -> DevLog:
        path = data_dir / LOG_NAME
        if path.exists():
            path.replace(path.with_name(LOG_NAME + ".1"))
        file = path.open("ab", buffering=0)
        started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        file.write(f"=== longtasks dev, started {started} ===\n".encode())
        return cls(path, file)

    def close(self) -> None:
        self.file.close()

    @contextlib.contextmanager
    def capturing_logging(self) -> Iterator[None]:
        """This process's log records and warnings go to the file instead of the terminal."""
        root = logging.getLogger()
        saved = (root.handlers[:], root.level)
        handler = logging.StreamHandler(open(self.path, "a", encoding="utf-8"))  # noqa: SIM115
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        try:
            yield
        finally:
            logging.captureWarnings(False)
            root.handlers[:], level = saved
            root.setLevel(level)
            handler.close()

    def tail(self, lines: int) -> list[str]:
        """The log's last lines, to show beside a start-up failure."""
        text = self.path.read_text(encoding="utf-8", errors="replace")
        return text.splitlines()[-lines:]
