"""Message delivery state from WhatsApp's status webhooks, in the per-item ledger.

A status names its message by wamid and, for our sends, by `biz_opaque_callback_data`, which is
the item's key (`contracts.messages`). `apply_statuses` takes a whole batch in one statement:
it finds each status's item (by key, else by wamid), only among broadcasts sent from the number
the webhook names; raises the item's delivery rank (accepted 1 < failed 2 < delivered 3 <
read 4; a duplicate, or a `delivered` after `read`, changes nothing; the broadcast's own
"failed `unconfirmed`" verdict on a send no status had spoken for is not Meta's word, and any
status of the message replaces it: a late `sent` makes it accepted, a `failed` gives its code);
moves the task's delivery counters by exactly the items whose rank changed (an item is counted
in one state only); records, per sender number, the newest
dispatch whose status arrived (the proof that the pipeline works, `wa_webhook_health`); adds
recipients whose message failed with 131050 (opted out) to the business's suppression list and
holds those that got 131049 for 24 hours; and keeps statuses of unknown wamids in
`wa_status_inbox`, to apply once their send is recorded.

Rows are locked in (task, key) order before they change, as settling does, so the two never
deadlock on items; task rows are locked in id order after them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.db.repositories.tasks import TASK_CHANNEL
from longtasks.db.repositories.unconfirmed import UNCONFIRMED_CODE
from longtasks.domain import Delivery
from longtasks.providers.whatsapp_webhooks import StatusUpdate


@dataclass(frozen=True)
class ApplyResult:
    matched: int = 0  # statuses that found their item
    changed: int = 0  # items whose delivery state moved
    kept: int = 0  # statuses of unknown messages, kept in the inbox
    refused: int = 0  # statuses naming our item but another sender number
    tasks: int = 0  # tasks whose delivery counters moved
    suppressed: int = 0  # recipients opted out (131050) or held (131049) by these statuses


# No two CTEs are joined to each other: the planner guesses one row for each (it cannot see
# into unnest), and a nested loop of 1,000 by 1,000 rows made a 1,000-status notification take
# seconds. Each step joins one CTE to a table through its index, and carries on the columns
# later steps need; a status's own item is excluded from the inbox by a hashed NOT IN.
# Locks: the items (by task_id, item_key), then their tasks (by id); tasks.delete_task takes a
# task's items in the same order before the task row, so the two wait, never deadlock.
_APPLY = text("""
WITH s AS (
    SELECT * FROM unnest(
        CAST(:wamids AS text[]), CAST(:ranks AS int2[]), CAST(:statuses AS text[]),
        CAST(:ats AS timestamptz[]), CAST(:pnids AS text[]), CAST(:callbacks AS text[]),
        CAST(:codes AS text[]), CAST(:task_ids AS int8[]), CAST(:item_keys AS text[])
    ) WITH ORDINALITY AS s(wamid, rank, status, at, pnid, callback, code, task_id, item_key, n)
),
named AS (
    SELECT s.n, s.wamid, s.rank, s.at, s.pnid, s.code, ti.task_id, ti.item_key FROM s
    JOIN task_items AS ti ON ti.task_id = s.task_id AND ti.item_key = s.item_key
    WHERE s.task_id IS NOT NULL
    UNION ALL
    SELECT s.n, s.wamid, s.rank, s.at, s.pnid, s.code, ti.task_id, ti.item_key FROM s
    JOIN task_items AS ti ON ti.provider_ref = s.wamid
    WHERE s.task_id IS NULL
),
found AS (
    SELECT named.* FROM named
    JOIN broadcasts AS b ON b.task_id = named.task_id AND b.sender_id = named.pnid
),
agg AS (
    SELECT task_id, item_key, max(rank) AS rank, min(wamid) AS wamid, min(pnid) AS pnid,
           min(at) FILTER (WHERE rank = 1) AS accepted_at,
           min(at) FILTER (WHERE rank = 2) AS failed_at,
           min(at) FILTER (WHERE rank = 3) AS delivered_at,
           min(at) FILTER (WHERE rank = 4) AS read_at,
           max(code) FILTER (WHERE rank = 2) AS code
    FROM found
    GROUP BY task_id, item_key
),
old AS (
    SELECT agg.*, ti.delivery AS old_delivery, ti.dispatched_at, ti.label,
           -- The rank a status must beat: our own "failed" verdict on an unconfirmed send
           -- (no status had come) is no word from Meta; any status of the message replaces it.
           CASE WHEN ti.delivery = 2 AND ti.delivery_code = :verdict THEN 0
                ELSE coalesce(ti.delivery, 0) END AS held,
           coalesce(ti.delivery = 2 AND ti.delivery_code = :verdict, false) AS verdict
    FROM task_items AS ti
    JOIN agg ON agg.task_id = ti.task_id AND agg.item_key = ti.item_key
    ORDER BY ti.task_id, ti.item_key
    FOR UPDATE OF ti
),
upd AS (
    UPDATE task_items AS ti
    SET delivery = CASE WHEN o.rank > o.held THEN o.rank ELSE ti.delivery END,
        delivery_code = CASE WHEN o.rank = 2 AND o.rank > o.held THEN o.code
                             WHEN o.verdict AND o.rank > o.held THEN NULL
                             ELSE ti.delivery_code END,
        accepted_at = CASE WHEN o.rank <> 2 AND o.rank > o.held
                           THEN coalesce(ti.accepted_at, o.accepted_at, o.delivered_at,
                                         o.read_at)
                           ELSE ti.accepted_at END,
        delivered_at = CASE WHEN o.rank >= 3 AND o.rank > o.held
                            THEN coalesce(ti.delivered_at, o.delivered_at, o.read_at)
                            ELSE ti.delivered_at END,
        read_at = CASE WHEN o.rank = 4 AND o.rank > o.held
                       THEN o.read_at ELSE ti.read_at END,
        failed_at = CASE WHEN o.rank = 2 AND o.rank > o.held THEN o.failed_at
                         WHEN o.verdict AND o.rank > o.held THEN NULL
                         ELSE ti.failed_at END,
        provider_ref = coalesce(ti.provider_ref, o.wamid)
    FROM old AS o
    WHERE ti.task_id = o.task_id AND ti.item_key = o.item_key
      AND (o.rank > o.held OR ti.provider_ref IS NULL)
    RETURNING ti.task_id, o.old_delivery, ti.delivery
),
deltas AS (
    SELECT task_id,
           sum((coalesce(delivery, 0) = 1)::int - (coalesce(old_delivery, 0) = 1)::int) AS a,
           sum((coalesce(delivery, 0) = 3)::int - (coalesce(old_delivery, 0) = 3)::int) AS d,
           sum((coalesce(delivery, 0) = 4)::int - (coalesce(old_delivery, 0) = 4)::int) AS r,
           sum((coalesce(delivery, 0) = 2)::int - (coalesce(old_delivery, 0) = 2)::int) AS f
    FROM upd WHERE coalesce(delivery, 0) <> coalesce(old_delivery, 0)
    GROUP BY task_id
),
task_locks AS (
    SELECT t.id FROM long_running_tasks AS t
    WHERE t.id IN (SELECT task_id FROM deltas) ORDER BY t.id FOR UPDATE
),
counted AS (
    UPDATE long_running_tasks AS t
    SET delivery_accepted = t.delivery_accepted + d.a,
        delivery_delivered = t.delivery_delivered + d.d,
        delivery_read = t.delivery_read + d.r,
        delivery_failed = t.delivery_failed + d.f,
        version = t.version + 1, updated_at = now()
    FROM deltas AS d
    WHERE t.id = d.task_id AND t.id IN (SELECT id FROM task_locks)
    RETURNING t.id, t.business_id, t.version
),
notified AS (
    SELECT pg_notify(:channel, json_build_object(
        'task_id', id, 'business_id', business_id, 'version', version)::text)
    FROM counted
),
health AS (
    INSERT INTO wa_webhook_health AS h (sender_id, newest_dispatch_with_status, last_status_at)
    SELECT pnid, max(dispatched_at), now()
    FROM old
    WHERE dispatched_at IS NOT NULL
    GROUP BY pnid
    ON CONFLICT (sender_id) DO UPDATE
        SET newest_dispatch_with_status = greatest(h.newest_dispatch_with_status,
                                                   excluded.newest_dispatch_with_status),
            last_status_at = excluded.last_status_at
    RETURNING 1
),
suppressed AS (
    INSERT INTO wa_suppressions AS w (business_id, phone, reason, source, expires_at)
    SELECT DISTINCT ON (b.business_id, o.label) b.business_id, o.label,
           CASE WHEN o.code = '131050' THEN 'opted_out' ELSE 'marketing_limit' END,
           'status ' || o.code,
           CASE WHEN o.code = '131050' THEN NULL ELSE now() + interval '24 hours' END
    FROM old AS o
    JOIN broadcasts AS b ON b.task_id = o.task_id
    WHERE o.code IN ('131050', '131049') AND o.label IS NOT NULL
    ORDER BY b.business_id, o.label, o.code DESC
    ON CONFLICT (business_id, phone) DO UPDATE
        SET reason = CASE WHEN w.expires_at IS NULL THEN w.reason ELSE excluded.reason END,
            source = CASE WHEN w.expires_at IS NULL THEN w.source ELSE excluded.source END,
            expires_at = CASE WHEN w.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL
                              ELSE greatest(w.expires_at, excluded.expires_at) END
    RETURNING 1
),
kept AS (
    INSERT INTO wa_status_inbox (wamid, status, phone_number_id, callback, code, occurred_at)
    SELECT s.wamid, s.status, s.pnid, s.callback, s.code, s.at FROM s
    WHERE s.n NOT IN (SELECT n FROM named)
    ON CONFLICT (wamid, status) DO NOTHING
    RETURNING 1
)
SELECT (SELECT count(*) FROM found),
       (SELECT count(*) FROM upd WHERE coalesce(delivery, 0) <> coalesce(old_delivery, 0)),
       (SELECT count(*) FROM s WHERE s.n NOT IN (SELECT n FROM named)),
       (SELECT count(DISTINCT n) FROM named) - (SELECT count(DISTINCT n) FROM found),
       (SELECT count(*) FROM notified),
       (SELECT count(*) FROM health),
       (SELECT count(*) FROM kept),
       (SELECT count(*) FROM suppressed)
