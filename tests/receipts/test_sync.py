"""Gmail receipt sync end to end: REST -> Postgres -> Temporal -> sandbox Gmail over HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from temporalio.service import RPCError

from longtasks.db.repositories import gmail as gmail_repo
from longtasks.db.repositories.gmail import TokenCipher
from longtasks.temporal.gmail_schedule import gmail_schedule_id
from tests.conftest import (
    Stack,
    ledger_counts,
    record_history,
    wait_for_status,
    wait_until,
    workflow_id_of,
)
from tests.receipts.helpers import (
    expected_outcomes,
    gmail_sandbox,
    mailbox_for,
    receipt_count,
    staged_ids,
    stored_receipts,
)

TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture(autouse=True)
def sandbox_quota(stack: Stack) -> Any:
    """The sandbox's Gmail quota above the workers' pace (tests settings): syncs take seconds.
    Tests that want quota errors lower it; it is put back after each test."""
    gmail = gmail_sandbox(stack)
    gmail.set_quota(quota_units_per_s=3000.0, rate_limit_403_fraction=0.0)
    yield gmail
    gmail.set_quota(quota_units_per_s=3000.0, rate_limit_403_fraction=0.0)


CONNECTED: list[int] = []


@pytest.fixture(autouse=True)
async def drop_schedules(stack: Stack) -> AsyncIterator[None]:
    """Each connection makes a Schedule; remove them so none fires during later tests."""
    yield
    while CONNECTED:
        handle = stack.client.get_schedule_handle(gmail_schedule_id(CONNECTED.pop()))
        with contextlib.suppress(RPCError):
            await handle.delete()


async def connect(stack: Stack, business_id: int) -> str:
    CONNECTED.append(business_id)
    email = mailbox_for(business_id)
    async with stack.http(business_id, "admin") as http:
        response = await http.put(
            "/api/receipts/gmail_connection",
            json={"email": email, "refresh_token": f"sandbox:{email}"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["schedule_id"] == gmail_schedule_id(business_id)
    return email


async def sync(stack: Stack, business_id: int, **body: Any) -> dict[str, Any]:
    async with stack.http(business_id, "operator") as http:
        response = await http.post("/api/receipts/sync", json=body)
        assert response.status_code == 202, response.text
        task_id = response.json()["task"]["id"]
        return await wait_for_status(http, task_id, TERMINAL, timeout_s=120)


async def list_all(stack: Stack, business_id: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    async with stack.http(business_id, "viewer") as http:
        while True:
            query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/api/receipts", params=query)).json()
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items


def assert_matches_facts(stored: dict[str, dict[str, Any]], facts: dict[str, Any]) -> None:
    """Every stored receipt is what the sandbox generated: the parsing table, end to end."""
    for message_id, fact in facts.items():
        row = stored[message_id]
        assert row["vendor"] == fact.vendor, (message_id, row, fact)
        assert row["amount"] == fact.amount, (message_id, row, fact)
        assert row["currency"] == fact.currency, (message_id, row, fact)
        assert row["issued_at"] == fact.issued_at, (message_id, row, fact)
        assert tuple(row["attachments"]) == fact.attachments, (message_id, row, fact)


async def test_full_then_incremental_sync_stores_each_receipt_once(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    email = await connect(stack, business_id)
    schedule = await stack.client.get_schedule_handle(gmail_schedule_id(business_id)).describe()
    assert schedule.schedule.spec.intervals[0].every.total_seconds() == (
        stack.settings.gmail_sync_interval_s
    )

    # 1. Full sync of the last ~2 months of the mailbox.
    task = await sync(stack, business_id, since="2025-05-01")
    assert task["status"] == "completed", task
    await record_history(
        stack.client, await workflow_id_of(stack.engine, task["id"]), "receipt_sync-full"
    )
    listed = await staged_ids(stack.engine, task["id"])
    expected = expected_outcomes(gmail_sandbox(stack), email, listed)
    receipts, newsletters, malformed = (
        expected["receipts"],
        expected["newsletters"],
        expected["malformed"],
    )
    assert len(listed) > 100 and len(receipts) > 50 and newsletters > 0
    # The true total: every listed message, known before any was fetched.
    assert task["total_items"] == len(listed) == len(set(listed))
    assert task["success_count"] == len(receipts) + newsletters
    assert task["skipped_count"] == newsletters
    assert task["failed_count"] == malformed
    assert task["cancelled_count"] == 0
    ledger = await ledger_counts(stack.engine, task["id"])
    assert ledger == {
        k: v
        for k, v in {
            "succeeded": len(receipts),
            "skipped": newsletters,
            "failed": malformed,
        }.items()
        if v
    }
    stored = await stored_receipts(stack.engine, business_id)
    assert set(stored) == set(receipts)
    assert_matches_facts(stored, receipts)
    listing = await list_all(stack, business_id)
    assert len(listing) == len(receipts)
    assert all(isinstance(r["amount"], str) for r in listing)
    async with stack.http(business_id, "viewer") as http:
        failed = (
            await http.get(
                f"/api/long_tasks/{task['id']}/items", params={"status": "failed", "limit": 500}
            )
        ).json()["items"]
        connection = (await http.get("/api/receipts/gmail_connection")).json()
    assert {i["error_code"] for i in failed} <= {"no_amount", "bad_date", "undecodable_body"}
    assert all(i["error_message"] for i in failed)
    assert connection["history_id"] is not None and connection["last_synced_at"] is not None

    # 2. New mail arrives; an incremental sync lists only it.
    new_ids = gmail_sandbox(stack).deliver(email, 4, "receipt")
    new_ids += gmail_sandbox(stack).deliver(email, 1, "newsletter")
    new_ids += gmail_sandbox(stack).deliver(email, 1, "malformed")
    second = await sync(stack, business_id)
    assert second["status"] == "completed", second
    await record_history(
        stack.client, await workflow_id_of(stack.engine, second["id"]), "receipt_sync-incremental"
    )
    assert await staged_ids(stack.engine, second["id"]) == new_ids
    assert (second["total_items"], second["success_count"], second["failed_count"]) == (6, 5, 1)
    assert second["skipped_count"] == 1
    assert await receipt_count(stack.engine, business_id) == len(receipts) + 4
    listing = await list_all(stack, business_id)
    assert len({r["gmail_message_id"] for r in listing}) == len(listing) == len(receipts) + 4
    assert {
        r["gmail_message_id"] for r in await list_all(stack, business_id, task_id=second["id"])
    } == set(new_ids[:4])

    # 3. Nothing new: an empty, completed sync that stores nothing.
    third = await sync(stack, business_id)
    assert (third["status"], third["total_items"], third["processed_items"]) == ("completed", 0, 0)
    assert await receipt_count(stack.engine, business_id) == len(receipts) + 4

    # 4. The same full sync again: every receipt is already there, none is stored twice.
    again = await sync(stack, business_id, since="2025-05-01")
    assert again["status"] == "completed"
    # The mail delivered since is after 2025-05-01 too.
    assert again["total_items"] == len(listed) + 6
    assert await receipt_count(stack.engine, business_id) == len(receipts) + 4
    items = await ledger_counts(stack.engine, again["id"])
    assert items.get("succeeded", 0) == 0

    # 5. Every listed receipt deleted by id: none is listed afterwards.
    listed_ids = [r["id"] for r in await list_all(stack, business_id)]
    async with stack.http(business_id, "operator") as http:
        response = await http.post("/api/receipts/bulk_delete", json={"receipt_ids": listed_ids})
        assert response.status_code == 202, response.text
        deleted = await wait_for_status(http, response.json()["task"]["id"], TERMINAL)
    assert deleted["status"] == "completed"
    assert (deleted["success_count"], deleted["failed_count"]) == (len(listed_ids), 0)
    assert await list_all(stack, business_id) == []


async def test_history_too_old_falls_back_to_a_full_sync(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    email = await connect(stack, business_id)
    first = await sync(stack, business_id, since="2025-06-15")
    assert first["status"] == "completed"
    before = await receipt_count(stack.engine, business_id)
    # History moves past what the last sync saw, and Gmail forgets it.
    new_ids = gmail_sandbox(stack).deliver(email, 1, "receipt")
    gmail_sandbox(stack).expire_history(email)
    new_ids += gmail_sandbox(stack).deliver(email, 3, "receipt")
    task = await sync(stack, business_id)
    assert task["status"] == "completed", task
    listed = await staged_ids(stack.engine, task["id"])
    # A full listing of the whole mailbox, not just the history since the last sync.
    assert set(new_ids) < set(listed)
    assert len(listed) == gmail_sandbox(stack).mailbox_size + 4
    expected = expected_outcomes(gmail_sandbox(stack), email, listed)
    assert await receipt_count(stack.engine, business_id) == len(expected["receipts"])
    assert len(expected["receipts"]) > before
    already = (await ledger_counts(stack.engine, task["id"])).get("skipped", 0)
    assert already == expected["newsletters"] + before
    async with stack.engine.connect() as conn:
        mode = (
            await conn.execute(
                text("SELECT mode FROM receipt_sync_runs WHERE task_id = :t"), {"t": task["id"]}
            )
        ).scalar()
    assert mode == "full"


async def test_expired_access_token_is_refreshed_and_stored_encrypted(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    email = await connect(stack, business_id)
    first = await sync(stack, business_id, since="2025-06-25")
    assert first["status"] == "completed"
    cipher = TokenCipher(stack.settings.encryption_keys)
    async with stack.engine.connect() as conn:
        before = await gmail_repo.get_connection(conn, business_id)
    assert before is not None
    access_before = cipher.decrypt(before.access_token_enc)
    assert access_before.startswith("ya29.")
    refreshes = gmail_sandbox(stack).stats()["token_refreshes"]

    assert gmail_sandbox(stack).expire_access_tokens(email) >= 1
    gmail_sandbox(stack).deliver(email, 3, "receipt")
    task = await sync(stack, business_id)
    assert (task["status"], task["success_count"]) == ("completed", 3), task
    assert gmail_sandbox(stack).stats()["token_refreshes"] > refreshes
    async with stack.engine.connect() as conn:
        after = await gmail_repo.get_connection(conn, business_id)
        raw = (
            await conn.execute(
                text(
                    "SELECT access_token_enc, refresh_token_enc FROM gmail_connections"
                    " WHERE business_id = :b"
                ),
                {"b": business_id},
            )
        ).one()
    assert after is not None
    access_after = cipher.decrypt(after.access_token_enc)
    assert access_after != access_before
    # At rest, neither token is readable.
    assert access_after not in raw[0] and "sandbox:" not in raw[1]


async def test_revoked_grant_fails_the_task_with_a_clear_error(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    email = await connect(stack, business_id)
    first = await sync(stack, business_id, since="2025-06-28")
    assert first["status"] == "completed"
    gmail_sandbox(stack).deliver(email, 2, "receipt")
    gmail_sandbox(stack).revoke(email)
    task = await sync(stack, business_id)
    assert task["status"] == "failed", task
    assert "revoked" in task["error_message"] and "reconnect" in task["error_message"]
    assert (
        task["success_count"] + task["failed_count"] + task["cancelled_count"]
        == (task["total_items"])
    )


async def test_quota_errors_are_backed_off_and_counts_stay_exact(
    stack: Stack, new_business: Callable[[], Awaitable[int]], sandbox_quota: Any
) -> None:
    business_id = await new_business()
    email = await connect(stack, business_id)
    # Gmail's quota well below the worker's pace: 429s and 403 userRateLimitExceeded.
    sandbox_quota.set_quota(quota_units_per_s=150.0, rate_limit_403_fraction=0.5)
    errors_before = sandbox_quota.stats()["quota_errors"]
    task = await sync(stack, business_id, since="2025-06-01")
    assert task["status"] == "completed", task
    assert sandbox_quota.stats()["quota_errors"] > errors_before
    listed = await staged_ids(stack.engine, task["id"])
    expected = expected_outcomes(sandbox_quota, email, listed)
    assert task["total_items"] == len(listed)
    assert task["failed_count"] == expected["malformed"]
    assert task["skipped_count"] == expected["newsletters"]
    assert await receipt_count(stack.engine, business_id) == len(expected["receipts"])


async def test_cancel_mid_sync_counts_the_rest_cancelled(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    await connect(stack, business_id)
    async with stack.http(business_id, "operator") as http:
        started = await http.post("/api/receipts/sync", json={})
        assert started.status_code == 202
        task_id = started.json()["task"]["id"]

        async def some_progress() -> bool:
            task = (await http.get(f"/api/long_tasks/{task_id}")).json()
            return bool(task["processed_items"] >= 100)

        await wait_until(some_progress, timeout_s=60, what="first receipts")
        cancel = await http.post(f"/api/long_tasks/{task_id}/cancel")
        assert cancel.status_code == 202
        task = await wait_for_status(http, task_id, TERMINAL)
    assert task["status"] == "cancelled", task
    total = gmail_sandbox(stack).mailbox_size
    assert task["total_items"] == total
    assert 0 < task["processed_items"] < total
    assert task["success_count"] + task["failed_count"] + task["cancelled_count"] == total
    ledger = await ledger_counts(stack.engine, task_id)
    assert "sending" not in ledger
    assert await receipt_count(stack.engine, business_id) == ledger.get("succeeded", 0)
    async with stack.http(business_id, "viewer") as http:
        connection = (await http.get("/api/receipts/gmail_connection")).json()
    # A cancelled sync is not a completed one: the next sync starts from the same place.
    assert connection["history_id"] is None
    await record_history(
        stack.client, await workflow_id_of(stack.engine, task_id), "receipt_sync-cancelled"
    )


async def test_scheduled_kick_starts_an_ordinary_sync_task(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    email = await connect(stack, business_id)
    first = await sync(stack, business_id, since="2025-06-28")
    assert first["status"] == "completed"
    before = await receipt_count(stack.engine, business_id)
    gmail_sandbox(stack).deliver(email, 2, "receipt")
    handle = stack.client.get_schedule_handle(gmail_schedule_id(business_id))
    await handle.trigger()

    async def scheduled_task_done() -> bool:
        async with stack.http(business_id, "viewer") as http:
            tasks = (
                await http.get("/api/long_tasks", params={"task_type": "receipt_sync"})
            ).json()["items"]
        return len(tasks) == 2 and tasks[0]["status"] == "completed"

    await wait_until(scheduled_task_done, timeout_s=60, what="the scheduled sync")
    assert await receipt_count(stack.engine, business_id) == before + 2
    async with stack.http(business_id, "viewer") as http:
        tasks = (await http.get("/api/long_tasks", params={"task_type": "receipt_sync"})).json()
    scheduled = tasks["items"][0]
    assert (scheduled["total_items"], scheduled["success_count"]) == (2, 2)
    # The audit log names who started it: the schedule, not a person.
    async with stack.http(business_id, "admin") as http:
        started = (await http.get("/api/audit", params={"action": "task.started"})).json()["items"]
    newest = started[0]
    assert (newest["task_id"], newest["actor"], newest["actor_role"]) == (
        scheduled["id"],
        "system:gmail-schedule",
        "system",
    )
