"""The audit log: each action leaves one row naming its actor (subject and role), client address
and request id; admins of the business read it newest first, as JSON pages or CSV; nobody can
change or remove a row."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import (
    FaultReport,
    SecurityRow,
    Stack,
    configure_sender,
    israeli_numbers,
    start_broadcast,
)

LATER = "2100-01-01T00:00:00Z"  # scheduled: nothing is sent while the test runs


def client(stack: Stack, business_id: int, role: str, subject: str) -> httpx.AsyncClient:
    token = stack.token(business_id, role, user=subject)
    return httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def test_each_action_is_recorded_with_its_actor(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    business_id = await new_business()
    request_ids: dict[str, str] = {}

    def rid(action: str) -> dict[str, str]:
        request_ids[action] = f"req-{action}-{uuid.uuid4().hex[:8]}"
        return {"X-Request-ID": request_ids[action]}

    async with (
        client(stack, business_id, "operator", "olive") as olive,
        client(stack, business_id, "admin", "ada") as ada,
    ):
        first = await start_broadcast(olive, israeli_numbers(2), start_at=LATER)
        task_id = first["task"]["id"]
        response = await olive.post(
            f"/api/long_tasks/{task_id}/cancel", json={"reason": "wrong list"},
            headers=rid("task.cancelled"),
        )  # fmt: skip
        assert response.status_code in (200, 202), response.text
        # Cancelling again changes nothing, so records nothing.
        await olive.post(f"/api/long_tasks/{task_id}/cancel")
        await _wait_terminal(ada, task_id)
        response = await ada.delete(f"/api/long_tasks/{task_id}", headers=rid("task.deleted"))
        assert response.status_code == 204, response.text
        second = await start_broadcast(olive, israeli_numbers(2, start=10), start_at=LATER)
        bulk = await olive.post("/api/long_tasks/bulk_cancel", json={"reason": "all of them"})
        assert bulk.json()["cancelled"] == [second["task"]["id"]]
        response = await ada.put(
            "/api/notifications",
            json={"webhook_url": "https://hooks.example.com/x", "webhook_secret": "s" * 20},
            headers=rid("notifications.updated"),
        )
        assert response.status_code == 200, response.text
        assert (await ada.delete("/api/notifications")).status_code == 204
        response = await ada.put(
            "/api/receipts/gmail_connection",
            json={"email": "someone@example.com", "refresh_token": "refresh-token-value"},
        )
        assert response.status_code == 200, response.text
        revoked = await ada.post("/api/tokens/revoke", json={"jti": "some-old-token"})
        assert revoked.status_code == 200

        page = await ada.get("/api/audit")
        assert page.status_code == 200, page.text
        items: list[dict[str, Any]] = page.json()["items"]

    actions = [i["action"] for i in items]
    assert actions == [
        "token.revoked",
        "gmail_connection.updated",
        "notifications.deleted",
        "notifications.updated",
        "task.cancelled",
        "task.started",
        "task.deleted",
        "task.cancelled",
        "task.started",
    ], actions
    by_action = {i["action"]: i for i in items}  # newest first: the oldest of each wins
    assert by_action["task.started"]["actor"] == "olive"
    assert by_action["task.started"]["actor_role"] == "operator"
    assert by_action["task.started"]["task_id"] == task_id
    assert by_action["task.started"]["details"]["task_type"] == "broadcast"
    assert by_action["task.cancelled"]["details"] == {"reason": "wrong list"}
    assert items[4]["details"] == {"reason": "all of them", "bulk": True}
    assert by_action["task.deleted"]["actor"] == "ada"
    assert by_action["task.deleted"]["actor_role"] == "admin"
    assert by_action["token.revoked"]["details"] == {"jti": "some-old-token"}
    assert by_action["notifications.updated"]["details"] == {
        "webhook_host": "hooks.example.com",
        "email": False,
    }
    for action, request_id in request_ids.items():
        assert by_action[action]["request_id"] == request_id
    assert all(i["client_addr"] == "127.0.0.1" for i in items)
    assert all(i["request_id"] for i in items)
    # Nothing secret or personal in it: no webhook secret, mailbox or refresh token.
    dumped = json.dumps(items)
    for secret in ("s" * 20, "someone@example.com", "refresh-token-value"):
        assert secret not in dumped
    fault_report.add_security(
        SecurityRow(
            area="audit",
            check="rows per action after one start, cancel, delete, bulk cancel, notification"
            " change and removal, Gmail connection, token revocation: "
            + ", ".join(f"{a} {n}" for a, n in sorted(Counter(actions).items())),
            cases=len(actions),
            outcome="one row per action with actor, role, client address and request id",
        )
    )


async def _wait_terminal(http: httpx.AsyncClient, task_id: int) -> dict[str, Any]:
    from tests.conftest import wait_for_status

    return await wait_for_status(http, task_id, {"cancelled", "completed", "failed"})


async def test_pages_csv_filters_and_tenancy(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id, other = await new_business(), await new_business()
    async with client(stack, business_id, "admin", "ada") as ada:
        for i in range(5):
            assert (
                await ada.post("/api/tokens/revoke", json={"jti": f"jti-{i}"})
            ).status_code == 200
        first = await ada.get("/api/audit", params={"limit": 2})
        second = await ada.get(
            "/api/audit", params={"limit": 2, "cursor": first.json()["next_cursor"]}
        )
        jtis = [i["details"]["jti"] for i in first.json()["items"] + second.json()["items"]]
        assert jtis == ["jti-4", "jti-3", "jti-2", "jti-1"]
        only = await ada.get("/api/audit", params={"action": "task.started"})
        assert only.json()["items"] == []
        assert (await ada.get("/api/audit", params={"action": "nope"})).status_code == 422

        minted = await ada.post("/api/tickets", json={"path": "/api/audit.csv"})
        assert minted.status_code == 201, minted.text
        url = minted.json()["url"]
    async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
        response = await anonymous.get(url)
    assert response.status_code == 200, response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [json.loads(r["details"])["jti"] for r in rows] == [f"jti-{i}" for i in range(4, -1, -1)]
    assert {r["actor"] for r in rows} == {"ada"}
    async with client(stack, other, "admin", "eve") as eve:
        assert (await eve.get("/api/audit")).json()["items"] == []
    async with client(stack, business_id, "operator", "olive") as olive:
        assert (await olive.get("/api/audit")).status_code == 403
        assert (
            await olive.post("/api/tickets", json={"path": "/api/audit.csv"})
        ).status_code == 403


async def test_rows_cannot_be_changed_or_removed(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with client(stack, business_id, "admin", "ada") as ada:
        await ada.post("/api/tokens/revoke", json={"jti": "kept"})
    for statement in (
        "UPDATE audit_events SET actor_subject = 'someone else' WHERE business_id = :b",
        "DELETE FROM audit_events WHERE business_id = :b",
        "TRUNCATE audit_events",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with stack.engine.begin() as conn:
                await conn.execute(text(statement), {"b": business_id})
    async with stack.engine.connect() as conn:
        count = await conn.execute(
            text("SELECT count(*) FROM audit_events WHERE business_id = :b"), {"b": business_id}
        )
        assert count.scalar_one() == 1


async def test_controls_and_policy_are_recorded(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    """Issue 14's controls call the same function: pause, resume, approve, reject, retry, and
    policy changes each leave a row naming who did it."""
    business_id = await new_business()
    await configure_sender(stack, business_id, latency_ms=50)
    async with (
        client(stack, business_id, "operator", "olga") as olga,
        client(stack, business_id, "admin", "ada") as ada,
        client(stack, business_id, "admin", "abe") as abe,
    ):
        running = await start_broadcast(olga, israeli_numbers(400, start=720_000))
        task_id = running["task"]["id"]
        assert (await olga.post(f"/api/long_tasks/{task_id}/pause")).status_code in (200, 202)
        assert (await olga.post(f"/api/long_tasks/{task_id}/resume")).status_code in (200, 202)
        assert (await olga.post(f"/api/long_tasks/{task_id}/cancel")).status_code in (200, 202)
        await _wait_terminal(olga, task_id)

        policy = await ada.put("/api/policy", json={"approval_required_above": 1})
        assert policy.status_code == 200, policy.text
        waiting = [
            (await start_broadcast(olga, israeli_numbers(2, start=730_000 + 10 * i)))["task"]["id"]
            for i in range(2)
        ]
        assert (await abe.post(f"/api/long_tasks/{waiting[0]}/approve")).status_code == 202
        rejected = await abe.post(f"/api/long_tasks/{waiting[1]}/reject", json={"reason": "no"})
        assert rejected.status_code == 202, rejected.text
        await ada.put("/api/policy", json={"approval_required_above": None})
        approved = await _wait_terminal(olga, waiting[0])
        assert approved["status"] == "completed"

        failing = await start_broadcast(olga, ["052-3110000", *israeli_numbers(2, start=740_000)])
        await _wait_terminal(olga, failing["task"]["id"])
        retry = await olga.post(f"/api/long_tasks/{failing['task']['id']}/retry_failed")
        assert retry.status_code == 202, retry.text

        items = (await ada.get("/api/audit", params={"limit": 100})).json()["items"]
    by = {(i["action"], i["task_id"]): i for i in items}
    assert by[("task.paused", task_id)]["actor"] == "olga"
    assert by[("task.resumed", task_id)]["actor"] == "olga"
    assert by[("task.approved", waiting[0])]["actor"] == "abe"
    assert by[("task.rejected", waiting[1])]["actor"] == "abe"
    assert "no" in by[("task.rejected", waiting[1])]["details"]["reason"]
    retried = by[("task.retried", failing["task"]["id"])]
    assert (retried["actor"], retried["details"]["retry_task_id"]) == (
        "olga",
        retry.json()["task"]["id"],
    )
    policies = [i for i in items if i["action"] == "policy.updated"]
    assert [p["details"] for p in policies] == [
        {"approval_required_above": None},
        {"approval_required_above": 1},
    ]
    counts = Counter(i["action"] for i in items)
    fault_report.add_security(
        SecurityRow(
            area="audit",
            check="rows per control: " + ", ".join(f"{a} {n}" for a, n in sorted(counts.items())),
            cases=len(items),
            outcome="pause, resume, approve, reject, retry and policy changes recorded with"
            " their actor",
        )
    )
