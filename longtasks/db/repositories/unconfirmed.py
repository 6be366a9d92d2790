"""Unconfirmed sends: a request left, no answer came back. Settled by evidence, then by policy.

Evidence first: a status webhook carrying the item's key (or its wamid) has given the item a
delivery state, so the provider took the message: the send succeeded (its delivery may still
have failed). Without evidence, nothing is decided until the webhook pipeline has proven it
works for this sender number (a status arrived for a send dispatched *after* the item) and a
grace period has passed since the item's dispatch, or until the longest time a status can
still arrive (Meta retries webhooks for 7 days) has passed. Then the broadcast's policy:
`at_most_once` counts the item failed (`unconfirmed`), `at_least_once` arms it to be sent
again (a page re-run sends it; `resends` counts it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.domain import UnconfirmedPolicy

UNCONFIRMED_CODE = "unconfirmed"


@dataclass(frozen=True)
class Settled:
    succeeded: int = 0
    failed: int = 0
    rearmed_seqs: tuple[int, ...] = ()


@dataclass(frozen=True)
class Outlook:
    # Every item still `unconfirmed`, with or without a status: the task is not done before
    # each is settled.
    remaining: int
    # Of those, items a status webhook spoke for after this look's `settle_known` ran (its
    # statements each see the latest commits): settled by the next look, at once.
    settle_now: int
    # When the next item could be decided by policy (None: nothing remains).
    decides_at: dt.datetime | None
    # Whether a later send from the sender already got its status.
    pipeline_proven: bool


# Evidence settles: an unconfirmed item with a delivery state, and an item the policy already
# counted failed `unconfirmed` whose status came later than the grace (the task still runs).
# The policy's verdict itself (delivery failed with code `unconfirmed`) is no evidence; any
# status from Meta replaces it (`deliveries`), a `failed` one too: the message was taken.
_SETTLE_KNOWN = text("""
    WITH old AS (
        SELECT item_key, status AS old_status FROM task_items
        WHERE task_id = :task_id
          AND ((status = 'unconfirmed' AND delivery IS NOT NULL)
               OR (status = 'failed' AND error_code = :code AND delivery IS NOT NULL
                   AND (delivery <> 2 OR delivery_code IS DISTINCT FROM :code)))
        ORDER BY item_key FOR UPDATE
    )
    UPDATE task_items AS ti
    SET status = 'succeeded', error_code = NULL, error_message = NULL, updated_at = now()
    FROM old WHERE ti.task_id = :task_id AND ti.item_key = old.item_key
    RETURNING old.old_status
""")

# Due: no delivery state yet, and either dispatched before the newest send of its number that
# got a status and longer ago than the grace period, or longer ago than any status can come.
_DUE = """
    SELECT item_key FROM task_items
    WHERE task_id = :task_id AND status = 'unconfirmed' AND delivery IS NULL
      AND ((coalesce(dispatched_at, updated_at) < :proven_after
            AND coalesce(dispatched_at, updated_at) < now() - make_interval(secs => :grace_s))
           OR coalesce(dispatched_at, updated_at) < now() - make_interval(secs => :max_wait_s))
    ORDER BY item_key FOR UPDATE
"""

_FAIL_DUE = text(
    "WITH due AS (" + _DUE + ")"  # noqa: S608 (constant text; values are bound parameters)
    """
    UPDATE task_items AS ti
    SET status = 'failed', error_code = :code, error_message = :message,
        delivery = 2, delivery_code = :code, failed_at = now(), updated_at = now()
    FROM due WHERE ti.task_id = :task_id AND ti.item_key = due.item_key
    RETURNING ti.seq
"""
)

_REARM_DUE = text(
    "WITH due AS (" + _DUE + ")"  # noqa: S608 (constant text; values are bound parameters)
    """
    UPDATE task_items AS ti
    SET status = 'sending', dispatched_at = NULL, dispatched_by = NULL, resends = ti.resends + 1,
        updated_at = now()
    FROM due WHERE ti.task_id = :task_id AND ti.item_key = due.item_key
    RETURNING ti.seq
"""
)

_OUTLOOK = text("""
    SELECT count(*),
           min(coalesce(dispatched_at, updated_at)) FILTER (WHERE delivery IS NULL),
           count(*) FILTER (WHERE delivery IS NOT NULL)
    FROM task_items WHERE task_id = :task_id AND status = 'unconfirmed'
""")

_PROVEN_AFTER = text("""
    SELECT newest_dispatch_with_status FROM wa_webhook_health WHERE sender_id = :sender
""")


async def proven_after(conn: AsyncConnection, sender_id: str) -> dt.datetime | None:
    """The newest dispatch of this sender whose status arrived: sends before it would have
    had theirs too, had the provider taken them."""
    value = (await conn.execute(_PROVEN_AFTER, {"sender": sender_id})).scalar()
    return value if isinstance(value, dt.datetime) else None


@dataclass(frozen=True)
class Known:
    from_unconfirmed: int = 0
    from_failed: int = 0


async def settle_known(conn: AsyncConnection, task_id: int) -> Known:
    """Items a status webhook has spoken for: the provider took them, the send succeeded."""
    rows = (await conn.execute(_SETTLE_KNOWN, {"task_id": task_id, "code": UNCONFIRMED_CODE})).all()
    from_failed = sum(1 for r in rows if r[0] == "failed")
    return Known(from_unconfirmed=len(rows) - from_failed, from_failed=from_failed)


async def decide_due(
    conn: AsyncConnection,
    task_id: int,
    *,
    sender_id: str,
    policy: UnconfirmedPolicy,
    grace_s: float,
    max_wait_s: float,
) -> Settled:
    """Apply the policy to unconfirmed items whose wait is over."""
    proven = await proven_after(conn, sender_id)
    params = {
        "task_id": task_id,
        # No proof yet: no item is due by the proof rule (only by max_wait).
        "proven_after": proven or dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        "grace_s": grace_s,
        "max_wait_s": max_wait_s,
    }
    if policy is UnconfirmedPolicy.at_most_once:
        message = "no answer to the send and no status webhook: not re-sent (at_most_once)"
        failed = (
            await conn.execute(_FAIL_DUE, {**params, "code": UNCONFIRMED_CODE, "message": message})
        ).all()
        return Settled(failed=len(failed))
    rearmed = (await conn.execute(_REARM_DUE, params)).all()
    return Settled(rearmed_seqs=tuple(sorted(int(r[0]) for r in rearmed)))


async def outlook(
    conn: AsyncConnection, task_id: int, *, sender_id: str, grace_s: float, max_wait_s: float
) -> Outlook:
    count, oldest, with_status = (await conn.execute(_OUTLOOK, {"task_id": task_id})).one()
    proven = await proven_after(conn, sender_id)
    if oldest is None:
        return Outlook(
            remaining=int(count),
            settle_now=int(with_status),
            decides_at=None,
            pipeline_proven=proven is not None,
        )
    pipeline_proven = proven is not None and proven > oldest
    wait = grace_s if pipeline_proven else max_wait_s
    return Outlook(
        remaining=int(count),
        settle_now=int(with_status),
        decides_at=oldest + dt.timedelta(seconds=wait),
        pipeline_proven=pipeline_proven,
    )
