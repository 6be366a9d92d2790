"""The domain's vocabulary: task types, task and item statuses, roles, priorities.

The one source of these names. The database's constraints (`db.models`), the API's schemas
(and through its OpenAPI spec the web page's types), the workflow contracts and the CLI take
them from here.
"""

from __future__ import annotations

import enum


class TaskType(enum.StrEnum):
    broadcast = "broadcast"
    receipt_delete = "receipt_delete"
    receipt_sync = "receipt_sync"


class TaskStatus(enum.StrEnum):
    scheduled = "scheduled"
    running = "running"
    completed = "completed"
    cancelled = "cancelled"
    failed = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({TaskStatus.completed, TaskStatus.cancelled, TaskStatus.failed})


class ItemStatus(enum.StrEnum):
    """Per-item ledger states. `sending` is a claim: committed before the side effect."""

    sending = "sending"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"


class Role(enum.StrEnum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"

    def allows(self, needed: Role) -> bool:
        order = [Role.viewer, Role.operator, Role.admin]
        return order.index(self) >= order.index(needed)
