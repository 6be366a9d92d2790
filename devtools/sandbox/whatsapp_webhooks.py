"""Status webhooks of the WhatsApp sandbox, shaped, signed, delayed and retried like Meta's.

Every accepted message gets its statuses scheduled at once: `sent`, `delivered` and sometimes
`read`, or only `failed` (131026 / 131049 / 131050) for a share of them. Each step waits a delay
drawn from an exponential distribution around `status_delay_ms`; some statuses are scheduled
twice (Meta's retries reach every subscribed app, so duplicates happen), some pairs swap order
(`read` before `delivered`), and `webhook_drop_rate` of them are never delivered at all (1: the
pipeline is down). A dispatcher collects what is due every few milliseconds into POSTs of several
statuses per sender, in Meta's envelope
(`entry[].changes[].value.{metadata, statuses[]}`), signed
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body keyed with the app secret>`.
A POST answered other than 2xx, or not answered, is sent again, the same bytes, with growing
pauses for `retry_for_s` (Meta retries for up to 7 days; scaled down here).

Statuses pending delivery are tuples of numbers in a heap (untracked by the garbage collector);
what they refer to lives in the `MessageStore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from devtools.sandbox.whatsapp_store import MessageStore, StatusBit, wamid_of

log = logging.getLogger("devtools.sandbox.whatsapp")

SENT, DELIVERED, READ, FAILED = 0, 1, 2, 3
_NAMES = ("sent", "delivered", "read", "failed")
_BITS = (StatusBit.sent, StatusBit.delivered, StatusBit.read, StatusBit.failed)

# Errors a message can fail with after it was accepted (Meta's error codes page).
ASYNC_FAILURES: dict[int, tuple[str, str]] = {
    131026: (
        "Message undeliverable",
        "Unable to deliver message: the recipient may not be on WhatsApp or may not have"
        " accepted the Terms of Service.",
    ),
    131049: (
        "This message was not delivered to maintain healthy ecosystem engagement.",
        "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
    ),
    131050: (
        "Unable to deliver the message. This recipient has chosen to stop receiving marketing"
        " messages on WhatsApp from your business",
        "The recipient has stopped marketing messages from this business.",
    ),
}


def signature(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` header value of a body, as Meta computes it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class StatusPlan:
    """How one sender's statuses behave (from the sandbox config of that sender)."""

    delay_ms: float
    async_failure_rate: float
    read_rate: float
    drop_rate: float
    duplicate_rate: float
    reorder_rate: float


@dataclass
class WebhookStats:
    posts: int = 0
    failed_posts: int = 0
    retries: int = 0
    dropped: int = 0
    gave_up: int = 0
    inbound: int = 0
    statuses: dict[str, int] = field(
        default_factory=lambda: {"sent": 0, "delivered": 0, "read": 0, "failed": 0}
    )
    # The same, per sender number (tests isolate themselves by sender).
    by_sender: dict[str, list[int]] = field(default_factory=dict)

    def sender_statuses(self, sender: str) -> dict[str, int]:
        counts = self.by_sender.get(sender, [0, 0, 0, 0])
        return dict(zip(("sent", "delivered", "read", "failed"), counts, strict=True))


@dataclass
class _Batch:
    body: bytes
    # (message number, status index) of each status in the body, to count acknowledgements.
    events: tuple[tuple[int, int], ...]
    first_sent_at: float
    attempt: int = 0


