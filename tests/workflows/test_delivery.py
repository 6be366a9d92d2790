"""Delivery against the real-API sandbox: no idempotency key, status webhooks that arrive late,
twice, out of order or never, answers lost after the message was accepted.

Send outcomes stay exact, no recipient gets a message twice under `at_most_once`, unconfirmed
sends are settled by their webhooks, or by the broadcast's policy once the pipeline is proven
and the grace period passed; delivery counts equal what the sandbox delivered."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.contracts.messages import callback_data_for
from longtasks.db.repositories import deliveries, ledger, unconfirmed
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.ledger import ClaimRequest, DeliveryCounts, Outcome
from longtasks.domain import Delivery, ItemStatus, UnconfirmedPolicy
from longtasks.providers.whatsapp_webhooks import StatusUpdate
from tests.conftest import (
    Stack,
    configure_sender,
    create_broadcast_task,
    get_task_row,
    israeli_numbers,
    ledger_counts,
    running_worker,
    sender_report,
    start_broadcast,
    start_direct,
    wait_for_status,
    wait_until,
)


async def _statuses_settled(stack: Stack, business_id: int, task_id: int) -> dict[str, Any]:
    """Wait until the sandbox has nothing left to deliver and the task's counts agree."""
    holder: dict[str, Any] = {}

    async def quiet() -> bool:
        async with httpx.AsyncClient(base_url=stack.sandbox_url) as http:
            stats = (await http.get("/sandbox/stats")).json()["whatsapp"]
        report = await sender_report(stack, business_id)
        task = await get_task_row(stack.engine, task_id)
        holder.update(report=report, task=task)
        sandbox = report["statuses"]
        return stats["webhooks"]["pending"] == 0 and (
            task.delivery_read,
            task.delivery_delivered + task.delivery_read,
            task.delivery_accepted + task.delivery_delivered + task.delivery_read,
        ) == (sandbox["read"], sandbox["delivered"], sandbox["sent"])

    await wait_until(quiet, timeout_s=60, what="status webhooks to be delivered and counted")
    return holder


