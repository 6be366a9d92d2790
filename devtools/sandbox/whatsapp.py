"""A sandbox WhatsApp Cloud API: the same HTTP as Meta's, and at least as hard to use safely.

Like the real Cloud API it has **no idempotency key**: `Idempotency-Key` is ignored and a repeat
is a second message. A send may carry `biz_opaque_callback_data` (a string of at most 512
characters), echoed on every status webhook of that message. `duplicates` counts messages
accepted more than once with the same callback data: the number a customer would notice.

Faults, each a share of requests, settable for all senders or one (`POST /sandbox/config`):
- `failure_rate`: 500 with Graph error 131000 before acceptance (nothing sent);
- `throttle_rate` and `rate_limit_per_s`: 429 with error 130429 (nothing sent);
- `lost_response_rate`: accepted (statuses follow), then the caller never gets the answer: the
  connection drops, or a gateway answers 504 without a Graph error;
- `timeout_rate`: accepted, then answered only after `hang_s`;
- `spam_limit_after`: after that many accepted messages, every send of the sender gets the
  spam rate limit (131048);
- status webhooks (`devtools.sandbox.whatsapp_webhooks`): delays, asynchronous failures, reads,
  duplicates, reordering and drops.

Deterministic behaviour for tests: a recipient number ending in 0000 is "not on WhatsApp"
(error 131026 at send time); one ending in 77 gets the pair-rate error 131056 on its first
`pair_rate_first_attempts` tries.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from aiohttp import web

from devtools.sandbox.whatsapp_store import MessageStore, wamid_of
from devtools.sandbox.whatsapp_webhooks import StatusPlan, WebhookDispatcher

UNDELIVERABLE_SUFFIX = "0000"
PAIR_RATE_SUFFIX = "77"
CALLBACK_DATA_MAX = 512


@dataclass
class WhatsAppSandboxConfig:
    latency_ms: float = 0.0
    failure_rate: float = 0.0  # share answered 500 (code 131000) before acceptance
    rate_limit_per_s: float = 0.0  # per phone number id; 0 means unlimited
    throttle_rate: float = 0.0  # share answered 429 (code 130429) regardless of the rate
    timeout_rate: float = 0.0  # share accepted, then answered only after `hang_s`
    hang_s: float = 30.0
    lost_response_rate: float = 0.0  # share accepted whose answer never reaches the caller
    access_token: str | None = None  # when set, any other bearer token gets 401 (code 190)
    # Numbers ending in 77 get WhatsApp's pair-rate error (131056) on their first N tries.
    pair_rate_first_attempts: int = 0
    # After this many accepted messages the sender gets the spam rate limit (131048) on every
    # send until it is changed; 0: never.
    spam_limit_after: int = 0
    # Status webhooks: mean delay of each step, later failures, reads, and how the pipeline
    # misbehaves (duplicates, reordering, drops; drop rate 1 = no status ever arrives).
    status_delay_ms: float = 200.0
    async_failure_rate: float = 0.0
    read_rate: float = 0.5
    webhook_drop_rate: float = 0.0
    duplicate_rate: float = 0.02
    reorder_rate: float = 0.05

    def status_plan(self) -> StatusPlan:
        return StatusPlan(
            delay_ms=self.status_delay_ms,
            async_failure_rate=self.async_failure_rate,
            read_rate=self.read_rate,
            drop_rate=self.webhook_drop_rate,
            duplicate_rate=self.duplicate_rate,
            reorder_rate=self.reorder_rate,
        )


@dataclass
class _Stats:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rate_limited: int = 0
    failed_injected: int = 0
    timeouts_injected: int = 0
    lost_responses: int = 0
    unauthorized: int = 0


def _accepted(to: str, message_id: str) -> dict[str, Any]:
    """The Cloud API's answer to an accepted message."""
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": message_id}],
    }


