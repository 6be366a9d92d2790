"""`/webhooks/whatsapp` over HTTP: Meta's handshake, the signature over the raw body, and
statuses applied idempotently and whatever their order, only to items of the number they name.

Broadcasts here run with the sandbox's own status webhooks dropped for their sender, so every
status the ledger sees is one this test sent."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from longtasks.db.repositories import deliveries, ledger
from longtasks.db.repositories.ledger import ClaimRequest, Outcome
from longtasks.domain import Delivery, ItemStatus
from tests.conftest import (
    FaultReport,
    HostileRow,
    Stack,
    configure_sender,
    create_broadcast_task,
    get_task_row,
    israeli_numbers,
    start_direct,
    wait_until,
)

HOOK = "/webhooks/whatsapp"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(sender: str, **value: Any) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "waba",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "1555", "phone_number_id": sender},
                            **value,
                        },
                    }
                ],
            }
        ],
    }


def status(
    wamid: str, word: str, *, callback: str | None = None, code: int | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": wamid,
        "status": word,
        "timestamp": str(int(time.time())),
        "recipient_id": "972500000000",
    }
    if callback is not None:
        item["biz_opaque_callback_data"] = callback
    if code is not None:
        item["errors"] = [{"code": code, "title": "t", "message": "m", "error_data": {}}]
    return item


async def post(stack: Stack, payload: Any, *, secret: str | None = None) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    key = secret if secret is not None else stack.settings.whatsapp_app_secret
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        return await http.post(
            HOOK,
            content=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(key, body)},
        )


async def items_of(stack: Stack, task_id: int) -> list[dict[str, Any]]:
    async with stack.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT item_key, provider_ref, status, delivery, delivery_code, accepted_at,"
                " delivered_at, read_at, failed_at FROM task_items WHERE task_id = :t"
                " ORDER BY seq"
            ),
            {"t": task_id},
        )
        return [dict(r) for r in rows.mappings()]


async def sent_broadcast(
    stack: Stack, new_business: Callable[[], Awaitable[int]], count: int, offset: int
) -> tuple[int, int]:
    """(business, task) of a completed broadcast whose statuses only this test sends."""
    business_id = await new_business()
    await configure_sender(stack, business_id, webhook_drop_rate=1.0)
    task_id = await create_broadcast_task(
        stack.engine, business_id, israeli_numbers(count, start=offset)
    )
    handle = await start_direct(stack.client, stack.engine, stack.task_queue, business_id, task_id)
    await handle.result()
    return business_id, task_id


def delivery_of(task: Any) -> tuple[int, int, int, int]:
    return (
        task.delivery_accepted,
        task.delivery_delivered,
        task.delivery_read,
        task.delivery_failed,
    )


async def test_the_handshake_echoes_the_challenge_only_for_our_verify_token(stack: Stack) -> None:
    token = stack.settings.whatsapp_verify_token
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        good = await http.get(
            HOOK,
            params={"hub.mode": "subscribe", "hub.verify_token": token, "hub.challenge": "1158"},
        )
        wrong = await http.get(
            HOOK,
            params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1158"},
        )
        mode = await http.get(
            HOOK,
            params={"hub.mode": "unsubscribe", "hub.verify_token": token, "hub.challenge": "1"},
        )
        bare = await http.get(HOOK)
    assert (good.status_code, good.text) == (200, "1158")
    assert good.headers["content-type"].startswith("text/plain")
    assert [wrong.status_code, mode.status_code, bare.status_code] == [403, 403, 403]


async def test_statuses_apply_once_whatever_their_order(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id, task_id = await sent_broadcast(stack, new_business, 4, offset=400_000)
    sender = f"pn-{business_id}"
    items = await items_of(stack, task_id)
    assert [i["delivery"] for i in items] == [Delivery.accepted] * 4
    before = await get_task_row(stack.engine, task_id)
    assert delivery_of(before) == (4, 0, 0, 0)
    one, two, three, _ = items

    def key(item: dict[str, Any]) -> str:
        return f"lt1:{task_id}:{item['item_key']}"

    # Read before delivered, duplicated, in one POST; a failure; sent after delivered.
    batch = envelope(
        sender,
        statuses=[
            status(one["provider_ref"], "read", callback=key(one)),
            status(one["provider_ref"], "read", callback=key(one)),
            status(two["provider_ref"], "failed", callback=key(two), code=131026),
            status(three["provider_ref"], "delivered", callback=key(three)),
            status(three["provider_ref"], "sent", callback=key(three)),
        ],
    )
    first = await post(stack, batch)
    assert first.status_code == 200, first.text
    assert first.json()["applied"] == 5
    after = await get_task_row(stack.engine, task_id)
    assert delivery_of(after) == (1, 1, 1, 1)
    assert after.version > before.version
    # The same notification again (Meta retries), then older news: nothing changes.
    again = await post(stack, batch)
    late = await post(
        stack,
        envelope(
            sender,
            statuses=[
                status(one["provider_ref"], "delivered", callback=key(one)),
                status(one["provider_ref"], "sent", callback=key(one)),
                status(two["provider_ref"], "sent", callback=key(two)),
            ],
        ),
    )
    assert again.status_code == late.status_code == 200
    final = await get_task_row(stack.engine, task_id)
    assert delivery_of(final) == (1, 1, 1, 1)
    assert final.version == after.version, "nothing was written"
    rows = {i["item_key"]: i for i in await items_of(stack, task_id)}
    assert rows[one["item_key"]]["delivery"] == Delivery.read
    assert rows[one["item_key"]]["delivered_at"] is not None  # read implies delivered
    assert rows[two["item_key"]]["delivery"] == Delivery.failed
    assert rows[two["item_key"]]["delivery_code"] == "131026"
    assert rows[three["item_key"]]["delivery"] == Delivery.delivered
    # Send outcomes stay send outcomes: all four were accepted by the provider.
    assert (final.success_count, final.failed_count) == (4, 0)
    async with stack.http(business_id, "viewer") as http:
        shown = (await http.get(f"/api/long_tasks/{task_id}")).json()["delivery"]
        listed = (await http.get(f"/api/long_tasks/{task_id}/items")).json()["items"]
        csv = (await http.get(f"/api/long_tasks/{task_id}/items.csv")).text
    assert shown == {
        "accepted": 1,
        "delivered": 1,
        "read": 1,
        "failed": 1,
        "pending": 0,
        "unconfirmed": 0,
        "resent": 0,
    }
    assert [i["delivery"] for i in listed] == ["read", "failed", "delivered", "accepted"]
    assert listed[1]["delivery_error_code"] == "131026"
    header = csv.splitlines()[0].split(",")
    assert {"delivery", "delivery_error_code", "delivered_at", "read_at"} <= set(header)
    assert "131026" in csv


async def test_a_status_before_its_send_is_recorded_is_kept_and_applied(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    """With our key, the item (claimed before any send) takes it at once; without, by wamid,
    it waits in the inbox until the send records that wamid."""
    business_id = await new_business()
    sender = f"pn-{business_id}"
    task_id = await create_broadcast_task(
        stack.engine, business_id, israeli_numbers(2, start=410_000)
    )
    async with stack.engine.begin() as conn:
        await conn.execute(
            text("UPDATE broadcasts SET sender_id = :s WHERE task_id = :t"),
            {"s": sender, "t": task_id},
        )
        recipients = (
            await conn.execute(
                text(
                    "SELECT r.id, r.seq FROM broadcast_recipients r JOIN broadcasts b"
                    " ON b.id = r.broadcast_id WHERE b.task_id = :t ORDER BY r.seq"
                ),
                {"t": task_id},
            )
        ).all()
        await ledger.claim(conn, task_id, [ClaimRequest(str(r[0]), r[1], None) for r in recipients])
    keyed, unkeyed = (str(r[0]) for r in recipients)
    early = await post(
        stack,
        envelope(
            sender,
            statuses=[
                status("wamid.early.1", "delivered", callback=f"lt1:{task_id}:{keyed}"),
                status("wamid.early.2", "read"),
            ],
        ),
    )
    assert early.json() == {
        "statuses": 2,
        "applied": 1,
        "kept": 1,
        "refused": 0,
        "skipped": 0,
        "opted_out": 0,
    }
    # The sends' answers arrive now: accepted must not lower `delivered`.
    async with stack.engine.begin() as conn:
        counts = await ledger.settle(
            conn,
            task_id,
            [
                Outcome(
                    keyed,
                    ItemStatus.succeeded,
                    provider_ref="wamid.early.1",
                    delivery=Delivery.accepted,
                ),
                Outcome(
                    unkeyed,
                    ItemStatus.succeeded,
                    provider_ref="wamid.early.2",
                    delivery=Delivery.accepted,
                ),
            ],
        )
        drained = await deliveries.drain_inbox(conn, ["wamid.early.1", "wamid.early.2"])
    assert drained.changed == 1
    rows = {i["item_key"]: i for i in await items_of(stack, task_id)}
    assert rows[keyed]["delivery"] == Delivery.delivered
    assert rows[unkeyed]["delivery"] == Delivery.read
    # The settle counted the unkeyed item's `accepted`, the drain moved it on to `read`.
    assert counts.delivery.accepted == 1
    async with stack.engine.connect() as conn:
        left = (
            await conn.execute(
                text("SELECT count(*) FROM wa_status_inbox WHERE wamid LIKE 'wamid.early.%'")
            )
        ).scalar()
    assert left == 0


async def test_statuses_for_another_number_or_unknown_messages_change_no_item(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    business_id, task_id = await sent_broadcast(stack, new_business, 2, offset=420_000)
    other = await new_business()
    items = await items_of(stack, task_id)
    before = await get_task_row(stack.engine, task_id)
    wrong_sender = await post(
        stack,
        envelope(
            f"pn-{other}",
            statuses=[
                status(i["provider_ref"], "read", callback=f"lt1:{task_id}:{i['item_key']}")
                for i in items
            ]
            + [status(items[0]["provider_ref"], "failed", code=131050)],
        ),
    )
    unknown = await post(
        stack,
        envelope(
            f"pn-{business_id}",
            statuses=[
                status("wamid.nobody", "delivered"),
                status("wamid.nobody2", "read", callback=f"lt1:{task_id}:999999999"),
                status("wamid.nobody3", "read", callback="not-ours"),
            ],
        ),
    )
    assert wrong_sender.status_code == unknown.status_code == 200
    assert wrong_sender.json()["refused"] == 3
    assert (unknown.json()["kept"], unknown.json()["applied"]) == (3, 0)
    after = await get_task_row(stack.engine, task_id)
    assert after.version == before.version
    assert [i["delivery"] for i in await items_of(stack, task_id)] == [Delivery.accepted] * 2
    async with stack.engine.connect() as conn:
        suppressed = (
            await conn.execute(
                text("SELECT count(*) FROM wa_suppressions WHERE business_id IN (:a, :b)"),
                {"a": business_id, "b": other},
            )
        ).scalar()
        # Refused statuses are not kept either: a later send cannot pick them up.
        foreign = (
            await conn.execute(
                text("SELECT count(*) FROM wa_status_inbox WHERE phone_number_id = :p"),
                {"p": f"pn-{other}"},
            )
        ).scalar()
    assert (suppressed, foreign) == (0, 0)
    fault_report.add_hostile(
        HostileRow(
            scenario="WhatsApp webhook: statuses naming our items under another sender's"
            " phone_number_id, unknown wamids, unknown and foreign callback keys",
            requests=2,
            server_errors=sum(1 for r in (wrong_sender, unknown) if r.status_code >= 500),
            outcome="200; 3 refused, 3 unknown kept in the inbox (applied only if their wamid"
            " is ever sent from that number); no item, counter or suppression changed",
        )
    )


async def test_a_stop_reply_and_an_opt_out_failure_keep_later_broadcasts_away(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id, task_id = await sent_broadcast(stack, new_business, 3, offset=430_000)
    sender = f"pn-{business_id}"
    items = await items_of(stack, task_id)
    numbers = israeli_numbers(3, start=430_000)
    reply = await post(
        stack,
        envelope(
            sender,
            contacts=[{"wa_id": "972523430001", "profile": {"name": "x"}}],
            messages=[
                {
                    "from": "972523430001",
                    "id": "wamid.in.1",
                    "timestamp": "1",
                    "type": "text",
                    "text": {"body": " stop! "},
                },
                {
                    "from": "972523430003",
                    "id": "wamid.in.2",
                    "timestamp": "1",
                    "type": "text",
                    "text": {"body": "stopping by later"},
                },
            ],
        ),
    )
    assert reply.json()["opted_out"] == 1
    second = items[1]
    opted = await post(
        stack,
        envelope(
            sender,
            statuses=[
                status(
                    second["provider_ref"],
                    "failed",
                    callback=f"lt1:{task_id}:{second['item_key']}",
                    code=131050,
                )
            ],
        ),
    )
    assert opted.status_code == 200
    again = await create_broadcast_task(stack.engine, business_id, numbers)
    await (
        await start_direct(stack.client, stack.engine, stack.task_queue, business_id, again)
    ).result()
    rows = await items_of(stack, again)
    assert [r["status"] for r in rows] == ["failed", "failed", "succeeded"]
    assert [r["delivery_code"] for r in rows[:2]] == ["opted_out", "opted_out"]
    async with httpx.AsyncClient(base_url=stack.sandbox_url) as http:
        # This sender's only: another test may send to the same numbers from its own.
        sent_to = [
            len(
                (
                    await http.get("/sandbox/whatsapp/messages", params={"to": n, "sender": sender})
                ).json()["messages"]
            )
            for n in ("972523430001", "972523430002", "972523430003")
        ]
    assert sent_to == [1, 1, 2], "the opted-out were not messaged again"


HOSTILE_CASES = 7


async def test_hostile_notifications_write_nothing_and_never_5xx(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    business_id, task_id = await sent_broadcast(stack, new_business, 1, offset=440_000)
    (item,) = await items_of(stack, task_id)
    real = json.dumps(
        envelope(
            f"pn-{business_id}",
            statuses=[
                status(item["provider_ref"], "read", callback=f"lt1:{task_id}:{item['item_key']}")
            ],
        )
    ).encode()
    secret = stack.settings.whatsapp_app_secret
    huge = b'{"entry": [' + b" " * (stack.settings.whatsapp_webhook_max_bytes + 1) + b"]}"
    answers: list[int] = []
    async with httpx.AsyncClient(base_url=stack.api_url) as http:
        for headers, body in (
            ({}, real),  # no signature
            ({"X-Hub-Signature-256": sign("not-the-secret", real)}, real),  # forged
            ({"X-Hub-Signature-256": sign(secret, real)}, real.replace(b"read", b"sent")),
            ({"X-Hub-Signature-256": "sha1=" + "0" * 40}, real),  # another scheme
            ({"X-Hub-Signature-256": sign(secret, huge)}, huge),  # oversized
            ({"X-Hub-Signature-256": sign(secret, b"{not json")}, b"{not json"),
            ({"X-Hub-Signature-256": sign(secret, b"[1, 2]")}, b"[1, 2]"),
        ):
            response = await http.post(
                HOOK, content=body, headers={"Content-Type": "application/json", **headers}
            )
            answers.append(response.status_code)
    assert answers == [401, 401, 401, 401, 413, 400, 400]
    assert (await get_task_row(stack.engine, task_id)).delivery_read == 0
    # The genuine one, then replayed as is: applied once.
    assert (await post(stack, real)).status_code == 200
    replay = await post(stack, real)
    assert replay.status_code == 200
    task = await get_task_row(stack.engine, task_id)
    assert (task.delivery_read, task.delivery_accepted) == (1, 0)
    fault_report.add_hostile(
        HostileRow(
            scenario="WhatsApp webhook: missing, forged, mismatched and foreign-scheme"
            " signatures, an oversized body, non-JSON and non-object bodies, a replay",
            requests=HOSTILE_CASES + 1,
            server_errors=sum(1 for a in answers if a >= 500),
            outcome="401 before parsing, 413, 400; nothing written; the replay changed nothing",
        )
    )


@pytest.mark.parametrize("statuses", [1000])
async def test_a_full_batch_is_taken_in_one_notification(
    stack: Stack, new_business: Callable[[], Awaitable[int]], statuses: int
) -> None:
    """Meta batches up to 1,000 updates: unknown ones are kept, none refused, no 5xx."""
    business_id = await new_business()
    payload = envelope(
        f"pn-{business_id}",
        statuses=[status(f"wamid.batch.{business_id}.{i}", "delivered") for i in range(statuses)],
    )
    response = await post(stack, payload)
    assert response.status_code == 200, response.text
    assert response.json()["kept"] == statuses

    async def all_kept() -> bool:
        async with stack.engine.connect() as conn:
            found = await conn.execute(
                text("SELECT count(*) FROM wa_status_inbox WHERE wamid LIKE :p"),
                {"p": f"wamid.batch.{business_id}.%"},
            )
            return found.scalar() == statuses

    await wait_until(all_kept, what="the inbox holds the batch")
