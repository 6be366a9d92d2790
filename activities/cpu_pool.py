"""A process pool for CPU-bound activity work, whose processes end with their worker.

A pool's processes wait on a queue whose writing end they share, so a worker killed outright
(SIGKILL, the OOM killer) would leave them waiting forever, each holding its memory. Each one
watches its parent instead and exits once it is gone.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

PARENT_CHECK_S = 1.0


def _exit_with_parent(parent_pid: int) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def cpu_pool(processes: int) -> ProcessPoolExecutor:
    # spawn, not fork: the worker runs threads (Temporal's core) that a fork would copy in
    # whatever state they are in.
    return ProcessPoolExecutor(
        max_workers=processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )
