"""The per-item ledger (`task_items`): claim before a side effect, settle after it.

A claim (`sending`) is committed before any external call. Settling moves an item from
`sending` to a final status and reports how many items actually moved, so a retried page never
counts an item twice: the counters are only ever increased by those moves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import RowMapping, text
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.domain import ItemStatus


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


@dataclass(frozen=True)
class Outcome:
    item_key: str
    status: ItemStatus
    error_code: str | None = None
    error_message: str | None = None
    provider_ref: str | None = None


@dataclass(frozen=True)
class SettledCounts:
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0

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


_CLAIM = text("""
    INSERT INTO task_items (task_id, item_key, seq, label, status)
    SELECT :task_id, k, s, l, 'sending'
    FROM unnest(CAST(:keys AS text[]), CAST(:seqs AS int[]), CAST(:labels AS text[])) AS t(k, s, l)
    ON CONFLICT (task_id, item_key) DO UPDATE
        SET attempts = task_items.attempts + 1, updated_at = now()
        WHERE task_items.status = 'sending'
    RETURNING item_key, attempts
""")

_SETTLE = text("""
    UPDATE task_items AS t
    SET status = v.status, error_code = v.code, error_message = v.msg, provider_ref = v.ref,
        updated_at = now()
    FROM unnest(CAST(:keys AS text[]), CAST(:statuses AS text[]), CAST(:codes AS text[]),
                CAST(:msgs AS text[]), CAST(:refs AS text[])) AS v(key, status, code, msg, ref)
    WHERE t.task_id = :task_id AND t.item_key = v.key AND t.status = 'sending'
    RETURNING t.status
""")


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
    return [Claim(item_key=r[0], attempts=r[1]) for r in result]


async def settle(conn: AsyncConnection, task_id: int, outcomes: Sequence[Outcome]) -> SettledCounts:
    """Move claimed items to their outcome; count only the rows that were still claimed."""
    if not outcomes:
        return SettledCounts()
    result = await conn.execute(
        _SETTLE,
        {
            "task_id": task_id,
            "keys": [o.item_key for o in outcomes],
            "statuses": [o.status.value for o in outcomes],
            "codes": [o.error_code for o in outcomes],
            "msgs": [_clip(o.error_message, 2000) for o in outcomes],
            "refs": [o.provider_ref for o in outcomes],
        },
    )
    return SettledCounts.from_statuses([r[0] for r in result])


async def release(conn: AsyncConnection, task_id: int, item_keys: Sequence[str]) -> int:
    """Drop claims whose side effect was never started (cancelled mid-page)."""
    if not item_keys:
        return 0
    result = await conn.execute(
        text(
            "DELETE FROM task_items WHERE task_id = :task_id"
            " AND item_key = ANY(CAST(:keys AS text[])) AND status = 'sending'"
        ),
        {"task_id": task_id, "keys": list(item_keys)},
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
        conditions.append("(seq, item_key) > (:after_seq, :after_key)")
        params["after_seq"], params["after_key"] = after
    # Only the fixed condition strings above are joined; every value is a bound parameter.
    where = " AND ".join(conditions)
    query = text(
        "SELECT item_key, seq, label, status, error_code, error_message, provider_ref,"  # noqa: S608
        f" attempts, updated_at FROM task_ledger WHERE {where}"
        " ORDER BY seq, item_key LIMIT :limit"
    )
    return (await conn.execute(query, params)).mappings().all()


def _clip(value: str | None, limit: int) -> str | None:
    return value if value is None or len(value) <= limit else value[: limit - 1] + "…"