""")


async def apply_statuses(conn: AsyncConnection, statuses: Sequence[StatusUpdate]) -> ApplyResult:
    """Apply a batch of statuses in one statement (idempotent, order-proof)."""
    if not statuses:
        return ApplyResult()
    row = (
        await conn.execute(
            _APPLY,
            {
                "wamids": [s.wamid for s in statuses],
                "ranks": [int(s.delivery) for s in statuses],
                "statuses": [s.status for s in statuses],
                "ats": [s.occurred_at for s in statuses],
                "pnids": [s.phone_number_id for s in statuses],
                "callbacks": [s.callback for s in statuses],
                "codes": [s.error_code for s in statuses],
                "task_ids": [s.task_id for s in statuses],
                "item_keys": [s.item_key for s in statuses],
                "channel": TASK_CHANNEL,
                "verdict": UNCONFIRMED_CODE,
            },
        )
    ).one()
    return ApplyResult(
        matched=int(row[0]),
        changed=int(row[1]),
        kept=int(row[2]),
        refused=int(row[3]),
        tasks=int(row[4]),
        suppressed=int(row[7]),
    )


_DRAIN_INBOX = text("""
    DELETE FROM wa_status_inbox AS i
    WHERE i.wamid = ANY(CAST(:wamids AS text[]))
      AND EXISTS (SELECT 1 FROM task_items AS ti WHERE ti.provider_ref = i.wamid)
    RETURNING i.wamid, i.status, i.phone_number_id, i.callback, i.code, i.occurred_at
