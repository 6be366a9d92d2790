"""The domain's vocabulary: task types, task and item statuses, roles, priorities.

The one source of these names. The database's constraints (`db.models`, and the migrations
that a test holds to these enums), the API's schemas (and through its OpenAPI spec the web
page's types), the workflow contracts and the CLI take them from here. Adding a status is a
change here plus a migration of the constraint (tests/db/test_enums_match_database.py fails
until the migration is there).

`TaskType` lists the built-in task types. A deployment may register more (`task_types/`): the
database's `task_types` table holds what is registered, and the API's spec lists its own
registry's types.
"""

from __future__ import annotations

import enum


class TaskType(enum.StrEnum):
    broadcast = "broadcast"
    receipt_delete = "receipt_delete"
    receipt_sync = "receipt_sync"
    audience_import = "audience_import"


class TaskStatus(enum.StrEnum):
    # Over the business's approval threshold: nothing is sent until an admin approves.
    awaiting_approval = "awaiting_approval"
    scheduled = "scheduled"
    running = "running"
    # Starts no new item until resumed (by a person, or by the next day for the daily cap).
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"
    failed = "failed"
    # Nobody approved it within APPROVAL_TTL_S: ended with nothing sent.
    expired = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {TaskStatus.completed, TaskStatus.cancelled, TaskStatus.failed, TaskStatus.expired}
)


class ItemStatus(enum.StrEnum):
    """Per-item ledger states. `sending` is a claim: committed before the side effect.
    `unconfirmed`: the side effect (a WhatsApp send) may have happened and nobody answered;
    it is settled by the provider's status webhook or, after a grace period, by the task's
    `UnconfirmedPolicy`, never by repeating the effect blindly."""

    sending = "sending"
    unconfirmed = "unconfirmed"
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"


class Priority(enum.StrEnum):
    """A start request's priority: the workflow's Temporal priority key, which its activities
    inherit (`longtasks.temporal.tasks.PRIORITY_KEYS`)."""

    high = "high"
    normal = "normal"
    low = "low"


class ReceiptSource(enum.StrEnum):
    """Where a receipt came from; a Gmail receipt carries its message id."""

    gmail = "gmail"
    manual = "manual"
    upload = "upload"
    email = "email"


class AudienceStatus(enum.StrEnum):
    """An uploaded customer list: imported by its task, then ready to send to (or failed,
    with the reason)."""

    importing = "importing"
    ready = "ready"
    failed = "failed"


class RowIssue(enum.StrEnum):
    """Why a row of an uploaded list is not a member of its audience."""

    invalid_phone = "invalid_phone"
    missing_phone = "missing_phone"
    too_many_fields = "too_many_fields"
    duplicate = "duplicate"
    suppressed = "suppressed"


class Delivery(enum.IntEnum):
    """What became of a sent message, by rank: a state never gives way to a lower one.

    `failed` ranks below `delivered`: a message can fail on one of a user's devices and be
    delivered on another, and then it was delivered. One `failed` is not Meta's: the
    broadcast's own verdict on an unconfirmed send (code `unconfirmed`), which any status of
    the message replaces (`db.repositories.deliveries`).
    """

    accepted = 1
    failed = 2
    delivered = 3
    read = 4


class UnconfirmedPolicy(enum.StrEnum):
    """What a broadcast does with a send nobody could confirm once the grace period passed."""

    # Counted failed (`unconfirmed`) and never re-sent: no customer gets a message twice.
    at_most_once = "at_most_once"
    # Re-sent: every customer gets the message, a few maybe twice.
    at_least_once = "at_least_once"


class Role(enum.StrEnum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"

    def allows(self, needed: Role) -> bool:
        order = [Role.viewer, Role.operator, Role.admin]
        return order.index(self) >= order.index(needed)