async def test_delivery_counts_equal_the_statuses_the_sandbox_delivered(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await configure_sender(
        stack,
        business_id,
        latency_ms=5,
        status_delay_ms=40,
        read_rate=0.5,
        async_failure_rate=0.1,
        duplicate_rate=0.1,
        reorder_rate=0.2,
        lost_response_rate=0.1,
    )
    total = 300
    task_id = await create_broadcast_task(
        stack.engine, business_id, israeli_numbers(total, start=500_000)
    )
    await (
        await start_direct(stack.client, stack.engine, stack.task_queue, business_id, task_id)
    ).result()
    seen = await _statuses_settled(stack, business_id, task_id)
    task, report = seen["task"], seen["report"]
    # Every lost answer was settled by its webhook; nobody got the message twice.
    assert (task.status, task.success_count, task.failed_count) == ("completed", total, 0)
    assert (task.unconfirmed_count, task.resent_count) == (0, 0)
    assert await ledger_counts(stack.engine, task_id) == {"succeeded": total}
    assert (report["accepted"], report["max_per_recipient"]) == (total, 1)
    assert task.delivery_failed == report["statuses"]["failed"] > 0
    assert task.delivery_pending == 0


async def _run_without_webhooks(
    stack: Stack, business_id: int, task_id: int, *, policy: str
) -> Any:
    async with stack.engine.begin() as conn:
        await conn.execute(
            text("UPDATE broadcasts SET unconfirmed_policy = :p WHERE task_id = :t"),
            {"p": policy, "t": task_id},
        )
    # No status will ever come: the policy decides after the longest wait (seconds here).
    queue, settings = stack.own_queue("nohooks", whatsapp_unconfirmed_max_wait_s=2.0)
    async with running_worker(stack.client, settings, stack.app_engine, queue):
        await (await start_direct(stack.client, stack.engine, queue, business_id, task_id)).result()
    return await get_task_row(stack.engine, task_id)


async def test_no_webhooks_at_most_once_reports_unconfirmed_sends_and_repeats_none(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await configure_sender(stack, business_id, webhook_drop_rate=1.0, lost_response_rate=0.2)
    total = 120
    task_id = await create_broadcast_task(
        stack.engine, business_id, israeli_numbers(total, start=510_000)
    )
    task = await _run_without_webhooks(stack, business_id, task_id, policy="at_most_once")
    report = await sender_report(stack, business_id)
    counts = await ledger_counts(stack.engine, task_id)
    unconfirmed = counts.get("failed", 0)
    assert unconfirmed > 0
    assert (task.status, task.success_count, task.failed_count) == (
        "completed",
        total - unconfirmed,
        unconfirmed,
    )
    assert (report["accepted"], report["max_per_recipient"]) == (total, 1)
    async with stack.engine.connect() as conn:
        codes = (
            (
                await conn.execute(
                    text(
                        "SELECT DISTINCT error_code FROM task_items WHERE task_id = :t AND"
                        " status = 'failed'"
                    ),
                    {"t": task_id},
                )
            )
            .scalars()
            .all()
        )
    assert codes == ["unconfirmed"]
    assert (task.unconfirmed_count, task.resent_count, task.delivery_failed) == (
        0,
        0,
        unconfirmed,
    )


async def test_no_webhooks_at_least_once_resends_the_unconfirmed_and_says_how_many(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await configure_sender(stack, business_id, webhook_drop_rate=1.0, lost_response_rate=0.2)
    total = 120
    task_id = await create_broadcast_task(
        stack.engine, business_id, israeli_numbers(total, start=520_000)
    )
    task = await _run_without_webhooks(stack, business_id, task_id, policy="at_least_once")
    report = await sender_report(stack, business_id)
    assert (task.status, task.success_count, task.failed_count) == ("completed", total, 0)
    assert task.resent_count > 0
    # A lost answer is a lost answer, not a lost message: every re-send is a duplicate, and
    # the task says how many (re-sends can lose their answers too, and are re-sent again).
    assert report["accepted"] == total + task.resent_count
    assert report["unique_recipients"] == total
    assert report["max_per_recipient"] >= 2


async def test_a_send_marked_but_never_made_is_decided_once_the_pipeline_is_proven(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """A worker died after marking an item dispatched and before its request left. Nothing
    will ever come for it; statuses of later sends prove the pipeline works, so after the
    grace period `at_least_once` sends it, and it reaches the recipient once."""
    business_id = await new_business()
    await configure_sender(stack, business_id, status_delay_ms=20)
    numbers = israeli_numbers(40, start=530_000)
    task_id = await create_broadcast_task(stack.engine, business_id, numbers)
    async with stack.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE broadcasts SET unconfirmed_policy = 'at_least_once',"
                " sender_id = :s WHERE task_id = :t"
            ),
            {"s": f"pn-{business_id}", "t": task_id},
        )
        first = (
            await conn.execute(
                text(
                    "SELECT r.id, r.seq FROM broadcast_recipients r JOIN broadcasts b"
                    " ON b.id = r.broadcast_id WHERE b.task_id = :t AND r.seq = 1"
                ),
                {"t": task_id},
            )
        ).one()
        await ledger.claim(conn, task_id, [ClaimRequest(str(first[0]), first[1], None)])
    async with stack.engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        assert await ledger.mark_dispatched(conn, [(task_id, str(first[0]), "dead-worker")])
    await (
        await start_direct(stack.client, stack.engine, stack.task_queue, business_id, task_id)
    ).result()
    task = await get_task_row(stack.engine, task_id)
    report = await sender_report(stack, business_id)
    assert (task.status, task.success_count, task.resent_count) == ("completed", 40, 1)
    assert (report["accepted"], report["max_per_recipient"]) == (40, 1)
    async with stack.engine.connect() as conn:
        resends = (
            await conn.execute(
                text("SELECT resends FROM task_items WHERE task_id = :t AND item_key = :k"),
                {"t": task_id, "k": str(first[0])},
            )
        ).scalar()
    assert resends == 1


async def _look(
    conn: AsyncConnection, task_id: int, sender: str
) -> tuple[unconfirmed.Known, unconfirmed.Settled]:
    """A look of `resolve_unconfirmed` whose waits are far from over: it only settles what
    statuses have spoken for."""
    return await unconfirmed.settle_and_decide(
        conn,
        task_id,
        sender_id=sender,
        policy=UnconfirmedPolicy.at_most_once,
        grace_s=900,
        max_wait_s=7 * 24 * 3600,
    )


async def test_a_status_arriving_between_the_looks_statements_still_holds_the_task(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """`resolve_unconfirmed` settles items with a status, then counts what remains, in two
    statements that each see the latest commits. A status committed between them leaves an
    item `unconfirmed` with a delivery state: it still remains (the task must not end with
    it unsettled), and the next look settles it at once."""
    business_id = await new_business()
    task_id = await create_broadcast_task(
        stack.engine, business_id, israeli_numbers(1, start=540_000)
    )
    sender = f"pn-{business_id}"
    async with stack.engine.begin() as conn:
        await conn.execute(
            text("UPDATE broadcasts SET sender_id = :s WHERE task_id = :t"),
            {"s": sender, "t": task_id},
        )
        key = str(
            (
                await conn.execute(
                    text(
                        "SELECT r.id FROM broadcast_recipients r JOIN broadcasts b"
                        " ON b.id = r.broadcast_id WHERE b.task_id = :t"
                    ),
                    {"t": task_id},
                )
            ).scalar()
        )
        await ledger.claim(conn, task_id, [ClaimRequest(key, 1, None)])
        await ledger.settle(
            conn, task_id, [Outcome(key, ItemStatus.unconfirmed, "no_answer", "no answer")]
        )
        # A look: nothing has a status yet, and nothing is due.
        assert await _look(conn, task_id, sender) == (unconfirmed.Known(), unconfirmed.Settled())
    # A status webhook commits before the look's next statement.
    async with stack.engine.begin() as conn:
        applied = await deliveries.apply_statuses(
            conn,
            [
                StatusUpdate(
                    wamid="wamid.between",
                    delivery=Delivery.delivered,
                    status="delivered",
                    occurred_at=dt.datetime.now(dt.UTC),
                    phone_number_id=sender,
                    callback=callback_data_for(task_id, key),
                    task_id=task_id,
                    item_key=key,
                )
            ],
        )
    assert applied.matched == 1
    async with stack.engine.begin() as conn:
        seen = await unconfirmed.outlook(
            conn, task_id, sender_id=sender, grace_s=900, max_wait_s=7 * 24 * 3600
        )
        assert (seen.remaining, seen.settle_now, seen.decides_at) == (1, 1, None)
        # The next look settles it: the send was taken.
        assert await _look(conn, task_id, sender) == (
            unconfirmed.Known(from_unconfirmed=1),
            unconfirmed.Settled(),
        )
        after = await unconfirmed.outlook(
            conn, task_id, sender_id=sender, grace_s=900, max_wait_s=7 * 24 * 3600
        )
    assert (after.remaining, after.settle_now) == (0, 0)


async def test_a_status_after_the_at_most_once_verdict_replaces_it_in_the_delivery_counts(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """Two sends got no answer and no status within the wait: `at_most_once` counts them
    failed `unconfirmed`. Then Meta's statuses come after all. The verdict was ours, not
    Meta's: a `sent` makes the first accepted (one out of failed, one into accepted), a
    `failed` gives the second Meta's code; each item is counted in one delivery state. While
    the task runs, the next look counts both sends succeeded (the provider took them)."""
    business_id = await new_business()
    task_id = await create_broadcast_task(
        stack.engine, business_id, israeli_numbers(2, start=560_000)
    )
    sender = f"pn-{business_id}"
    async with stack.engine.begin() as conn:
        await conn.execute(
            text("UPDATE broadcasts SET sender_id = :s WHERE task_id = :t"),
            {"s": sender, "t": task_id},
        )
        keys = [
            str(k)
            for k in (
                await conn.execute(
                    text(
                        "SELECT r.id FROM broadcast_recipients r JOIN broadcasts b"
                        " ON b.id = r.broadcast_id WHERE b.task_id = :t ORDER BY r.seq"
                    ),
                    {"t": task_id},
                )
            ).scalars()
        ]
        await ledger.claim(
            conn, task_id, [ClaimRequest(k, seq, None) for seq, k in enumerate(keys, start=1)]
        )
        await ledger.settle(
            conn, task_id, [Outcome(k, ItemStatus.unconfirmed, "no_answer", "-") for k in keys]
        )
    # A later look (its own transaction: the wait is measured against its start).
    async with stack.engine.begin() as conn:
        known, decided = await unconfirmed.settle_and_decide(
            conn,
            task_id,
            sender_id=sender,
            policy=UnconfirmedPolicy.at_most_once,
            grace_s=0,
            max_wait_s=0,
        )
        # The look's counters, as `resolve_unconfirmed` moves them.
        await task_repo.add_counts(
            conn, task_id, succeeded=0, failed=2, delivery=DeliveryCounts(failed=2)
        )
    assert (known, decided) == (unconfirmed.Known(), unconfirmed.Settled(failed=2))
    before = await get_task_row(stack.engine, task_id)
    assert (before.failed_count, before.delivery_accepted, before.delivery_failed) == (2, 0, 2)

    def status(key: str, word: str, delivery: Delivery, code: str | None = None) -> StatusUpdate:
        return StatusUpdate(
            wamid=f"wamid.late.{key}",
            delivery=delivery,
            status=word,
            occurred_at=dt.datetime.now(dt.UTC),
            phone_number_id=sender,
            callback=callback_data_for(task_id, key),
            error_code=code,
            task_id=task_id,
            item_key=key,
        )

    async with stack.engine.begin() as conn:
        applied = await deliveries.apply_statuses(
            conn,
            [
                status(keys[0], "sent", Delivery.accepted),
                status(keys[1], "failed", Delivery.failed, "131026"),
            ],
        )
    assert applied.matched == 2
    after = await get_task_row(stack.engine, task_id)
    # Meta's word wins in the delivery counts; the send outcome stays the look's verdict.
    assert (after.failed_count, after.delivery_accepted, after.delivery_failed) == (2, 1, 1)
    async with stack.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT status, error_code, delivery, delivery_code, failed_at IS NOT NULL,"
                    " provider_ref FROM task_items WHERE task_id = :t ORDER BY seq"
                ),
                {"t": task_id},
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("failed", "unconfirmed", int(Delivery.accepted), None, False, f"wamid.late.{keys[0]}"),
        ("failed", "unconfirmed", int(Delivery.failed), "131026", True, f"wamid.late.{keys[1]}"),
    ]
    async with stack.engine.begin() as conn:
        assert await _look(conn, task_id, sender) == (
            unconfirmed.Known(from_failed=2),
            unconfirmed.Settled(),
        )
    assert await ledger_counts(stack.engine, task_id) == {"succeeded": 2}


async def test_an_attempt_given_up_on_releases_no_item_a_later_attempt_claimed(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """Temporal gives up on a page attempt whose heartbeats came late and starts the next one;
    the first is still running, sees the cancel, and releases what it never started. Items
    the next attempt has claimed since stay, so that attempt's sends are recorded (before,
    they vanished from the ledger: never counted, and the task ended short of its total)."""
    business_id = await new_business()
    task_id = await create_broadcast_task(
        stack.engine, business_id, israeli_numbers(3, start=550_000)
    )
    requests = [ClaimRequest(f"k{i}", i, None) for i in (1, 2, 3)]
    async with stack.engine.begin() as conn:
        first = await ledger.claim(conn, task_id, requests)
    async with stack.engine.begin() as conn:
        # The next attempt claims the first two (the third is on a later page of its own).
        later = await ledger.claim(conn, task_id, requests[:2])
    assert [c.attempts for c in first] == [1, 1, 1]
    assert [c.attempts for c in later] == [2, 2]
    async with stack.engine.begin() as conn:
        released = await ledger.release(conn, task_id, first)
        moved = await ledger.settle(
            conn,
            task_id,
            [Outcome(c.item_key, ItemStatus.succeeded, provider_ref="wamid.x") for c in later],
        )
    assert released == 1
    assert moved.succeeded == 2
    assert await ledger_counts(stack.engine, task_id) == {"succeeded": 2}


async def test_the_spam_limit_pauses_the_task_itself_until_a_person_resumes_it(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await configure_sender(stack, business_id, spam_limit_after=10, latency_ms=5)
    total = 60
    async with stack.http(business_id, "operator") as http:
        task_id = (await start_broadcast(http, israeli_numbers(total, start=540_000)))["task"]["id"]
        seen: dict[str, Any] = {}

        async def paused() -> bool:
            seen.update((await http.get(f"/api/long_tasks/{task_id}")).json())
            return bool(seen["status"] == "paused")

        await wait_until(paused, what="the task to pause itself")
        assert seen["paused_by"] == "system"
        assert "131048" in seen["status_reason"]
        assert (await sender_report(stack, business_id))["accepted"] == 10
        assert {"sending", "unconfirmed"}.isdisjoint(await ledger_counts(stack.engine, task_id))
        # The number's quality recovered; a person resumes: the refused items go out too.
        await configure_sender(stack, business_id, spam_limit_after=0)
        assert (await http.post(f"/api/long_tasks/{task_id}/resume")).status_code == 202
        task = await wait_for_status(http, task_id, {"completed", "failed", "cancelled"})
    assert (task["status"], task["success_count"], task["failed_count"]) == ("completed", total, 0)
    report = await sender_report(stack, business_id)
    assert (report["accepted"], report["max_per_recipient"]) == (total, 1)
