"""Signed webhook delivery.

`POST <webhook_url>` with the JSON body and:
- `X-Longtasks-Signature: sha256=<hex HMAC-SHA256 of the raw body with the business's secret>`
- `X-Longtasks-Timestamp: <unix seconds>` (also inside the signed body as `sent_at`)
- `Idempotency-Key: {task_id}:notify-webhook`, the same on every retry.

Errors split like every adapter's: 408, 429, 5xx and network errors are retried (by Temporal,
with backoff); any other answer is a permanent refusal. Redirects are not followed. The URL is the
business's: every connection goes through `longtasks.outbound` (no internal addresses, checked
on the address actually connected to), and a URL that can only reach refused addresses is a
permanent refusal too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp

from longtasks.outbound import OutboundPolicy, read_capped

SIGNATURE_HEADER = "X-Longtasks-Signature"
TIMESTAMP_HEADER = "X-Longtasks-Timestamp"


class WebhookError(Exception):
    pass


class WebhookRetryable(WebhookError):
    pass


class WebhookRejected(WebhookError):
    pass


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does (and the tests): constant-time comparison."""
    return hmac.compare_digest(sign(secret, body), signature)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


async def post(
    url: str,
    *,
    secret: str,
    payload: dict[str, Any],
    idempotency_key: str,
    timeout_s: float,
    policy: OutboundPolicy,
) -> int:
    body = encode(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "longtasks-webhook/1",
        SIGNATURE_HEADER: sign(secret, body),
        TIMESTAMP_HEADER: str(int(time.time())),
        "Idempotency-Key": idempotency_key,
    }
    try:
        # A session per delivery: one notification per task is rare enough, nothing is left
        # open between deliveries, and the policy's evidence is this delivery's alone.
        async with (
            policy.session(timeout_s) as session,
            session.post(url, data=body, headers=headers, allow_redirects=False) as response,
        ):
            status = response.status
            # Drained up to a cap and dropped: the receiver's words stay out of our logs and
            # Temporal's history, and no receiver can make a worker read without end.
            await read_capped(response, 2048)
    except aiohttp.InvalidURL as exc:  # e.g. a non-canonical IPv4 spelling: never sendable
        raise WebhookRejected(f"not a valid URL: {exc}") from exc
    except (TimeoutError, aiohttp.ClientError) as exc:
        if policy.refused:
            raise WebhookRejected(
                f"{url} reaches only addresses that are not public ({', '.join(policy.refused)})"
            ) from exc
        raise WebhookRetryable(f"{type(exc).__name__}: {exc}") from exc
    if 200 <= status < 300:
        return status
    if status in (408, 429) or status >= 500:
        raise WebhookRetryable(f"the webhook answered HTTP {status}")
    raise WebhookRejected(f"the webhook answered HTTP {status}")