class WebhookDispatcher:
    """Schedules the statuses of accepted messages and delivers them to the webhook URL."""

    def __init__(
        self,
        store: MessageStore,
        *,
        url: str | None = None,
        app_secret: str = "sandbox-app-secret",  # noqa: S107
        batch_max: int = 250,
        concurrency: int = 4,
        tick_s: float = 0.02,
        retry_for_s: float = 600.0,
        seed: int | None = None,
    ) -> None:
        self.store = store
        self.url = url
        self.app_secret = app_secret
        self.batch_max = batch_max
        self.tick_s = tick_s
        self.retry_for_s = retry_for_s
        self.stats = WebhookStats()
        self._rng = random.Random(seed)
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._seq = itertools.count()
        # (due monotonic time, seq, message number, status index, error code or 0)
        self._due: list[tuple[float, int, int, int, int]] = []
        self._retries: list[tuple[float, int, _Batch]] = []
        self._inbound: list[tuple[str, dict[str, Any]]] = []
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._posting: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    # -- scheduling -------------------------------------------------------------------------

    def schedule(self, number: int, plan: StatusPlan) -> None:
        """Plan the statuses of accepted message `number`."""
        now = time.monotonic()
        mean_s = plan.delay_ms / 1000.0

        def step() -> float:
            return self._rng.expovariate(1.0 / mean_s) if mean_s > 0 else 0.0

        rng = self._rng
        events: list[tuple[float, int, int]] = []  # (due, status, error code)
        if plan.async_failure_rate > 0 and rng.random() < plan.async_failure_rate:
            failure = rng.choice(list(ASYNC_FAILURES))
            events.append((now + step(), FAILED, failure))
        else:
            at = now + step()
            events.append((at, SENT, 0))
            at += step()
            events.append((at, DELIVERED, 0))
            if plan.read_rate > 0 and rng.random() < plan.read_rate:
                at += step()
                events.append((at, READ, 0))
            if plan.reorder_rate > 0 and rng.random() < plan.reorder_rate:
                # The last two arrive the other way round (read before delivered, or
                # delivered before sent): Meta promises no order.
                (a, sa, ca), (b, sb, cb) = events[-2], events[-1]
                events[-2:] = [(b, sa, ca), (a, sb, cb)]
        for due, status, code in events:
            if plan.drop_rate > 0 and rng.random() < plan.drop_rate:
                self.stats.dropped += 1
                continue
            self._push(due, number, status, code)
            if plan.duplicate_rate > 0 and rng.random() < plan.duplicate_rate:
                self._push(due + step(), number, status, code)
        self._wake.set()

    def inbound(self, sender: str, message: dict[str, Any], contact: dict[str, Any]) -> None:
        """A user's message to the business number, delivered with the next batch."""
        self._inbound.append((sender, {"messages": [message], "contacts": [contact]}))
        self._wake.set()

    def _push(self, due: float, number: int, status: int, code: int) -> None:
        heapq.heappush(self._due, (due, next(self._seq), number, status, code))

    @property
    def pending(self) -> int:
        return len(self._due) + len(self._retries) + len(self._inbound) + len(self._posting)

    def clear(self) -> None:
        self._due.clear()
        self._retries.clear()
        self._inbound.clear()
        self.stats = WebhookStats()

    # -- delivery ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._concurrency * 2),
            timeout=aiohttp.ClientTimeout(total=20),
        )
        self._runner = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for task in list(self._posting):
            task.cancel()
        if self._posting:
            await asyncio.gather(*self._posting, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            try:
                await self._dispatch_due()
            except Exception:  # never let one bad batch stop every later webhook
                log.exception("sandbox webhook dispatch failed")
            now = time.monotonic()
            next_at = min(
                self._due[0][0] if self._due else now + 3600,
                self._retries[0][0] if self._retries else now + 3600,
            )
            self._wake.clear()
            timeout = max(self.tick_s, next_at - now)
            if self._inbound:
                timeout = 0.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            # Gather what comes due within a tick into the same POSTs.
            await asyncio.sleep(self.tick_s)

    async def _dispatch_due(self) -> None:
        if self.url is None:
            return
        now = time.monotonic()
        by_sender: dict[str, list[tuple[int, int, int]]] = {}
        while self._due and self._due[0][0] <= now:
            _, _, number, status, code = heapq.heappop(self._due)
            by_sender.setdefault(self.store.senders[number], []).append((number, status, code))
        for sender, events in by_sender.items():
            for start in range(0, len(events), self.batch_max):
                chunk = events[start : start + self.batch_max]
                body = self._status_body(sender, chunk)
                batch = _Batch(body, tuple((n, s) for n, s, _ in chunk), time.time())
                await self._post_later(batch)
        inbound, self._inbound = self._inbound, []
        for sender, value in inbound:
            await self._post_later(_Batch(self._envelope(sender, value), (), time.time()))
        while self._retries and self._retries[0][0] <= now:
            _, _, batch = heapq.heappop(self._retries)
            self.stats.retries += 1
            await self._post_later(batch)

    async def _post_later(self, batch: _Batch) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self._post(batch))
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)

    async def _post(self, batch: _Batch) -> None:
        assert self._session is not None
        assert self.url is not None
        ok = False
        try:
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature-256": signature(self.app_secret, batch.body),
                "User-Agent": "facebookexternalua",
            }
            async with self._session.post(self.url, data=batch.body, headers=headers) as answer:
                await answer.read()
                ok = 200 <= answer.status < 300
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        finally:
            self._slots.release()
        self.stats.posts += 1
        if ok:
            for number, status in batch.events:
                if self.store.acknowledge(number, _BITS[status]):
                    self.stats.statuses[_NAMES[status]] += 1
                    sender = self.store.senders[number]
                    self.stats.by_sender.setdefault(sender, [0, 0, 0, 0])[status] += 1
            return
        self.stats.failed_posts += 1
        batch.attempt += 1
        if time.time() - batch.first_sent_at > self.retry_for_s:
            self.stats.gave_up += 1
            return
        # Decreasing frequency, as Meta's: 0.5 s doubling to a minute between tries.
        pause = min(0.5 * 2 ** (batch.attempt - 1), 60.0)
        heapq.heappush(self._retries, (time.monotonic() + pause, next(self._seq), batch))
        self._wake.set()

    # -- payloads ---------------------------------------------------------------------------

    def _status_body(self, sender: str, events: list[tuple[int, int, int]]) -> bytes:
        now = str(int(time.time()))
        statuses = []
        for number, status, code in events:
            item: dict[str, Any] = {
                "id": wamid_of(number),
                "status": _NAMES[status],
                "timestamp": now,
                "recipient_id": self.store.recipients[number],
            }
            callback = self.store.callbacks[number]
            if callback is not None:
                item["biz_opaque_callback_data"] = callback
            if status == SENT:
                item["pricing"] = {
                    "billable": True,
                    "pricing_model": "PMP",
                    "type": "regular",
                    "category": "marketing",
                }
            if status == FAILED:
                title, details = ASYNC_FAILURES[code]
                item["errors"] = [
                    {
                        "code": code,
                        "title": title,
                        "message": title,
                        "error_data": {"details": details},
                        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                    }
                ]
            statuses.append(item)
        return self._envelope(sender, {"statuses": statuses})

    @staticmethod
    def _envelope(sender: str, value: dict[str, Any]) -> bytes:
        return json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [
                    {
                        "id": f"waba-{sender}",
                        "changes": [
                            {
                                "value": {
                                    "messaging_product": "whatsapp",
                                    "metadata": {
                                        "display_phone_number": "15550000000",
                                        "phone_number_id": sender,
                                    },
                                    **value,
                                },
                                "field": "messages",
                            }
                        ],
                    }
                ],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
