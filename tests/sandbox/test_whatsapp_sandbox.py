"""The WhatsApp sandbox over HTTP behaves like the real Cloud API: no idempotency key, callback
data echoed on status webhooks in Meta's shape and signature, webhooks batched, duplicated,
reordered, dropped and retried; answers lost after acceptance. And it stays flat over many
messages (a stand-in provider must not stall the sends it measures)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from devtools.sandbox.whatsapp import WhatsAppSandbox, WhatsAppSandboxConfig

Client = TestClient[web.Request, web.Application]
SENDER = "15550001111"
SEND = f"/v21.0/{SENDER}/messages"
AUTH = {"Authorization": "Bearer test"}
SECRET = "test-app-secret"


def quiet(**changes: Any) -> WhatsAppSandboxConfig:
    """Statuses within milliseconds, no duplicates, reordering or reads unless asked."""
    base = WhatsAppSandboxConfig(
        duplicate_rate=0.0, reorder_rate=0.0, read_rate=0.0, status_delay_ms=5.0
    )
    return replace(base, **changes)


@dataclass
class Receiver:
    """A webhook endpoint that records what Meta's side sent, answering `answers` in turn."""

    answers: list[int] = field(default_factory=list)
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((dict(request.headers), await request.read()))
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status)

    def statuses(self) -> list[dict[str, Any]]:
        """Every status of every POST that got a 2xx, in arrival order."""
        out: list[dict[str, Any]] = []
        for _, body in self.posts:
            for entry in json.loads(body)["entry"]:
                for change in entry["changes"]:
                    out.extend(change["value"].get("statuses", []))
        return out


@contextlib.asynccontextmanager
async def running(
    config: WhatsAppSandboxConfig, receiver: Receiver | None = None
) -> AsyncIterator[tuple[Client, WhatsAppSandbox]]:
    hook_app = web.Application()
    hook = receiver or Receiver()
    hook_app.router.add_post("/hook", hook.handle)
    async with TestServer(hook_app) as hook_server:
        sandbox = WhatsAppSandbox(
            config, webhook_url=str(hook_server.make_url("/hook")), app_secret=SECRET, seed=7
        )
        app = web.Application()
        sandbox.add_routes(app)
        async with TestClient(TestServer(app)) as client:
            yield client, sandbox


def to(i: int) -> str:
    """A distinct recipient; never ending in 0000 (the sandbox's "not on WhatsApp")."""
    return f"97250{i:06d}1"


def message(to: str, callback: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"messaging_product": "whatsapp", "to": to, "type": "text"}
    if callback is not None:
        body["biz_opaque_callback_data"] = callback
    return body