@dataclass
class WhatsAppSandbox:
    config: WhatsAppSandboxConfig = field(default_factory=WhatsAppSandboxConfig)
    seed: int | None = None
    webhook_url: str | None = None
    app_secret: str = "sandbox-app-secret"  # noqa: S105

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.store = MessageStore()
        self.webhooks = WebhookDispatcher(
            self.store, url=self.webhook_url, app_secret=self.app_secret, seed=self.seed
        )
        self.reset()

    def reset(self) -> None:
        self.stats = _Stats()
        self._overrides: dict[str, WhatsAppSandboxConfig] = {}
        self.store = MessageStore()
        self.webhooks.store = self.store
        self.webhooks.clear()
        self._per_sender: dict[str, int] = defaultdict(int)
        self._per_recipient: dict[tuple[str, str], int] = defaultdict(int)
        self._pair_attempts: dict[tuple[str, str], int] = defaultdict(int)
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._last_accept_at: dict[str, float] = {}
        self._accept_times: dict[str, list[float]] = defaultdict(list)
        self._inbound_ids = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/{sender}/messages", self._messages)
        app.router.add_get("/sandbox/whatsapp/senders/{sender}", self._sender_report)
        app.router.add_get("/sandbox/whatsapp/messages", self._messages_to)
        app.router.add_post("/sandbox/whatsapp/inbound", self._inbound)
        app.on_startup.append(self._start_webhooks)
        app.on_cleanup.append(self._stop_webhooks)

    async def _start_webhooks(self, app: web.Application) -> None:
        await self.webhooks.start()

    async def _stop_webhooks(self, app: web.Application) -> None:
        await self.webhooks.stop()

    def stats_json(self) -> dict[str, Any]:
        hooks = self.webhooks.stats
        return {
            **asdict(self.stats),
            "statuses": dict(hooks.statuses),
            "webhooks": {
                "url": self.webhooks.url,
                "posts": hooks.posts,
                "failed_posts": hooks.failed_posts,
                "retries": hooks.retries,
                "dropped": hooks.dropped,
                "gave_up": hooks.gave_up,
                "pending": self.webhooks.pending,
            },
        }

    def update_config(
        self, changes: dict[str, Any], *, sender: str | None = None
    ) -> WhatsAppSandboxConfig:
        """Change settings for every sender, or for one sender only (tests stay isolated)."""
        unknown = set(changes) - set(WhatsAppSandboxConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown whatsapp sandbox settings: {sorted(unknown)}")
        if sender is None:
            self.config = replace(self.config, **changes)
            return self.config
        base = self._overrides.get(sender, self.config)
        self._overrides[sender] = replace(base, **changes)
        return self._overrides[sender]

    def update_webhook(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Where status webhooks go and how they are signed (`url`, `app_secret`)."""
        unknown = set(changes) - {"url", "app_secret", "retry_for_s", "batch_max"}
        if unknown:
            raise ValueError(f"unknown webhook settings: {sorted(unknown)}")
        for name, value in changes.items():
            setattr(self.webhooks, name, value)
        return {"url": self.webhooks.url, "retry_for_s": self.webhooks.retry_for_s}

    def _config_for(self, sender: str) -> WhatsAppSandboxConfig:
        return self._overrides.get(sender, self.config)

    # -- the Cloud API endpoint -------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        sender = request.match_info["sender"]
        cfg = self._config_for(sender)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or (
            cfg.access_token is not None and auth.removeprefix("Bearer ") != cfg.access_token
        ):
            self.stats.unauthorized += 1
            return _error(401, 190, "Invalid OAuth access token.")
        raw = await request.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            self.stats.rejected += 1
            return _error(400, 100, "Invalid JSON body")
        if not isinstance(payload, dict):
            self.stats.rejected += 1
            return _error(400, 100, "(#100) Invalid parameter")
        to = str(payload.get("to", ""))
        callback = payload.get("biz_opaque_callback_data")
        if (
            payload.get("messaging_product") != "whatsapp"
            or not to.isdigit()
            or (callback is not None and not isinstance(callback, str))
        ):
            self.stats.rejected += 1
            return _error(400, 100, "(#100) Invalid parameter")
        if callback is not None and len(callback) > CALLBACK_DATA_MAX:
            self.stats.rejected += 1
            return _error(
                400, 100, "(#100) Param biz_opaque_callback_data must be at most 512 characters"
            )
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000.0)

        if cfg.rate_limit_per_s > 0 and not self._take_rate_slot(sender, cfg.rate_limit_per_s):
            self.stats.rate_limited += 1
            return _error(429, 130429, "Rate limit hit", retry_after="1")
        if cfg.throttle_rate > 0 and self._rng.random() < cfg.throttle_rate:
            self.stats.rate_limited += 1
            return _error(429, 130429, "Rate limit hit", retry_after="1")
        if cfg.failure_rate > 0 and self._rng.random() < cfg.failure_rate:
            self.stats.failed_injected += 1
            return _error(500, 131000, "Something went wrong")
        if cfg.pair_rate_first_attempts > 0 and to.endswith(PAIR_RATE_SUFFIX):
            self._pair_attempts[(sender, to)] += 1
            if self._pair_attempts[(sender, to)] <= cfg.pair_rate_first_attempts:
                self.stats.rate_limited += 1
                return _error(
                    400, 131056, "(Business account, Consumer account) pair rate limit hit"
                )
        if 0 < cfg.spam_limit_after <= self._per_sender[sender]:
            self.stats.rejected += 1
            return _error(
                400, 131048, "Spam rate limit hit: too many messages were blocked or flagged"
            )
        if to.endswith(UNDELIVERABLE_SUFFIX):
            self.stats.rejected += 1
            return _error(400, 131026, "Message undeliverable: receiver is not on WhatsApp")

        message_id = self._accept(sender, to, callback, raw, cfg)
        if cfg.lost_response_rate > 0 and self._rng.random() < cfg.lost_response_rate:
            # Accepted, and its statuses will come; the caller learns nothing. Half the time
            # the connection drops, half the time a gateway answers 504 without a Graph error.
            self.stats.lost_responses += 1
            if self._rng.random() < 0.5:
                if request.transport is not None:  # None: the caller is gone already
                    request.transport.close()
                raise asyncio.CancelledError
            return web.Response(
                status=504,
                text="<html><body>504 Gateway Time-out</body></html>",
                content_type="text/html",
            )
        if cfg.timeout_rate > 0 and self._rng.random() < cfg.timeout_rate:
            # Accepted, but the answer comes after the caller has given up waiting.
            self.stats.timeouts_injected += 1
            await asyncio.sleep(cfg.hang_s)
        return web.json_response(_accepted(to, message_id))

    def _accept(
        self,
        sender: str,
        to: str,
        callback: str | None,
        raw: bytes,
        cfg: WhatsAppSandboxConfig,
    ) -> str:
        number, duplicate = self.store.add(sender, to, callback, raw)
        if duplicate:
            self.stats.duplicates += 1
        self.stats.accepted += 1
        self._per_sender[sender] += 1
        self._per_recipient[(sender, to)] += 1
        now = time.time()
        self._last_accept_at[sender] = now
        self._accept_times[sender].append(now)
        self.webhooks.schedule(number, cfg.status_plan())
        return wamid_of(number)

    def _take_rate_slot(self, sender: str, limit_per_s: float) -> bool:
        window = self._windows[sender]
        now = time.monotonic()
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= limit_per_s:
            return False
        window.append(now)
        return True

    # -- control and inspection -------------------------------------------------------------

    async def _sender_report(self, request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        recipients = {to: n for (s, to), n in self._per_recipient.items() if s == sender}
        times = self._accept_times.get(sender, [])
        return web.json_response(
            {
                "sender": sender,
                "accepted": self._per_sender.get(sender, 0),
                "unique_recipients": len(recipients),
                "max_per_recipient": max(recipients.values(), default=0),
                "first_accept_at": times[0] if times else None,
                "last_accept_at": self._last_accept_at.get(sender),
                "accept_times": times if request.query.get("times") == "1" else None,
                # Status webhooks delivered (2xx) for this sender's messages, once per status.
                "statuses": self.webhooks.stats.sender_statuses(sender),
            }
        )

    async def _messages_to(self, request: web.Request) -> web.Response:
        """`?to=972531234567`: the send bodies accepted for that recipient, oldest first;
        `&sender=<phone number id>`: only that sender's. A test asking whether *its*
        broadcast reached a number needs the second: tests share one sandbox, and another
        test's broadcast may have sent to the same number from its own sender."""
        # "+972..." in a query string arrives as " 972..." unless the plus was escaped.
        to = request.query.get("to", "").strip().lstrip("+")
        sender = request.query.get("sender")
        numbers = self.store.numbers_to(to)
        if sender is not None:
            numbers = tuple(n for n in numbers if self.store.senders[n] == sender)
        bodies = [json.loads(self.store.bodies[n]) for n in numbers]
        return web.json_response({"messages": bodies})

    async def _inbound(self, request: web.Request) -> web.Response:
        """A user writes to a business number: `{"sender", "from", "text"}` becomes a
        `messages` webhook, as when a customer replies STOP."""
        body = await request.json()
        sender, sender_from, text = str(body["sender"]), str(body["from"]), str(body["text"])
        self._inbound_ids += 1
        self.webhooks.inbound(
            sender,
            {
                "from": sender_from,
                "id": f"wamid.sandbox.in.{self._inbound_ids}",
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": text},
            },
            {"profile": {"name": "Sandbox user"}, "wa_id": sender_from},
        )
        return web.json_response({"queued": True})


def _error(status: int, code: int, message: str, *, retry_after: str | None = None) -> web.Response:
    headers = {"Retry-After": retry_after} if retry_after else None
    return web.json_response(
        {
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "fbtrace_id": "sandbox",
            }
        },
        status=status,
        headers=headers,
    )
