"""ASGI middleware: request body size limit (413) and per-token rate limiting (429)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(Exception):
    pass


async def send_json(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Refuse bodies over `max_bytes`, by Content-Length or while streaming (chunked).

    `path_limits` sets another cap for a path whose handler streams its body instead of
    reading it whole (the CSV upload), so the cap is about storage, not the API's memory.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, path_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.path_limits = path_limits or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.path_limits.get(scope.get("path", ""), self.max_bytes)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
                await send_json(send, 413, f"request body over {max_bytes} bytes")
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await send_json(send, 413, f"request body over {max_bytes} bytes")


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimit:
    """A token bucket per bearer token (per client address when there is none)."""

    def __init__(self, app: ASGIApp, rate_per_s: float, burst: int) -> None:
        self.app = app
        self.rate = rate_per_s
        self.burst = burst
        self.buckets: dict[str, _Bucket] = {}

    def _key(self, scope: Scope) -> str:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                return hashlib.sha256(value).hexdigest()[:32]
        query = scope.get("query_string", b"")
        if b"access_token=" in query:
            return hashlib.sha256(query).hexdigest()[:32]
        client = scope.get("client")
        return f"ip:{client[0] if client else '?'}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or self.rate <= 0 or not path.startswith("/api/"):
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        key = self._key(scope)
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) > 100_000:  # bounded memory under a flood of tokens
                self.buckets.clear()
            bucket = self.buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1:
            retry_after = max(1, int((1 - bucket.tokens) / self.rate + 0.999))
            await send_json(
                send,
                429,
                "rate limit exceeded for this token",
                [(b"retry-after", str(retry_after).encode())],
            )
            return
        bucket.tokens -= 1
        await self.app(scope, receive, send)
