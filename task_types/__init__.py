"""The task-type registry: each task type in one entry, and the list the product runs.

One module per type (`broadcast`, `receipt_delete`, `receipt_sync`, `audience_import`), the
shared components (`shared`), and `BUILTIN`, the registry `longtasks worker` and `longtasks api`
run when given none. See `registry` for what an entry holds.
"""

from __future__ import annotations

from task_types.audience_import import AUDIENCE_IMPORT
from task_types.broadcast import BROADCAST
from task_types.receipt_delete import RECEIPT_DELETE
from task_types.receipt_sync import GMAIL_SYNC_SCHEDULE, RECEIPT_SYNC
from task_types.registry import Registry
from task_types.shared import CLEANUP, TASK_ROWS

BUILTIN = Registry(
    task_types=[BROADCAST, RECEIPT_DELETE, RECEIPT_SYNC, AUDIENCE_IMPORT],
    components=[TASK_ROWS, CLEANUP, GMAIL_SYNC_SCHEDULE],
)

__all__ = ["BUILTIN", "Registry"]
