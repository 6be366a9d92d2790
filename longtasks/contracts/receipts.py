"""What crosses Temporal for the receipt tasks: ids, modes, page tokens and counts only.

A Gmail page token is an opaque cursor, not mail content, so it may live in workflow history.
"""

from __future__ import annotations

from dataclasses import dataclass

FULL = "full"
INCREMENTAL = "incremental"


@dataclass
class SyncStart:
    """What the sync's start activity decided, and how its list pages are timed."""

    mode: str
    heartbeat_timeout_s: float = 20.0


@dataclass
class ListRequest:
    task_id: int
    mode: str
    page: int
    page_token: str | None = None


@dataclass
class ListResult:
    """One list page staged. `history_too_old`: Gmail no longer has the history to read from;
    the activity has switched the sync to a full one and the workflow lists again from scratch."""

    listed: int = 0
    staged_new: int = 0
    staged_total: int = 0
    next_page_token: str | None = None
    history_too_old: bool = False


@dataclass
class KickInput:
    """The scheduled kick: start an incremental sync of this business's mailbox."""

    business_id: int


@dataclass
class KickRequest:
    business_id: int
    # The kick's workflow id and run id: a retried kick finds the task it already made.
    schedule_key: str


@dataclass
class KickResult:
    task_id: int | None
    reason: str = ""