async def until(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_an_idempotency_key_changes_nothing_a_repeat_is_a_second_message() -> None:
    async with running(quiet()) as (client, sandbox):
        headers = {**AUTH, "Idempotency-Key": "task-1:42"}
        first = await client.post(SEND, json=message("972501234567", "k1"), headers=headers)
        again = await client.post(SEND, json=message("972501234567", "k1"), headers=headers)
        assert first.status == again.status == 200
        body = await first.json()
        assert body == {
            "messaging_product": "whatsapp",
            "contacts": [{"input": "972501234567", "wa_id": "972501234567"}],
            "messages": [{"id": body["messages"][0]["id"]}],
        }
        assert (await again.json())["messages"][0]["id"] != body["messages"][0]["id"]
    stats = sandbox.stats_json()
    assert (stats["accepted"], stats["duplicates"]) == (2, 1)
    assert "replayed" not in stats


async def test_callback_data_over_512_characters_is_refused() -> None:
    async with running(quiet()) as (client, sandbox):
        too_long = await client.post(SEND, json=message("972501234567", "x" * 513), headers=AUTH)
        longest = await client.post(SEND, json=message("972501234568", "x" * 512), headers=AUTH)
        assert (too_long.status, longest.status) == (400, 200)
        assert (await too_long.json())["error"]["code"] == 100
    assert sandbox.stats_json()["accepted"] == 1


async def test_status_webhooks_have_metas_shape_signature_and_callback_data() -> None:
    receiver = Receiver()
    config = quiet(read_rate=1.0)
    async with running(config, receiver) as (client, sandbox):
        for i in range(20):
            response = await client.post(SEND, json=message(to(i), f"lt1:9:{i}"), headers=AUTH)
            assert response.status == 200
        await until(lambda: sandbox.stats_json()["statuses"]["read"] == 20)
    headers, body = receiver.posts[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == expected
    payload = json.loads(body)
    assert payload["object"] == "whatsapp_business_account"
    change = payload["entry"][0]["changes"][0]
    assert change["field"] == "messages"
    assert change["value"]["metadata"]["phone_number_id"] == SENDER
    statuses = receiver.statuses()
    assert len(statuses) == 60  # sent, delivered, read for each of 20
    assert (
        max(
            len(json.loads(b)["entry"][0]["changes"][0]["value"]["statuses"])
            for _, b in receiver.posts
        )
        > 1
    ), "several statuses share a POST"
    for status in statuses:
        assert set(status) >= {"id", "status", "timestamp", "recipient_id"}
        assert status["timestamp"].isdigit()
        assert status["biz_opaque_callback_data"].startswith("lt1:9:")
    assert sandbox.stats_json()["statuses"] == {
        "sent": 20,
        "delivered": 20,
        "read": 20,
        "failed": 0,
    }


async def test_duplicates_and_reordering_reach_the_receiver_but_count_once() -> None:
    receiver = Receiver()
    config = WhatsAppSandboxConfig(
        status_delay_ms=5.0, read_rate=1.0, duplicate_rate=1.0, reorder_rate=1.0
    )
    async with running(config, receiver) as (client, sandbox):
        for i in range(10):
            await client.post(SEND, json=message(to(i), f"k{i}"), headers=AUTH)
        await until(lambda: sandbox.stats_json()["statuses"]["read"] == 10)
        await until(lambda: len(receiver.statuses()) == 60)
    arrivals: dict[str, list[str]] = {}
    for status in receiver.statuses():
        arrivals.setdefault(status["id"], []).append(status["status"])
    for seen in arrivals.values():
        assert sorted(seen) == sorted(["sent", "delivered", "read"] * 2)
        # The last two swap: the first read arrives before the first delivered.
        assert seen.index("read") < seen.index("delivered")
    assert sandbox.stats_json()["statuses"] == {
        "sent": 10,
        "delivered": 10,
        "read": 10,
        "failed": 0,
    }


async def test_a_failing_receiver_gets_the_same_bytes_again_later() -> None:
    receiver = Receiver(answers=[500, 503])
    async with running(quiet(), receiver) as (client, sandbox):
        await client.post(SEND, json=message("972501234567", "k"), headers=AUTH)
        await until(lambda: sandbox.stats_json()["statuses"]["delivered"] == 1, timeout_s=20)
        stats = sandbox.stats_json()
    assert stats["webhooks"]["failed_posts"] >= 2
    assert stats["webhooks"]["retries"] >= 2
    first_body = receiver.posts[0][1]
    assert receiver.posts[1][1] == first_body, "a retry repeats the notification as it was"


async def test_dropped_webhooks_never_arrive() -> None:
    receiver = Receiver()
    config = quiet(webhook_drop_rate=1.0)
    async with running(config, receiver) as (client, sandbox):
        for i in range(5):
            await client.post(SEND, json=message(to(i), f"k{i}"), headers=AUTH)
        await asyncio.sleep(0.3)
        stats = sandbox.stats_json()
    assert receiver.posts == []
    assert stats["accepted"] == 5
    assert stats["webhooks"]["dropped"] == 10  # sent and delivered of each
    assert stats["statuses"] == {"sent": 0, "delivered": 0, "read": 0, "failed": 0}


async def test_a_lost_response_was_accepted_and_its_statuses_still_come() -> None:
    receiver = Receiver()
    config = quiet(lost_response_rate=1.0)
    async with running(config, receiver) as (client, sandbox):
        outcomes: list[str] = []
        for i in range(8):
            try:
                response = await client.post(SEND, json=message(to(i), f"k{i}"), headers=AUTH)
            except aiohttp.ClientError as exc:
                outcomes.append(type(exc).__name__)
            else:
                outcomes.append(str(response.status))
                assert "error" not in await response.text(), "not a Graph error"
        await until(lambda: sandbox.stats_json()["statuses"]["sent"] == 8)
        stats = sandbox.stats_json()
    assert set(outcomes) <= {"504", "ServerDisconnectedError"}
    assert len(set(outcomes)) == 2, outcomes  # both ways of losing the answer happen
    assert (stats["accepted"], stats["lost_responses"]) == (8, 8)


async def test_asynchronous_failures_carry_metas_error_codes() -> None:
    receiver = Receiver()
    config = quiet(async_failure_rate=1.0)
    async with running(config, receiver) as (client, sandbox):
        for i in range(12):
            response = await client.post(SEND, json=message(to(i), f"k{i}"), headers=AUTH)
            assert response.status == 200
        await until(lambda: sandbox.stats_json()["statuses"]["failed"] == 12)
    statuses = receiver.statuses()
    assert {s["status"] for s in statuses} == {"failed"}
    codes = {s["errors"][0]["code"] for s in statuses}
    assert codes <= {131026, 131049, 131050}
    assert all({"code", "title", "message", "error_data"} <= set(s["errors"][0]) for s in statuses)


async def test_messages_to_a_recipient_are_listed_as_received_oldest_first() -> None:
    async with running(quiet()) as (client, _):
        for text in ("one", "two"):
            body = {**message("972531234567", f"k-{text}"), "text": {"body": text}}
            await client.post(SEND, json=body, headers=AUTH)
        await client.post(SEND, json=message("972531234568"), headers=AUTH)
        listed = await (await client.get("/sandbox/whatsapp/messages?to=972531234567")).json()
        nobody = await (await client.get("/sandbox/whatsapp/messages?to=972500000001")).json()
    assert [m["text"]["body"] for m in listed["messages"]] == ["one", "two"]
    assert listed["messages"][0]["biz_opaque_callback_data"] == "k-one"
    assert nobody == {"messages": []}


async def test_messages_to_a_recipient_from_one_sender_leave_out_other_senders() -> None:
    """Tests share one sandbox: whether a broadcast reached a number is asked per sender (an
    unfiltered count once took another test's message for a send that never left)."""
    async with running(quiet()) as (client, _):
        await client.post(SEND, json=message("972531234567", "mine"), headers=AUTH)
        await client.post(
            "/v21.0/15550002222/messages", json=message("972531234567", "theirs"), headers=AUTH
        )
        await client.post(
            "/v21.0/15550002222/messages", json=message("972531234568", "only-theirs"), headers=AUTH
        )
        query = "/sandbox/whatsapp/messages?to=972531234567"
        everyone = await (await client.get(query)).json()
        mine = await (await client.get(f"{query}&sender={SENDER}")).json()
        none_of_mine = await (
            await client.get(f"/sandbox/whatsapp/messages?to=972531234568&sender={SENDER}")
        ).json()
    assert [m["biz_opaque_callback_data"] for m in everyone["messages"]] == ["mine", "theirs"]
    assert [m["biz_opaque_callback_data"] for m in mine["messages"]] == ["mine"]
    assert none_of_mine == {"messages": []}


async def test_an_inbound_user_message_is_a_messages_webhook() -> None:
    receiver = Receiver()
    async with running(quiet(), receiver) as (client, _):
        response = await client.post(
            "/sandbox/whatsapp/inbound",
            json={"sender": SENDER, "from": "972501234567", "text": "STOP"},
        )
        assert response.status == 200
        await until(lambda: bool(receiver.posts))
    value = json.loads(receiver.posts[0][1])["entry"][0]["changes"][0]["value"]
    assert value["metadata"]["phone_number_id"] == SENDER
    assert value["messages"][0]["from"] == "972501234567"
    assert value["messages"][0]["text"] == {"body": "STOP"}


@pytest.mark.parametrize("count", [3000])
def test_what_it_keeps_per_message_is_not_tracked_by_the_garbage_collector(count: int) -> None:
    """Python's full collections walk every tracked container: a body of nested dicts kept per
    message made them pause the server for 200-300 ms after ~10^5 messages."""
    sandbox = WhatsAppSandbox(WhatsAppSandboxConfig(status_delay_ms=60_000.0))
    for i in range(count):
        number, _ = sandbox.store.add(SENDER, f"97250{i:07d}", f"lt1:1:{i}", b"{}")
        sandbox.webhooks.schedule(number, sandbox.config.status_plan())
    gc.collect()
    store = sandbox.store
    kept: list[object] = [*store.senders, *store.recipients, *store.callbacks, *store.bodies]
    kept += sandbox.webhooks._due
    assert len(sandbox.webhooks._due) >= 2 * count
    assert not any(gc.is_tracked(item) for item in kept)
