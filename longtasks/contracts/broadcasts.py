"""What crosses Temporal for a broadcast's unconfirmed sends: ids and counts only."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class UnconfirmedCheck:
    task_id: int
    # To turn re-armed items' seqs into page numbers the workflow re-runs.
    page_size: int


@dataclass
class UnconfirmedReview:
    # Settled by status webhooks (the provider took them).
    succeeded: int = 0
    # Counted failed by the at_most_once policy, less those a late status proved sent.
    failed: int = 0
    # Armed to be sent again by the at_least_once policy, and the pages holding them.
    rearmed: int = 0
    rearmed_pages: list[int] = field(default_factory=list)
    # Still unconfirmed, and seconds until the policy could decide the oldest of them.
    remaining: int = 0
    decides_in_s: float = 0.0
