"""Broadcasts to an audience: each member's message built from its row when it is sent, one
audience for many broadcasts, and the refusals a business should get."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import text

from tests.audiences.helpers import csv_bytes, import_ready, upload_ok
from tests.conftest import Stack, israeli_numbers, messages_sent, wait_for_status


def template_texts(message: dict[str, Any]) -> list[str]:
    assert message["type"] == "template"
    (body,) = message["template"]["components"]
    return [p["text"] for p in body["parameters"]]


async def start(http: httpx.AsyncClient, audience_id: int, **message: Any) -> httpx.Response:
    return await http.post(
        "/api/broadcasts",
        json={"name": "to an audience", "message": message, "audience_id": audience_id},
    )


TEMPLATE = {
    "name": "order_ready",
    "language": "he",
    "params": ["Shalom", {"column": "name"}, {"column": "city", "default": "your city"}],
}


async def test_a_personalized_template_carries_each_rows_values(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    numbers = israeli_numbers(6, start=40_000)
    rows = [
        [numbers[0], "דנה", "חיפה"],
        [numbers[1], "Yossi", ""],  # no city: the default
        [numbers[2], "", "Eilat"],  # no name and no default: not sent
        [numbers[3], 'Noa, "N"', "Tel Aviv"],
        [numbers[4], "  Avi  ", "Jaffa"],
        [numbers[5], "Miriam", "Acre"],
    ]
    async with stack.http(business_id) as http:
        audience = await import_ready(http, csv_bytes(rows, ("phone", "name", "city")))
        response = await start(http, audience["id"], template=TEMPLATE)
        assert response.status_code == 202, response.text
        started = response.json()
        assert started["audience_id"] == audience["id"]
        assert started["recipients_accepted"] == 6
        assert started["task"]["total_items"] == 6
        task = await wait_for_status(http, started["task"]["id"], {"completed", "failed"})
        assert task["status"] == "completed", task
        assert (task["success_count"], task["failed_count"]) == (5, 1)
        failed = (
            await http.get(f"/api/long_tasks/{task['id']}/items", params={"status": "failed"})
        ).json()["items"]
        assert [(i["seq"], i["error_code"]) for i in failed] == [(3, "missing_param")]
        assert "'name' cell is empty on line 4" in failed[0]["error_message"]

    expected = {
        0: ["Shalom", "דנה", "חיפה"],
        1: ["Shalom", "Yossi", "your city"],
        3: ["Shalom", 'Noa, "N"', "Tel Aviv"],
        4: ["Shalom", "Avi", "Jaffa"],
        5: ["Shalom", "Miriam", "Acre"],
    }
    for i, number in enumerate(numbers):
        e164 = "+972" + number.replace("-", "")[1:]
        messages = await messages_sent(stack, business_id, e164)
        if i not in expected:
            assert messages == []
            continue
        assert len(messages) == 1, messages
        assert messages[0]["to"] == e164.lstrip("+")
        assert messages[0]["template"]["name"] == "order_ready"
        assert template_texts(messages[0]) == expected[i]


async def test_one_audience_for_two_broadcasts(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """Both read the same members (nothing is copied); each has its own ledger; a text
    message to an audience is the same for everyone."""
    business_id = await new_business()
    numbers = israeli_numbers(120, start=41_000)
    async with stack.http(business_id) as http:
        audience = await import_ready(
            http,
            csv_bytes(
                [[n, f"name {i}", "x"] for i, n in enumerate(numbers)], ("phone", "name", "city")
            ),
        )
        first = await start(http, audience["id"], template=TEMPLATE)
        second = await start(http, audience["id"], text="Sale today")
        assert first.status_code == second.status_code == 202
        tasks = [
            await wait_for_status(http, r.json()["task"]["id"], {"completed", "failed"})
            for r in (first, second)
        ]
        assert [(t["status"], t["success_count"]) for t in tasks] == [("completed", 120)] * 2
        for t in tasks:
            items = (
                await http.get(f"/api/long_tasks/{t['id']}/items", params={"limit": 500})
            ).json()
            assert sorted(i["seq"] for i in items["items"]) == list(range(1, 121))
    for i in (0, 57, 119):
        messages = await messages_sent(stack, business_id, "+972" + numbers[i].replace("-", "")[1:])
        # The two broadcasts ran side by side: either may have reached a number first.
        by_type = {m["type"]: m for m in messages}
        assert len(messages) == len(by_type) == 2
        assert template_texts(by_type["template"]) == ["Shalom", f"name {i}", "x"]
        assert by_type["text"]["text"]["body"] == "Sale today"


async def test_what_a_broadcast_to_an_audience_refuses(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id, stranger = await new_business(), await new_business()
    rows = [[n, "x"] for n in israeli_numbers(3, start=42_000)]
    async with stack.http(business_id) as http:
        audience = await import_ready(http, csv_bytes(rows))

        unknown = await start(
            http, audience["id"], template={**TEMPLATE, "params": [{"column": "nickname"}]}
        )
        assert unknown.status_code == 422
        assert "no column 'nickname'" in unknown.json()["detail"]
        assert "'name'" in unknown.json()["detail"]

        both = await http.post(
            "/api/broadcasts",
            json={
                "name": "x",
                "message": {"text": "hi"},
                "recipients": ["0523000001"],
                "audience_id": audience["id"],
            },
        )
        assert both.status_code == 422
        columns_without_audience = await http.post(
            "/api/broadcasts",
            json={"name": "x", "message": {"template": TEMPLATE}, "recipients": ["0523000001"]},
        )
        assert columns_without_audience.status_code == 422

        importing = await upload_ok(http, csv_bytes(rows * 200))
        busy = await start(http, importing["audience"]["id"], text="hi")
        assert busy.status_code == 409
        assert "importing" in busy.json()["detail"]

    async with stack.http(stranger) as http:
        assert (await start(http, audience["id"], text="hi")).status_code == 404


async def test_an_audience_cannot_be_deleted_while_a_broadcast_sends_to_it(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    from tests.conftest import configure_sender

    business_id = await new_business()
    await configure_sender(stack, business_id, latency_ms=40)
    rows = [[n, "x"] for n in israeli_numbers(400, start=43_000)]
    async with stack.http(business_id) as http:
        audience = await import_ready(http, csv_bytes(rows))
        response = await start(http, audience["id"], text="hi")
        task_id = response.json()["task"]["id"]
        refused = await http.delete(f"/api/audiences/{audience['id']}")
        assert refused.status_code == 409
        assert f"broadcast {response.json()['broadcast_id']} is sending" in refused.json()["detail"]
        await wait_for_status(http, task_id, {"completed"})
        assert (await http.delete(f"/api/audiences/{audience['id']}")).status_code == 204
        # The broadcast keeps its ledger: who was sent what.
        items = (await http.get(f"/api/long_tasks/{task_id}/items", params={"limit": 5})).json()
        assert [i["status"] for i in items["items"]] == ["succeeded"] * 5
        assert items["items"][0]["label"] == "+972523043001"


async def test_retrying_a_broadcast_to_an_audience_retries_those_members(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """The retry holds the members whose items failed retryably (here: numbers not on
    WhatsApp, 131026), as those members: each message is personalized from its row again. A
    row with an empty cell (missing_param) fails the same way again: not retried."""
    business_id = await new_business()
    reachable = israeli_numbers(30, start=44_000)
    rows = [[n, f"name {i}", "x"] for i, n in enumerate(reachable)]
    rows += [["052-3150000", "Unreachable A", "y"], ["052-3160000", "Unreachable B", ""]]
    rows += [[israeli_numbers(1, start=44_500)[0], "", "z"]]  # no name: missing_param
    async with stack.http(business_id, "operator") as http:
        audience = await import_ready(http, csv_bytes(rows, ("phone", "name", "city")))
        started = await start(http, audience["id"], template=TEMPLATE)
        parent = await wait_for_status(http, started.json()["task"]["id"], {"completed"})
        assert (parent["success_count"], parent["failed_count"]) == (30, 3)

        response = await http.post(f"/api/long_tasks/{parent['id']}/retry_failed")
        assert response.status_code == 202, response.text
        retry = response.json()
        assert retry["items"] == 2
        done = await wait_for_status(http, retry["task"]["id"], {"completed"})
        failed = (
            await http.get(f"/api/long_tasks/{done['id']}/items", params={"status": "failed"})
        ).json()["items"]
    # Sent again, personalized (an unresolved parameter would have failed as missing_param),
    # and refused by the provider again: the number is still not on WhatsApp.
    assert sorted((i["label"], i["error_code"]) for i in failed) == [
        ("+972523150000", "131026"),
        ("+972523160000", "131026"),
    ]
    async with stack.engine.connect() as conn:
        kept = await conn.execute(
            text(
                "SELECT b.audience_id, r.member_seq FROM broadcasts AS b"
                " JOIN broadcast_recipients AS r ON r.broadcast_id = b.id"
                " WHERE b.task_id = :t ORDER BY r.seq"
            ),
            {"t": done["id"]},
        )
        assert [tuple(r) for r in kept] == [(audience["id"], 31), (audience["id"], 32)]