""")

_RANKS = {
    "sent": Delivery.accepted,
    "failed": Delivery.failed,
    "delivered": Delivery.delivered,
    "read": Delivery.read,
}


async def drain_inbox(conn: AsyncConnection, wamids: Sequence[str]) -> ApplyResult:
    """Apply statuses that arrived before their send's wamid was recorded, now that it is.

    Called after a send is recorded, and by the webhook after it kept statuses in the inbox:
    whichever of the two commits last sees the other's rows, so none is left behind.
    """
    if not wamids:
        return ApplyResult()
    rows = (await conn.execute(_DRAIN_INBOX, {"wamids": list(wamids)})).all()
    updates = [
        StatusUpdate(
            wamid=r[0],
            delivery=_RANKS[r[1]],
            status=r[1],
            occurred_at=r[5],
            phone_number_id=r[2],
            callback=r[3],
            error_code=r[4],
        )
        for r in rows
        if r[1] in _RANKS
    ]
    return await apply_statuses(conn, updates)


async def prune_inbox(conn: AsyncConnection, received_before: dt.datetime, limit: int) -> int:
    """Forget statuses of messages that never became known (another app's, or lost), whichever
    sender's: a named cross-business path (migration 0013)."""
    result = await conn.execute(
        text("SELECT longtasks_prune_status_inbox(:before, :limit)"),
        {"before": received_before, "limit": limit},
    )
    return int(result.scalar_one())


async def businesses_of_statuses(
    conn: AsyncConnection, statuses: Sequence[StatusUpdate]
) -> list[int | None]:
    """The business each status is for (the webhook has no token): its item's task's, else the
    sender number's; None when no business sends from that number. A named path (0013)."""
    if not statuses:
        return []
    result = await conn.execute(
        text(
            "SELECT longtasks_status_businesses(CAST(:task_ids AS int8[]),"
            " CAST(:item_keys AS text[]), CAST(:wamids AS text[]), CAST(:pnids AS text[]))"
        ),
        {
            "task_ids": [s.task_id for s in statuses],
            "item_keys": [s.item_key for s in statuses],
            "wamids": [s.wamid for s in statuses],
            "pnids": [s.phone_number_id for s in statuses],
        },
    )
    return [None if b is None else int(b) for b in result.scalar_one()]
