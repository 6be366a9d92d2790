"""Task-finished notifications: REST settings, a signed webhook (retried on 5xx), an email.

The receivers are real servers on localhost: an aiohttp app for the webhook and aiosmtpd for
SMTP. Tests run their own worker (their own task queue) so its SMTP settings point at the local
server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from sqlalchemy import text

from longtasks.notifications.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.conftest import (
    Stack,
    _free_port,
    create_broadcast_task,
    israeli_numbers,
    record_history,
    running_worker,
    settings_for_tests,
    start_direct,
    wait_until,
    workflow_id_of,
)

SECRET = "s3cret-for-the-webhook-tests"


@dataclass
class Receiver:
    url: str
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    # Status codes to answer, in order; then 200.
    script: list[int] = field(default_factory=list)


@contextlib.asynccontextmanager
async def webhook_receiver(script: list[int] | None = None) -> AsyncIterator[Receiver]:
    port = _free_port()
    receiver = Receiver(url=f"http://127.0.0.1:{port}/hooks/longtasks", script=script or [])

    async def hook(request: web.Request) -> web.Response:
        receiver.requests.append((dict(request.headers), await request.read()))
        status = receiver.script.pop(0) if receiver.script else 200
        return web.Response(status=status, text="ok" if status < 300 else "down")

    app = web.Application()
    app.router.add_post("/hooks/longtasks", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield receiver
    finally:
        await runner.cleanup()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


@contextlib.asynccontextmanager
async def own_worker(stack: Stack, **overrides: Any) -> AsyncIterator[str]:
    queue = f"longtasks-notify-{uuid.uuid4().hex[:8]}"
    settings = settings_for_tests(
        str(stack.settings.database_url), stack.sandbox_url, temporal_task_queue=queue, **overrides
    )
    async with running_worker(stack.client, settings, stack.app_engine, queue):
        yield queue


async def _configure(stack: Stack, business_id: int, body: dict[str, Any]) -> dict[str, Any]:
    async with stack.http(business_id, "admin") as http:
        response = await http.put("/api/notifications", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _run_broadcast(stack: Stack, queue: str, business_id: int, count: int = 3) -> int:
    task_id = await create_broadcast_task(stack.engine, business_id, israeli_numbers(count))
    handle = await start_direct(stack.client, stack.engine, queue, business_id, task_id)
    await handle.result()
    return task_id


async def test_settings_over_rest_by_role(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "viewer") as viewer:
        empty = await viewer.get("/api/notifications")
        assert empty.status_code == 200
        assert empty.json()["webhook_url"] is None
        refused = await viewer.put("/api/notifications", json={"email_to": "ops@example.com"})
        assert refused.status_code == 403
    saved = await _configure(
        stack,
        business_id,
        {"webhook_url": "https://hooks.example.com/x", "webhook_secret": SECRET},
    )
    assert saved["webhook_secret_set"] is True
    assert "webhook_secret" not in saved
    async with stack.http(business_id, "admin") as admin:
        missing_secret = await admin.put(
            "/api/notifications", json={"webhook_url": "https://hooks.example.com/x"}
        )
        assert missing_secret.status_code == 422
        bad_url = await admin.put(
            "/api/notifications",
            json={"webhook_url": "file:///etc/passwd", "webhook_secret": SECRET},
        )
        assert bad_url.status_code == 422
        bad_email = await admin.put("/api/notifications", json={"email_to": "a@b\r\nBcc: x@y.z"})
        assert bad_email.status_code == 422
        # Stored encrypted, never in clear.
        async with stack.engine.connect() as conn:
            stored = await conn.execute(
                text(
                    "SELECT webhook_secret_encrypted FROM notification_settings"
                    " WHERE business_id = :b"
                ),
                {"b": business_id},
            )
            assert SECRET not in stored.scalar_one()
        assert (await admin.delete("/api/notifications")).status_code == 204
        assert (await admin.get("/api/notifications")).json()["webhook_secret_set"] is False
    async with stack.http(business_id + 1_000_000, "admin") as other:
        assert (await other.get("/api/notifications")).json()["webhook_url"] is None


async def test_webhook_is_signed_and_carries_no_personal_data(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with webhook_receiver() as receiver, own_worker(stack) as queue:
        await _configure(
            stack, business_id, {"webhook_url": receiver.url, "webhook_secret": SECRET}
        )
        task_id = await _run_broadcast(stack, queue, business_id)
        await wait_until(lambda: _received(receiver, 1), what="the webhook")
        await record_history(
            stack.client, await workflow_id_of(stack.engine, task_id), "broadcast-notified"
        )

    headers, body = receiver.requests[0]
    assert verify(SECRET, body, headers[SIGNATURE_HEADER])
    assert headers[SIGNATURE_HEADER].startswith("sha256=")
    assert headers[TIMESTAMP_HEADER].isdigit()
    assert headers["Idempotency-Key"] == f"{task_id}:notify-webhook"
    payload = json.loads(body)
    assert payload["event"] == "task.finished"
    task = payload["task"]
    assert (task["id"], task["status"], task["success_count"]) == (task_id, "completed", 3)
    assert "052" not in body.decode() and "Hello" not in body.decode()
    assert not verify("another-secret-entirely", body, headers[SIGNATURE_HEADER])
    assert await _deliveries(stack, task_id) == {"webhook": "delivered"}


async def test_webhook_is_retried_on_500_until_it_succeeds(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with webhook_receiver(script=[500, 503]) as receiver, own_worker(stack) as queue:
        await _configure(
            stack, business_id, {"webhook_url": receiver.url, "webhook_secret": SECRET}
        )
        task_id = await _run_broadcast(stack, queue, business_id)
        # The workflow waits for its notification: by now it has been delivered.
    assert len(receiver.requests) == 3
    keys = {h["Idempotency-Key"] for h, _ in receiver.requests}
    assert keys == {f"{task_id}:notify-webhook"}
    assert all(verify(SECRET, b, h[SIGNATURE_HEADER]) for h, b in receiver.requests)
    assert await _deliveries(stack, task_id) == {"webhook": "delivered"}


async def test_a_refused_webhook_is_not_retried_and_the_task_still_completes(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with webhook_receiver(script=[404]) as receiver, own_worker(stack) as queue:
        await _configure(
            stack, business_id, {"webhook_url": receiver.url, "webhook_secret": SECRET}
        )
        task_id = await _run_broadcast(stack, queue, business_id)
    assert len(receiver.requests) == 1
    assert await _deliveries(stack, task_id) == {"webhook": "rejected"}
    async with stack.http(business_id, "viewer") as http:
        assert (await http.get(f"/api/long_tasks/{task_id}")).json()["status"] == "completed"


async def test_email_is_sent_over_smtp(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    await asyncio.to_thread(controller.start)
    try:
        async with own_worker(
            stack, smtp_host="127.0.0.1", smtp_port=port, smtp_from="tasks@longtasks.test"
        ) as queue:
            await _configure(stack, business_id, {"email_to": "ops@example.com"})
            task_id = await _run_broadcast(stack, queue, business_id, count=4)
    finally:
        await asyncio.to_thread(controller.stop)
    assert len(mailbox.messages) == 1
    recipients, raw = mailbox.messages[0]
    assert recipients == ["ops@example.com"]
    mail = message_from_bytes(raw)
    assert mail["Subject"] == f"longtasks: broadcast task #{task_id} completed"
    assert mail["From"] == "tasks@longtasks.test"
    assert mail["Message-ID"] == f"<task-{task_id}-finished@longtasks.test>"
    assert "Succeeded: 4" in mail.get_payload()
    assert await _deliveries(stack, task_id) == {"email": "delivered"}


async def _received(receiver: Receiver, count: int) -> bool:
    return len(receiver.requests) >= count


async def _deliveries(stack: Stack, task_id: int) -> dict[str, str]:
    async with stack.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT channel, outcome FROM notification_deliveries WHERE task_id = :t"),
            {"t": task_id},
        )
        return {r[0]: r[1] for r in rows}
