"""Bulk receipt deletion end to end, and `GET /api/receipts` (filters, cursor pagination)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from tests.conftest import (
    Stack,
    get_task_row,
    ledger_counts,
    record_history,
    running_worker,
    wait_for_status,
    wait_until,
    workflow_id_of,
)
from tests.receipts.helpers import create_delete_task, receipt_count, seed_receipts, start_task

TERMINAL = {"completed", "failed", "cancelled"}


async def listed_ids(stack: Stack, business_id: int, **params: Any) -> list[int]:
    ids: list[int] = []
    cursor = None
    async with stack.http(business_id, "viewer") as http:
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            response = await http.get("/api/receipts", params=query)
            assert response.status_code == 200, response.text
            page = response.json()
            ids += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return ids


async def test_delete_by_ids_fails_foreign_and_unknown_ids_as_not_found(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    owner, other = await new_business(), await new_business()
    mine = await seed_receipts(stack.engine, owner, 30)
    theirs = await seed_receipts(stack.engine, other, 3)
    unknown = max(theirs) + 1_000_000
    assert await listed_ids(stack, owner, limit=7) == sorted(mine, reverse=True)

    doomed = mine[:25]
    async with stack.http(owner, "operator") as http:
        response = await http.post(
            "/api/receipts/bulk_delete",
            json={"receipt_ids": [*doomed, theirs[0], unknown, doomed[0]]},
        )
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["selected"] == 27  # the repeated id counts once
        task = await wait_for_status(http, body["task"]["id"], TERMINAL)
        failed = (
            await http.get(f"/api/long_tasks/{task['id']}/items", params={"status": "failed"})
        ).json()["items"]
    assert task["status"] == "completed", task
    assert (task["total_items"], task["success_count"], task["failed_count"]) == (27, 25, 2)
    assert task["cancelled_count"] == 0
    assert {i["item_key"] for i in failed} == {str(theirs[0]), str(unknown)}
    assert {i["error_code"] for i in failed} == {"not_found"}
    await record_history(
        stack.client, await workflow_id_of(stack.engine, task["id"]), "receipt_delete-by-ids"
    )
    # Another business's receipt is untouched; the survivors are listed, the deleted are not.
    assert await listed_ids(stack, other) == sorted(theirs, reverse=True)
    assert await listed_ids(stack, owner) == sorted(mine[25:], reverse=True)


async def test_delete_by_filter_removes_exactly_the_matches(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    # Issued 2025-01-01 .. 2025-02-09 (manual) and 2025-01-01 .. 2025-01-20 (gmail).
    manual = await seed_receipts(stack.engine, business_id, 40)
    gmail = await seed_receipts(stack.engine, business_id, 20, source="gmail")
    january = {"after": "2025-01-10", "before": "2025-02-01"}
    matching_manual = manual[9:31]
    assert sorted(await listed_ids(stack, business_id, source="manual", **january)) == sorted(
        matching_manual
    )
    async with stack.http(business_id, "operator") as http:
        for bad in ({}, {"source": None}, {"source": "fax"}):
            response = await http.post("/api/receipts/bulk_delete", json={"filter": bad})
            assert response.status_code == 422, (bad, response.text)
        both = {"receipt_ids": [1], "filter": {"source": "manual"}}
        assert (await http.post("/api/receipts/bulk_delete", json=both)).status_code == 422
        response = await http.post(
            "/api/receipts/bulk_delete", json={"filter": {"source": "manual", **january}}
        )
        assert response.status_code == 202, response.text
        assert response.json()["selected"] == len(matching_manual)
        task = await wait_for_status(http, response.json()["task"]["id"], TERMINAL)
    assert task["status"] == "completed"
    assert (task["success_count"], task["failed_count"]) == (len(matching_manual), 0)
    remaining = set(await listed_ids(stack, business_id))
    assert remaining == (set(manual) - set(matching_manual)) | set(gmail)
    assert await ledger_counts(stack.engine, task["id"]) == {"succeeded": len(matching_manual)}


async def test_cancel_stops_between_batches(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    total = 1500
    ids = await seed_receipts(stack.engine, business_id, total)
    task_id = await create_delete_task(stack.engine, business_id, ids)
    # One small batch at a time, so there are many gaps between batches to cancel in.
    queue, settings = stack.own_queue("delete", receipt_delete_page_size=10, page_window=1)
    async with running_worker(stack.client, settings, stack.app_engine, queue):
        await start_task(stack.client, stack.engine, queue, business_id, task_id, "receipt_delete")

        async def some_deleted() -> bool:
            return (await get_task_row(stack.engine, task_id)).processed_items >= 100

        await wait_until(some_deleted, what="first batches")
        async with stack.http(business_id, "operator") as http:
            assert (await http.post(f"/api/long_tasks/{task_id}/cancel")).status_code == 202
            task = await wait_for_status(http, task_id, TERMINAL)
    assert task["status"] == "cancelled", task
    deleted = task["success_count"]
    assert 100 <= deleted < total
    assert deleted % 10 == 0  # whole batches only
    assert (task["failed_count"], task["cancelled_count"]) == (0, total - deleted)
    assert await receipt_count(stack.engine, business_id) == total - deleted
    assert await ledger_counts(stack.engine, task_id) == {"succeeded": deleted}
    await record_history(
        stack.client, await workflow_id_of(stack.engine, task_id), "receipt_delete-cancelled"
    )


async def test_list_receipts_validates_its_parameters(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    ids = await seed_receipts(stack.engine, business_id, 5, first_day=dt.date(2024, 3, 1))
    async with stack.http(business_id, "viewer") as http:
        page = (await http.get("/api/receipts", params={"limit": 2})).json()
        assert [r["id"] for r in page["items"]] == sorted(ids, reverse=True)[:2]
        first = page["items"][0]
        assert first["amount"] == "14.05" and first["currency"] == "ILS"
        assert first["issued_at"] == "2024-03-05" and first["source"] == "manual"
        for params in ({"limit": 0}, {"limit": 501}, {"source": "fax"}, {"before": "soon"}):
            assert (await http.get("/api/receipts", params=params)).status_code == 422, params
        assert (await http.get("/api/receipts", params={"cursor": "!!"})).status_code == 400
        vendor = (await http.get("/api/receipts", params={"vendor": "Vendor 1"})).json()
        assert [r["id"] for r in vendor["items"]] == [ids[1]]
