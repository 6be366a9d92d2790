"""The per-item ledger (`task_items`): claim before a side effect, settle after it.

A claim (`sending`) is committed before any external call. Settling moves an item from
`sending` (or `unconfirmed`) to a final status and reports how many items actually moved, so a
retried page never counts an item twice: the counters are only ever increased by those moves.

For side effects that must not be repeated (a WhatsApp send has no idempotency key), a claimed
item is also *marked dispatched*, committed, right before the request leaves; an attempt that
finds the mark set does not repeat the effect, the item is `unconfirmed` instead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.domain import Delivery, ItemStatus


@dataclass(frozen=True)
class ClaimRequest:
    item_key: str
    seq: int
    label: str | None


@dataclass(frozen=True)
class Claim:
    item_key: str
    # 1 on the first claim; more means an earlier attempt may already have performed the effect.
    attempts: int
    # An earlier attempt marked it dispatched: its request may have left.
    dispatched: bool = False


@dataclass(frozen=True)
class Outcome:
    item_key: str
    status: ItemStatus
    error_code: str | None = None
    error_message: str | None = None
    provider_ref: str | None = None
    # Messages: what the send itself said about delivery (accepted, or failed at send time).
    delivery: Delivery | None = None


@dataclass(frozen=True)
class DeliveryCounts:
    """Items by delivery state, or changes to those numbers."""

    accepted: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0

    def __bool__(self) -> bool:
        return any((self.accepted, self.delivered, self.read, self.failed))

    @classmethod
    def of_changes(cls, changes: Sequence[tuple[int | None, int | None]]) -> DeliveryCounts:
        """From (old, new) delivery ranks of items: one out of the old, one into the new."""
        moved: Counter[int] = Counter()
        for old, new in changes:
            if old == new:
                continue
            if old is not None:
                moved[old] -= 1
            if new is not None:
                moved[new] += 1
        return cls(
            accepted=moved[Delivery.accepted],
            delivered=moved[Delivery.delivered],
            read=moved[Delivery.read],
            failed=moved[Delivery.failed],
        )


@dataclass(frozen=True)
class SettledCounts:
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    # Change in the number of unconfirmed items (into it, out of it).
    unconfirmed: int = 0
    delivery: DeliveryCounts = DeliveryCounts()

    @classmethod
    def from_statuses(cls, statuses: Sequence[str]) -> SettledCounts:
        c = Counter(statuses)
        skipped = c[ItemStatus.skipped.value]
        return cls(
            # A skipped item was handled without error: it is a success that needed no action.
            succeeded=c[ItemStatus.succeeded.value] + skipped,
            failed=c[ItemStatus.failed.value],
            skipped=skipped,
            cancelled=c[ItemStatus.cancelled.value],
        )

    @classmethod
    def from_moves(cls, moves: Sequence[tuple[str, str, int | None, int | None]]) -> SettledCounts:
        """From (old status, new status, old delivery, new delivery) of each moved item."""
        unconfirmed = ItemStatus.unconfirmed.value
        settled = cls.from_statuses([new for _, new, _, _ in moves if new != unconfirmed])
        into = sum(1 for old, new, _, _ in moves if new == unconfirmed and old != unconfirmed)
        out = sum(1 for old, new, _, _ in moves if old == unconfirmed and new != unconfirmed)
        return cls(
            succeeded=settled.succeeded,
            failed=settled.failed,
            skipped=settled.skipped,
            cancelled=settled.cancelled,
            unconfirmed=into - out,
            delivery=DeliveryCounts.of_changes([(a, b) for _, _, a, b in moves]),
        )


# The item's business is its task's (a foreign key holds the pair); a task this transaction
# cannot see gives NULL, which the column refuses.
_CLAIM = text("""
    INSERT INTO task_items (business_id, task_id, item_key, seq, label, status)
    SELECT (SELECT business_id FROM long_running_tasks WHERE id = :task_id), :task_id,
           k, s, l, 'sending'
    FROM unnest(CAST(:keys AS text[]), CAST(:seqs AS int[]), CAST(:labels AS text[])) AS t(k, s, l)
    ON CONFLICT (task_id, item_key) DO UPDATE
        SET attempts = task_items.attempts + 1, updated_at = now()
        WHERE task_items.status = 'sending'
    RETURNING item_key, attempts, dispatched_at IS NOT NULL
