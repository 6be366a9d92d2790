"""`/webhooks/whatsapp`: Meta's subscription handshake and its signed notifications.

No bearer token: Meta authenticates with the verify token (GET) and the body's signature (POST).
A POST is checked over its raw bytes before anything is parsed (bad or missing signature: 401,
nothing written); its statuses, up to 1,000 per statement, move the per-item delivery states
and the tasks' delivery counters (`db.repositories.deliveries`), idempotently and whatever
their order; a user's "STOP" (or "הסר") puts them on the business's suppression list.
A 2xx tells Meta to stop retrying, so it is answered only once all of that has committed; a
database outage answers 503 and Meta tries again later.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError

from api.deps import ResourcesDep
from api.errors import AppError, Forbidden, TooLarge, Unauthorized
from api.transactions import SignedTransactionsDep, Transactions
from longtasks.db.repositories import deliveries, suppressions
from longtasks.db.repositories.deliveries import ApplyResult
from longtasks.db.tenancy import acting_for
from longtasks.providers.whatsapp_webhooks import (
    MalformedWebhook,
    StatusUpdate,
    parse,
    signature_valid,
)

router = APIRouter(prefix="/webhooks/whatsapp", tags=["webhooks"])
log = logging.getLogger("longtasks.api.whatsapp_webhooks")

# Meta batches up to 1,000 updates per notification; larger lists go in statements of this size.
STATEMENT_BATCH = 1000
DEADLOCK = "40P01"
T = TypeVar("T")


class WebhookReceipt(BaseModel):
    statuses: int
    applied: int
    kept: int
    refused: int
    skipped: int
    opted_out: int


@router.get(
    "",
    # Only the 200 is text (the challenge); errors are JSON like every other answer.
    response_model=None,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "the challenge, echoed",
        }
    },
)
async def verify_subscription(
    resources: ResourcesDep,
    mode: Annotated[str | None, Query(alias="hub.mode", max_length=64)] = None,
    verify_token: Annotated[str | None, Query(alias="hub.verify_token", max_length=512)] = None,
    challenge: Annotated[str | None, Query(alias="hub.challenge", max_length=512)] = None,
) -> PlainTextResponse:
    """Meta's handshake when the callback URL is configured: echo `hub.challenge` if the verify
    token is ours; 403 otherwise."""
    expected = resources.settings.whatsapp_verify_token
    if (
        mode != "subscribe"
        or not verify_token
        or not challenge
        or not hmac.compare_digest(verify_token.encode(), expected.encode())
    ):
        raise Forbidden("verification failed")
    return PlainTextResponse(challenge)


@router.post("", response_model=WebhookReceipt)
async def receive_notification(
    request: Request, resources: ResourcesDep, transactions: SignedTransactionsDep
) -> WebhookReceipt:
    """Status updates and user messages from the WhatsApp Cloud API (signed by Meta)."""
    settings = resources.settings
    body = await _read_capped(request, settings.whatsapp_webhook_max_bytes)
    if not signature_valid(
        settings.whatsapp_app_secret, body, request.headers.get("X-Hub-Signature-256")
    ):
        raise Unauthorized("missing or invalid X-Hub-Signature-256")
    try:
        notification = parse(body)
    except MalformedWebhook as exc:
        raise AppError(str(exc), status_code=400) from exc

    statuses = notification.statuses
    # No token, so no business yet: each status is applied acting for its own business
    # (a named path tells which), so row-level security holds on this route too.
    async with transactions.read() as conn:
        owners = await deliveries.businesses_of_statuses(conn, statuses)
    by_business: dict[int, list[StatusUpdate]] = {}
    for status, business in zip(statuses, owners, strict=True):
        if business is not None:  # no business sends from its number: nothing of ours
            by_business.setdefault(business, []).append(status)
    applied = ApplyResult()
    for business, own in sorted(by_business.items()):
        with acting_for(business):
            applied = _sum(applied, await _apply(transactions, own))

    stops = [m for m in notification.inbound if m.is_stop]
    if stops:
        for number in sorted({m.phone_number_id for m in stops}):
            async with transactions.read() as conn:
                senders = await suppressions.businesses_of_sender(conn, number)
            for business in senders:
                pairs = [(business, m.sender) for m in stops if m.phone_number_id == number]
                with acting_for(business):
                    async with transactions.write() as conn:
                        await suppressions.add(
                            conn, pairs, reason=suppressions.OPTED_OUT, source="reply: STOP"
                        )
    if applied.refused:
        log.warning("%d status(es) named items of another sender number: refused", applied.refused)
    return WebhookReceipt(
        statuses=len(statuses),
        applied=applied.matched,
        kept=applied.kept,
        refused=applied.refused,
        skipped=notification.skipped,
        opted_out=len(stops),
    )


async def _apply(transactions: Transactions, statuses: list[StatusUpdate]) -> ApplyResult:
    """One business's statuses, a statement per transaction."""
    applied = ApplyResult()
    for start in range(0, len(statuses), STATEMENT_BATCH):
        chunk = statuses[start : start + STATEMENT_BATCH]

        async def apply(chunk: list[StatusUpdate] = chunk) -> ApplyResult:
            async with transactions.write() as conn:
                return await deliveries.apply_statuses(conn, chunk)

        applied = _sum(applied, await _retrying_deadlocks(apply))
    # Statuses without our key wait in the inbox for their wamid. Their send may have been
    # recorded while this request ran: look again now that the inbox rows are committed.
    unkeyed = [s.wamid for s in statuses if s.task_id is None]
    if applied.kept and unkeyed:

        async def drain() -> ApplyResult:
            async with transactions.write() as conn:
                return await deliveries.drain_inbox(conn, unkeyed)

        await _retrying_deadlocks(drain)
    return applied


def _sum(a: ApplyResult, b: ApplyResult) -> ApplyResult:
    return ApplyResult(
        matched=a.matched + b.matched,
        changed=a.changed + b.changed,
        kept=a.kept + b.kept,
        refused=a.refused + b.refused,
        tasks=a.tasks + b.tasks,
    )


async def _read_capped(request: Request, max_bytes: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise TooLarge(f"notification over {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"notification over {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _retrying_deadlocks(work: Callable[[], Awaitable[T]], attempts: int = 4) -> T:
    """Concurrent notifications touching the same tasks can deadlock on the task rows in rare
    orders; Postgres aborts one, which is simply run again."""
    for attempt in range(attempts):
        try:
            return await work()
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != DEADLOCK or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")
