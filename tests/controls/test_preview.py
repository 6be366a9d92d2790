"""The approval preview: what a broadcast will do, read when asked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import text

from tests.conftest import Stack, israeli_numbers, start_broadcast


async def test_preview_counts_intake_pace_and_the_tier_headroom(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE businesses SET whatsapp_messages_per_s = 20, whatsapp_daily_limit = 250"
                " WHERE id = :b"
            ),
            {"b": business_id},
        )
        # 200 recipients messaged in the last 24 hours: 50 left in the tier.
        await conn.execute(
            text(
                "INSERT INTO sender_contacts (sender_id, phone, last_sent_at)"
                " SELECT :s, '+9725' || g, now() - interval '1 hour'"
                " FROM generate_series(10000000, 10000199) AS g"
            ),
            {"s": f"pn-{business_id}"},
        )
    numbers = israeli_numbers(100, start=330_000)
    # The same numbers again in another form, and three that are not numbers.
    submitted = [*numbers, *[n.replace("052-", "+97252") for n in numbers[:10]], "1", "x", "1"]
    async with (
        stack.http(business_id, "viewer") as viewer,
        stack.http(business_id, "operator") as http,
    ):
        started = await start_broadcast(http, submitted, start_at="2099-01-01T00:00:00Z")
        task_id = started["task"]["id"]
        response = await viewer.get(f"/api/long_tasks/{task_id}/preview")
        assert response.status_code == 200, response.text
        preview = response.json()
        assert preview == {
            "task_id": task_id,
            "broadcast_id": started["broadcast_id"],
            "submitted": len(submitted),
            "duplicates_removed": 11,
            "invalid": 2,
            "recipients": 100,
            "suppressed": 0,
            "to_send": 100,
            "messages_per_s": 20.0,
            "estimated_duration_s": 5,
            "tier_limit": 250,
            "tier_used_24h": 200,
            "tier_headroom": 50,
            "exceeds_tier": True,
        }
        await http.post(f"/api/long_tasks/{task_id}/cancel")
        deleted = await http.post("/api/receipts/bulk_delete", json={"receipt_ids": [1]})
        other = await viewer.get(f"/api/long_tasks/{deleted.json()['task']['id']}/preview")
        assert other.status_code == 409