""")

# Rows are locked in key order first (the `old` CTE), so settling and the status webhooks,
# which lock in the same order, never deadlock; and the locked row's values are the ones
# replaced, so the counters move by exactly what changed.
_SETTLE = text("""
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:keys AS text[]), CAST(:statuses AS text[]), CAST(:codes AS text[]),
            CAST(:msgs AS text[]), CAST(:refs AS text[]), CAST(:deliveries AS int2[])
        ) AS v(key, status, code, msg, ref, delivery)
    ),
    old AS (
        SELECT t.item_key, t.status AS old_status, t.delivery AS old_delivery
        FROM task_items AS t JOIN v ON v.key = t.item_key
        WHERE t.task_id = :task_id AND t.status IN ('sending', 'unconfirmed')
          AND NOT (t.status = 'unconfirmed' AND v.status = 'unconfirmed')
        ORDER BY t.item_key
        FOR UPDATE OF t
    )
    UPDATE task_items AS t
    SET status = v.status, error_code = v.code, error_message = v.msg,
        provider_ref = coalesce(v.ref, t.provider_ref),
        delivery = greatest(t.delivery, v.delivery),
        delivery_code = CASE WHEN v.delivery > coalesce(t.delivery, 0) THEN v.code
                             ELSE t.delivery_code END,
        accepted_at = CASE WHEN v.delivery = 1 THEN coalesce(t.accepted_at, now())
                           ELSE t.accepted_at END,
        failed_at = CASE WHEN v.delivery = 2 THEN coalesce(t.failed_at, now())
                         ELSE t.failed_at END,
        updated_at = now()
    FROM v JOIN old ON old.item_key = v.key
    WHERE t.task_id = :task_id AND t.item_key = v.key
    RETURNING old.old_status, t.status, old.old_delivery, t.delivery
""")

# One statement each, run outside a transaction block: one round trip to the server (which
# commits it, waiting for the disk) for a batch of marks from every page of a worker.
_MARK_DISPATCHED = text("""
    UPDATE task_items AS t SET dispatched_at = clock_timestamp(), dispatched_by = v.token
    FROM unnest(CAST(:task_ids AS int8[]), CAST(:keys AS text[]), CAST(:tokens AS text[]))
        AS v(task_id, key, token)
    WHERE t.task_id = v.task_id AND t.item_key = v.key AND t.status = 'sending'
      AND (t.dispatched_at IS NULL OR t.dispatched_by = v.token)
    RETURNING t.task_id, t.item_key, t.dispatched_by
""")

_UNMARK_DISPATCHED = text("""
    UPDATE task_items AS t SET dispatched_at = NULL, dispatched_by = NULL
    FROM unnest(CAST(:task_ids AS int8[]), CAST(:keys AS text[]), CAST(:tokens AS text[]))
        AS v(task_id, key, token)
    WHERE t.task_id = v.task_id AND t.item_key = v.key AND t.status = 'sending'
      AND t.dispatched_by = v.token
