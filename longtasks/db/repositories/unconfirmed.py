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


# One statement, so that a look never holds one item while it waits for another of lower key:
# `locked` takes every unconfirmed item of the task, and every item the policy counted failed
# `unconfirmed` that a status has spoken for since, in key order, as settling and the status
# ingest lock theirs. (Two statements, one for each kind, could deadlock with a status batch
# holding an item of the second kind and reaching for one the first had locked.)
#
# Evidence settles (`known`): an unconfirmed item with a delivery state, and an item the policy
# already counted failed `unconfirmed` whose status came later than the grace (the task still
# runs). The policy's verdict itself (delivery failed with code `unconfirmed`) is no evidence;
# any status from Meta replaces it (`deliveries`), a `failed` one too: the message was taken.
#
# The policy decides (`due`) items with no delivery state yet that were dispatched before the
# newest send of their number that got a status and longer ago than the grace period, or
# longer ago than any status can come. `locked` holds each row's latest version (a status
# committed while the look waited for the row is seen), so the two updates never overlap.
_LOOK = """
    WITH locked AS (
        SELECT item_key, status, delivery, coalesce(dispatched_at, updated_at) AS since
        FROM task_items
        WHERE task_id = :task_id
          AND (status = 'unconfirmed'
               OR (status = 'failed' AND error_code = :code AND delivery IS NOT NULL
                   AND (delivery <> 2 OR delivery_code IS DISTINCT FROM :code)))
        ORDER BY item_key FOR UPDATE
    ),
    known AS (
        UPDATE task_items AS ti
        SET status = 'succeeded', error_code = NULL, error_message = NULL, updated_at = now()
        FROM locked
        WHERE ti.task_id = :task_id AND ti.item_key = locked.item_key
          AND locked.delivery IS NOT NULL
        RETURNING locked.status AS old_status
    ),
    due AS (
        UPDATE task_items AS ti
        SET {decision}
        FROM locked
        WHERE ti.task_id = :task_id AND ti.item_key = locked.item_key
          AND locked.status = 'unconfirmed' AND locked.delivery IS NULL
          AND ((locked.since < :proven_after
                AND locked.since < now() - make_interval(secs => :grace_s))
               OR locked.since < now() - make_interval(secs => :max_wait_s))
        RETURNING ti.seq
    )
    SELECT old_status, NULL::int FROM known
    UNION ALL
    SELECT NULL, seq FROM due
"""

_LOOK_AT_MOST_ONCE = text(
    _LOOK.format(
        decision="status = 'failed', error_code = :code, error_message = :message,"
        " delivery = 2, delivery_code = :code, failed_at = now(), updated_at = now()"
    )
)

_LOOK_AT_LEAST_ONCE = text(
    _LOOK.format(
        decision="status = 'sending', dispatched_at = NULL, dispatched_by = NULL,"
        " resends = ti.resends + 1, updated_at = now()"
    )
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


async def settle_and_decide(
    conn: AsyncConnection,
    task_id: int,
    *,
    sender_id: str,
    policy: UnconfirmedPolicy,
    grace_s: float,
    max_wait_s: float,
) -> tuple[Known, Settled]:
    """Settle the items a status webhook has spoken for (the provider took them: the send
    succeeded), and apply the policy to unconfirmed items whose wait is over."""
    proven = await proven_after(conn, sender_id)
    params: dict[str, object] = {
        "task_id": task_id,
        "code": UNCONFIRMED_CODE,
        # No proof yet: no item is due by the proof rule (only by max_wait).
        "proven_after": proven or dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        "grace_s": grace_s,
        "max_wait_s": max_wait_s,
    }
    if policy is UnconfirmedPolicy.at_most_once:
        statement = _LOOK_AT_MOST_ONCE
        params["message"] = (
            "no answer to the send and no status webhook: not re-sent (at_most_once)"
        )
    else:
        statement = _LOOK_AT_LEAST_ONCE
    rows = (await conn.execute(statement, params)).all()
    was = [r[0] for r in rows if r[0] is not None]
    decided = sorted(int(r[1]) for r in rows if r[1] is not None)
    from_failed = sum(1 for status in was if status == "failed")
    known = Known(from_unconfirmed=len(was) - from_failed, from_failed=from_failed)
    if policy is UnconfirmedPolicy.at_most_once:
        return known, Settled(failed=len(decided))
    return known, Settled(rearmed_seqs=tuple(decided))


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
