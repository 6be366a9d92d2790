"""The WhatsApp sandbox over HTTP: an idempotency key replays the first answer exactly, and
the server stays flat over many messages (a stand-in provider must not stall the sends it
measures)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from devtools.sandbox.whatsapp import WhatsAppSandbox, WhatsAppSandboxConfig

Client = TestClient[web.Request, web.Application]
SEND = "/v21.0/15550001111/messages"
AUTH = {"Authorization": "Bearer test"}


@contextlib.asynccontextmanager
async def running(sandbox: WhatsAppSandbox) -> AsyncIterator[Client]:
    app = web.Application()
    sandbox.add_routes(app)
    async with TestClient(TestServer(app)) as client:
        yield client


def message(to: str) -> dict[str, str]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text"}


async def test_a_replayed_key_gets_the_first_answer_and_delivers_nothing() -> None:
    sandbox = WhatsAppSandbox(WhatsAppSandboxConfig(latency_ms=0))
    async with running(sandbox) as client:
        headers = {**AUTH, "Idempotency-Key": "task-1:42"}
        first = await client.post(SEND, json=message("972501234567"), headers=headers)
        again = await client.post(SEND, json=message("972501234567"), headers=headers)
        other = await client.post(
            SEND, json=message("972501234567"), headers={**AUTH, "Idempotency-Key": "task-1:43"}
        )
        assert first.status == again.status == other.status == 200
        body = await first.json()
        assert body == {
            "messaging_product": "whatsapp",
            "contacts": [{"input": "972501234567", "wa_id": "972501234567"}],
            "messages": [{"id": body["messages"][0]["id"]}],
        }
        assert await again.json() == body
        assert (await other.json())["messages"][0]["id"] != body["messages"][0]["id"]
    stats = sandbox.stats_json()
    assert (stats["accepted"], stats["replayed"], stats["duplicates"]) == (2, 1, 0)


def test_what_it_keeps_per_message_is_not_tracked_by_the_garbage_collector() -> None:
    """Python's full collections walk every tracked container: a body of nested dicts kept per
    message made them pause the server for 200-300 ms after ~10^5 messages."""
    sandbox = WhatsAppSandbox(WhatsAppSandboxConfig(latency_ms=0))
    for i in range(2000):
        sandbox._deliver(f"task-1:{i}", "15550001111", f"97250{i:07d}")
    gc.collect()
    kept = list(sandbox._responses.values())
    assert len(kept) == 2000
    assert not any(gc.is_tracked(answer) for answer in kept)


async def test_what_each_number_was_sent_oldest_first() -> None:
    sandbox = WhatsAppSandbox(WhatsAppSandboxConfig(latency_ms=0))
    async with running(sandbox) as client:
        sends = [
            ("972501234567", {"type": "text", "text": {"body": "first"}}),
            ("972509999999", {"type": "text", "text": {"body": "other"}}),
            ("972501234567", {"type": "text", "text": {"body": "second"}}),
            ("972501234567", {"type": "text", "text": {"body": "third"}}),
        ]
        for to, content in sends:
            response = await client.post(
                SEND, json={"messaging_product": "whatsapp", "to": to, **content}, headers=AUTH
            )
            assert response.status == 200
        refused = await client.post(SEND, json={"to": "972501234567"}, headers=AUTH)
        assert refused.status == 400
        got = await (await client.get("/sandbox/whatsapp/messages?to=972501234567")).json()
        other = await (await client.get("/sandbox/whatsapp/messages?to=+972509999999")).json()
        nobody = await (await client.get("/sandbox/whatsapp/messages?to=972500000001")).json()
    assert [m["text"]["body"] for m in got["messages"]] == ["first", "second", "third"]
    assert got["messages"][0] == {
        "messaging_product": "whatsapp",
        "to": "972501234567",
        "type": "text",
        "text": {"body": "first"},
    }
    assert [m["text"]["body"] for m in other["messages"]] == ["other"]
    assert nobody == {"messages": []}
    gc.collect()
    assert not gc.is_tracked(sandbox._bodies_to)