""")


async def commit_without_waiting_for_disk(conn: AsyncConnection) -> None:
    """Let this transaction's commit return before its WAL reaches the disk.

    For ledger writes whose loss in a crash of Postgres itself (not of a worker: the commit is
    visible to every session at once) only means doing them again: a claim, or settled
    outcomes and their counters, lost together since a transaction is atomic, leave the items
    claimed, and the page's retry settles them again. An item that was sent still carries its
    dispatch mark, whose commit *does* wait for the disk (and so flushes every earlier write
    with it), so it is never sent twice. On a disk whose fsync takes ~10 ms (this machine)
    waiting on every flush capped the whole worker at ~100 commits/s.
    """
    await conn.execute(text("SET LOCAL synchronous_commit TO OFF"))


async def claim(
    conn: AsyncConnection, task_id: int, requests: Sequence[ClaimRequest]
) -> list[Claim]:
    """Claim items not settled yet. Settled items are left out of the answer."""
    if not requests:
        return []
    result = await conn.execute(
        _CLAIM,
        {
            "task_id": task_id,
            "keys": [r.item_key for r in requests],
            "seqs": [r.seq for r in requests],
            "labels": [r.label for r in requests],
        },
    )
    return [Claim(item_key=r[0], attempts=r[1], dispatched=bool(r[2])) for r in result]


DispatchKey = tuple[int, str, str]  # (task id, item key, the marking attempt's token)


async def mark_dispatched(conn: AsyncConnection, items: Sequence[DispatchKey]) -> set[DispatchKey]:
    """Mark claimed items as about to be sent by the attempt holding `token`; returns the
    (task, item, token) marks granted: each names the one attempt that may send that item.
    An item another attempt marked (or settled) is left out, so only one attempt ever sends
    an item; an attempt that marked it already (its first call's answer lost with the
    connection) gets it.

    Two attempts may ask for the same item in one call (a retried page and the attempt
    Temporal gave up on, both marking once the database is back): the UPDATE joins the item
    to both and writes one of them, which one is not defined, so the answer names the token
    the row now holds, never just the item."""
    if not items:
        return set()
    ordered = sorted(set(items))
    result = await conn.execute(
        _MARK_DISPATCHED,
        {
            "task_ids": [t for t, _, _ in ordered],
            "keys": [k for _, k, _ in ordered],
            "tokens": [token for _, _, token in ordered],
        },
    )
    return {(int(r[0]), r[1], r[2]) for r in result}


async def unmark_dispatched(conn: AsyncConnection, items: Sequence[DispatchKey]) -> None:
    """The send was refused before anything was taken (a throttle): sending again is safe."""
    if items:
        ordered = sorted(set(items))
        await conn.execute(
            _UNMARK_DISPATCHED,
            {
                "task_ids": [t for t, _, _ in ordered],
                "keys": [k for _, k, _ in ordered],
                "tokens": [token for _, _, token in ordered],
            },
        )


async def settle(conn: AsyncConnection, task_id: int, outcomes: Sequence[Outcome]) -> SettledCounts:
    """Move claimed (or unconfirmed) items to their outcome; count only the rows that moved."""
    if not outcomes:
        return SettledCounts()
    # One outcome per item: a duplicate key would make the UPDATE pick one at random.
    latest = {o.item_key: o for o in outcomes}
    ordered = [latest[k] for k in sorted(latest)]
    result = await conn.execute(
        _SETTLE,
        {
            "task_id": task_id,
            "keys": [o.item_key for o in ordered],
            "statuses": [o.status.value for o in ordered],
            "codes": [o.error_code for o in ordered],
            "msgs": [_clip(o.error_message, 2000) for o in ordered],
            "refs": [o.provider_ref for o in ordered],
            "deliveries": [int(o.delivery) if o.delivery is not None else None for o in ordered],
        },
    )
    return SettledCounts.from_moves([(r[0], r[1], r[2], r[3]) for r in result])


async def release(conn: AsyncConnection, task_id: int, claims: Sequence[Claim]) -> int:
    """Drop claims whose side effect was never started (cancelled mid-page), each only if no
    attempt claimed it since: an attempt Temporal gave up on (its heartbeats late) may still
    be running while the next one has claimed the same items, and must not take them away."""
    if not claims:
        return 0
    result = await conn.execute(
        text(
            "DELETE FROM task_items AS t"
            " USING unnest(CAST(:keys AS text[]), CAST(:attempts AS int[])) AS c(k, a)"
            " WHERE t.task_id = :task_id AND t.item_key = c.k AND t.attempts = c.a"
            " AND t.status = 'sending' AND t.dispatched_at IS NULL"
        ),
        {
            "task_id": task_id,
            "keys": [c.item_key for c in claims],
            "attempts": [c.attempts for c in claims],
        },
    )
    return int(result.rowcount or 0)


async def settled_keys(
    conn: AsyncConnection, task_id: int, *, after_seq: int, up_to_seq: int
) -> set[str]:
    """Items of a seq range that earlier attempts settled (a re-run page skips them)."""
    result = await conn.execute(
        text(
            "SELECT item_key FROM task_items WHERE task_id = :task_id"
            " AND seq > :after AND seq <= :up_to AND status <> 'sending'"
        ),
        {"task_id": task_id, "after": after_seq, "up_to": up_to_seq},
    )
    return {r[0] for r in result}


async def count_claimed(conn: AsyncConnection, task_id: int, item_keys: Sequence[str]) -> int:
    result = await conn.execute(
        text(
            "SELECT count(*) FROM task_items WHERE task_id = :task_id"
            " AND item_key = ANY(CAST(:keys AS text[])) AND status = 'sending'"
        ),
        {"task_id": task_id, "keys": list(item_keys)},
    )
    return int(result.scalar_one())


async def list_items(
    conn: AsyncConnection,
    task_id: int,
    *,
    status: str | None,
    after: tuple[int, str] | None,
    limit: int,
) -> Sequence[RowMapping]:
    """A task's item outcomes in item order: its `task_items` rows and, for a delete by
    filter, the receipts its pages recorded as deleted (the `task_ledger` view, which has no
    class of its own: its readers, the API's item list and CSV export, take the mappings as
    they are)."""
    conditions = ["task_id = :task_id"]
    params: dict[str, object] = {"task_id": task_id, "limit": limit}
    if status is not None:
        conditions.append("status = :status")
        params["status"] = status
    if after is not None:
        # `seq >= ...` beside the row comparison: the index (task_id, seq) starts its walk
        # there, where the row comparison alone is a filter over every row before the cursor.
        conditions.append("seq >= :after_seq AND (seq, item_key) > (:after_seq, :after_key)")
        params["after_seq"], params["after_key"] = after
    # Only the fixed condition strings above are joined; every value is a bound parameter.
    where = " AND ".join(conditions)
    query = text(
        "SELECT item_key, seq, label, status, error_code, error_message, provider_ref,"  # noqa: S608
        " attempts, updated_at, delivery, delivery_code, accepted_at, delivered_at, read_at,"
        f" failed_at, resends FROM task_ledger WHERE {where}"
        " ORDER BY seq, item_key LIMIT :limit"
    )
    return (await conn.execute(query, params)).mappings().all()


def _clip(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else value[: limit - 1] + "…"
