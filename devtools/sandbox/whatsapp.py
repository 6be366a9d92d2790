"""A sandbox WhatsApp Cloud API: same HTTP shape, with latency, failures and a rate limit.

Honours `Idempotency-Key` the way a provider with idempotency keys does: a key already accepted
is answered with the original response and delivers nothing again (counted as `replayed`). With
`idempotency=False` it behaves like the real Cloud API, which has no idempotency keys: the repeat
is delivered again and counted in `duplicates`, which makes the send path's window measurable.

Deterministic behaviour for tests: a recipient number ending in 0000 is "not on WhatsApp"
(error 131026, a permanent per-item failure).
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

UNDELIVERABLE_SUFFIX = "0000"
PAIR_RATE_SUFFIX = "77"


@dataclass
class WhatsAppSandboxConfig:
    latency_ms: float = 0.0
    failure_rate: float = 0.0  # share of requests answered 500 (code 131000) before delivery
    rate_limit_per_s: float = 0.0  # per phone number id; 0 means unlimited
    throttle_rate: float = 0.0  # share answered 429 (code 130429) regardless of the rate
    timeout_rate: float = 0.0  # share delivered, then answered only after `hang_s`
    hang_s: float = 30.0
    idempotency: bool = True
    access_token: str | None = None  # when set, any other bearer token gets 401 (code 190)
    # Numbers ending in 77 get WhatsApp's pair-rate error (131056) on their first N tries.
    pair_rate_first_attempts: int = 0


@dataclass
class _Stats:
    accepted: int = 0
    duplicates: int = 0
    replayed: int = 0
    rejected: int = 0
    rate_limited: int = 0
    failed_injected: int = 0
    timeouts_injected: int = 0
    unauthorized: int = 0


@dataclass
class _Delivery:
    key: str | None
    sender: str
    to: str
    at: float


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

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.reset()

    def reset(self) -> None:
        self.stats = _Stats()
        self._overrides: dict[str, WhatsAppSandboxConfig] = {}
        # Idempotency key -> (recipient, message id): the answer to replay, kept as a tuple of
        # strings rather than the JSON body's nested dicts. Hundreds of thousands of bodies
        # made Python's full garbage collections pause this server for 200-300 ms, stalls a
        # real provider would not add to our measurements.
        self._responses: dict[str, tuple[str, str]] = {}
        self._delivered_keys: set[str] = set()
        self._per_sender: dict[str, int] = defaultdict(int)
        self._per_recipient: dict[tuple[str, str], int] = defaultdict(int)
        self._pair_attempts: dict[tuple[str, str], int] = defaultdict(int)
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._last_accept_at: dict[str, float] = {}
        self._accept_times: dict[str, list[float]] = defaultdict(list)
        # Every accepted send body as received, and recipient -> the numbers of its bodies,
        # oldest first: an int for one (the usual case), a tuple for more. Ints, bytes and
        # tuples of ints are not tracked by the garbage collector, so a million of them add
        # nothing to its passes (see `_responses`).
        self._bodies: list[bytes] = []
        self._bodies_to: dict[str, int | tuple[int, ...]] = {}
        self._next_id = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/{sender}/messages", self._messages)
        app.router.add_get("/sandbox/whatsapp/senders/{sender}", self._sender_report)
        app.router.add_get("/sandbox/whatsapp/messages", self._messages_to)

    def stats_json(self) -> dict[str, Any]:
        return asdict(self.stats)

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

    def _config_for(self, sender: str) -> WhatsAppSandboxConfig:
        return self._overrides.get(sender, self.config)

    # -- the Cloud API endpoint -------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        cfg = self._config_for(sender)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or (
            cfg.access_token is not None and auth.removeprefix("Bearer ") != cfg.access_token
        ):
            self.stats.unauthorized += 1
            return _error(401, 190, "Invalid OAuth access token.")
        try:
            payload = await request.json()
        except ValueError:
            self.stats.rejected += 1
            return _error(400, 100, "Invalid JSON body")
        to = str(payload.get("to", ""))
        if payload.get("messaging_product") != "whatsapp" or not to.isdigit():
            self.stats.rejected += 1
            return _error(400, 100, "(#100) Invalid parameter")
        if cfg.latency_ms > 0:
            await asyncio.sleep(cfg.latency_ms / 1000.0)

        key = request.headers.get("Idempotency-Key")
        if key is not None and cfg.idempotency and key in self._responses:
            self.stats.replayed += 1
            return web.json_response(_accepted(*self._responses[key]))

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
        if to.endswith(UNDELIVERABLE_SUFFIX):
            self.stats.rejected += 1
            return _error(400, 131026, "Message undeliverable: receiver is not on WhatsApp")

        self._keep_body(to, await request.read())
        body = self._deliver(key, sender, to)
        if cfg.timeout_rate > 0 and self._rng.random() < cfg.timeout_rate:
            # Delivered, but the answer is lost to the caller's timeout: the case that only an
            # idempotency key (or the ledger's unconfirmed state) can make safe.
            self.stats.timeouts_injected += 1
            await asyncio.sleep(cfg.hang_s)
        return web.json_response(body)

    def _deliver(self, key: str | None, sender: str, to: str) -> dict[str, Any]:
        if key is not None and key in self._delivered_keys:
            self.stats.duplicates += 1
        self.stats.accepted += 1
        self._per_sender[sender] += 1
        self._per_recipient[(sender, to)] += 1
        now = time.time()
        self._last_accept_at[sender] = now
        self._accept_times[sender].append(now)
        self._next_id += 1
        message_id = f"wamid.sandbox.{self._next_id}"
        if key is not None:
            self._delivered_keys.add(key)
            self._responses[key] = (to, message_id)
        return _accepted(to, message_id)

    def _take_rate_slot(self, sender: str, limit_per_s: float) -> bool:
        window = self._windows[sender]
        now = time.monotonic()
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= limit_per_s:
            return False
        window.append(now)
        return True

    def _keep_body(self, to: str, body: bytes) -> None:
        number = len(self._bodies)
        self._bodies.append(body)
        earlier = self._bodies_to.get(to)
        if earlier is None:
            self._bodies_to[to] = number
        elif isinstance(earlier, int):
            self._bodies_to[to] = (earlier, number)
        else:
            self._bodies_to[to] = (*earlier, number)

    async def _messages_to(self, request: web.Request) -> web.Response:
        """`?to=972531234567`: the send bodies accepted for that recipient, oldest first."""
        # "+972..." in a query string arrives as " 972..." unless the plus was escaped.
        found = self._bodies_to.get(request.query.get("to", "").strip().lstrip("+"), ())
        numbers = (found,) if isinstance(found, int) else found
        return web.json_response({"messages": [json.loads(self._bodies[n]) for n in numbers]})

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
            }
        )


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
