"""Broadcast activities: count the recipients, then send one page of them."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.pacing import SenderPacer
from activities.pages import (
    Breaker,
    ItemNotConfirmed,
    PageItem,
    PageRun,
    PageTuning,
    StopTask,
)
from activities.send_cap import DailyCapShare
from longtasks.audiences import template_params
from longtasks.audiences.template_params import MISSING_PARAM, MissingValue, Personalizer
from longtasks.contracts import activities as act
from longtasks.contracts.tasks import PageRequest, PageResult, TaskPlan
from longtasks.db.repositories import audiences as audience_repo
from longtasks.db.repositories import broadcasts as broadcast_repo
from longtasks.db.repositories.broadcasts import BroadcastForSend, MessageSpec, RecipientRow
from longtasks.db.repositories.ledger import Claim, Outcome
from longtasks.db.repositories.pacing import reserve_daily_budget
from longtasks.domain import ItemStatus
from longtasks.providers.whatsapp import (
    Message,
    TemplateMessage,
    TextMessage,
    WhatsAppAuthError,
    WhatsAppRejected,
    WhatsAppRetryable,
    WhatsAppSender,
)


@dataclass(frozen=True)
class BroadcastTuning:
    pages: PageTuning
    send_concurrency: int = 64
    # Sender throughput when the business sets none (0: unpaced).
    default_messages_per_s: float = 0.0
    # In-activity retries of one item before the page is handed back to Temporal's retry.
    item_attempts: int = 5
    item_backoff_s: float = 0.2
    item_backoff_max_s: float = 5.0
    # WhatsApp's pair rate limit (131056) asks for seconds between messages to one user.
    per_recipient_backoff_s: float = 2.0


# Failures the provider never saw: the circuit breaker does not count them.
NOT_SENT_CODES = frozenset({"invalid_phone", "opted_out", "marketing_limit"})


def provider_answer(outcome: Outcome) -> bool | None:
    """What an outcome tells the circuit breaker: a failed send, a good one, or nothing."""
    if outcome.status == ItemStatus.succeeded:
        return False
    if outcome.status == ItemStatus.failed and outcome.error_code not in NOT_SENT_CODES:
        return True
    return None


def breaker_for(broadcast: BroadcastForSend) -> Breaker | None:
    share = broadcast.auto_pause_failure_share
    if share is None:
        return None
    return Breaker(share=share, window=broadcast.auto_pause_window, answer=provider_answer)


def idempotency_key(task_id: int, recipient_id: int) -> str:
    return f"{task_id}:{recipient_id}"


def to_message(spec: MessageSpec) -> Message:
    if spec.text is not None:
        return TextMessage(body=spec.text)
    assert spec.template_name is not None
    assert spec.template_language is not None
    return TemplateMessage(
        name=spec.template_name,
        language=spec.template_language,
        params=tuple(
            p for p in template_params.from_json(spec.template_params) if isinstance(p, str)
        ),
    )


async def audience_page(
    conn: AsyncConnection, broadcast: BroadcastForSend, after_seq: int, up_to_seq: int
) -> tuple[list[RecipientRow], Personalizer | None]:
    """A page of an audience's members as recipients, and how to fill each one's template
    parameters from its row (None when the message is the same for all)."""
    assert broadcast.audience_id is not None
    audience = await audience_repo.get(conn, broadcast.audience_id, broadcast.business_id)
    if audience is None:
        raise ApplicationError("the audience is gone", type="NotFound", non_retryable=True)
    if broadcast.own_list:  # a retry: some members, listed with their seqs
        recipients = await broadcast_repo.members_of_list_page(
            conn, broadcast.broadcast_id, audience.id, after_seq=after_seq, up_to_seq=up_to_seq
        )
    else:
        members = await audience_repo.members_page(
            conn, audience.id, after_seq=after_seq, up_to_seq=up_to_seq
        )
        recipients = [RecipientRow(m.seq, m.seq, m.phone, None, m.line, m.vars) for m in members]
    spec = broadcast.message
    if spec.template_name is None:
        return recipients, None
    personalizer = Personalizer.for_audience(
        template_params.from_json(spec.template_params), audience.variables
    )
    return recipients, personalizer if personalizer.personal else None


class BroadcastActivities:
    def __init__(
        self,
        engine: AsyncEngine,
        sender: WhatsAppSender,
        tuning: BroadcastTuning,
        pacer: SenderPacer,
    ) -> None:
        self._engine = engine
        self._sender = sender
        self._tuning = tuning
        self._pacer = pacer
        # One bound for the whole worker: pages of many tasks share the provider connections.
        self._concurrency = asyncio.Semaphore(tuning.send_concurrency)

    @activity.defn(name=act.BROADCAST_BEGIN.name)
    async def begin(self, task_id: int) -> TaskPlan:
        async with self._engine.connect() as conn:
            broadcast = await broadcast_repo.get_for_task(conn, task_id)
            if broadcast is None:
                raise ApplicationError(
                    f"task {task_id} has no broadcast", type="NotFound", non_retryable=True
                )
            if not broadcast.sender_id:
                raise ApplicationError(
                    "the business has no WhatsApp phone number id configured",
                    type="NoSender",
                    non_retryable=True,
                )
            total = await broadcast_repo.recipient_count(conn, broadcast.broadcast_id)
        return self._tuning.pages.plan(total)

    @activity.defn(name=act.BROADCAST_SEND_PAGE.name)
    async def send_page(self, request: PageRequest) -> PageResult:
        async with self._engine.connect() as conn:
            broadcast = await broadcast_repo.get_for_task(conn, request.task_id)
            if broadcast is None:
                raise ApplicationError("broadcast is gone", type="NotFound", non_retryable=True)
            personalizer: Personalizer | None = None
            if broadcast.audience_id is not None:
                recipients, personalizer = await audience_page(
                    conn, broadcast, request.after_seq, request.up_to_seq
                )
            else:
                recipients = await broadcast_repo.recipients_page(
                    conn,
                    broadcast.broadcast_id,
                    after_seq=request.after_seq,
                    up_to_seq=request.up_to_seq,
                )
        message = to_message(broadcast.message)
        sender_id = broadcast.sender_id or ""
        cap: DailyCapShare | None = None
        if broadcast.daily_send_cap is not None:
            # The business's own cap first: a recipient it leaves out costs no tier budget.
            cap, recipients = await DailyCapShare.reserve(
                self._engine,
                business_id=broadcast.business_id,
                cap=broadcast.daily_send_cap,
                task_id=request.task_id,
                after_seq=request.after_seq,
                up_to_seq=request.up_to_seq,
                recipients=recipients,
            )
        deferred_until: float | None = None
        if broadcast.daily_limit is not None:
            valid = [r.phone for r in recipients if r.invalid_reason is None]
            async with self._engine.begin() as conn:
                budget = await reserve_daily_budget(conn, sender_id, valid, broadcast.daily_limit)
            recipients = [
                r for r in recipients if r.invalid_reason is not None or r.phone in budget.allowed
            ]
            deferred_until = budget.retry_at
        tuning = self._tuning
        messages_per_s = broadcast.messages_per_s
        if messages_per_s is None:
            messages_per_s = tuning.default_messages_per_s

        async def send_one(item: PageItem[RecipientRow], claim: Claim) -> Outcome:
            recipient = item.payload
            if recipient.invalid_reason is not None:
                return Outcome(
                    item.key, ItemStatus.failed, "invalid_phone", recipient.invalid_reason
                )
            key = idempotency_key(request.task_id, recipient.id)
            personal = message
            if personalizer is not None:
                assert isinstance(message, TemplateMessage)
                try:
                    params = personalizer.resolve(recipient.vars or [], recipient.line or 0)
                except MissingValue as exc:
                    return Outcome(item.key, ItemStatus.failed, MISSING_PARAM, str(exc))
                personal = TemplateMessage(message.name, message.language, params)
            if cap is not None:
                cap.note_sent(item.key)
            delay = tuning.item_backoff_s
            last: WhatsAppRetryable | None = None
            for attempt in range(tuning.item_attempts):
                await self._pacer.wait_turn(sender_id, messages_per_s)
                try:
                    sent = await self._sender.send(
                        sender_id=sender_id,
                        to=recipient.phone,
                        message=personal,
                        idempotency_key=key,
                    )
                except WhatsAppRejected as exc:
                    return Outcome(item.key, ItemStatus.failed, exc.code, exc.message)
                except WhatsAppAuthError as exc:
                    raise StopTask("whatsapp_auth", f"WhatsApp refused the token: {exc}") from exc
                except WhatsAppRetryable as exc:
                    last = exc
                    wait = exc.retry_after_s if exc.retry_after_s is not None else delay
                    if exc.per_recipient:
                        # Pair-rate or spam throttle: this recipient needs seconds of quiet;
                        # only this item waits, the rest of the page keeps sending.
                        wait = max(wait, tuning.per_recipient_backoff_s * 2**attempt)
                    await asyncio.sleep(wait * (0.5 + random.random()))
                    delay = min(delay * 2, tuning.item_backoff_max_s)
                    continue
                return Outcome(item.key, ItemStatus.succeeded, provider_ref=sent.message_id)
            assert last is not None
            raise ItemNotConfirmed(last.code, last.message)

        items = [PageItem(key=str(r.id), seq=r.seq, label=r.phone, payload=r) for r in recipients]
        page = PageRun(
            self._engine,
            request.task_id,
            items,
            send_one,
            tuning.pages,
            self._concurrency,
            breaker=breaker_for(broadcast),
        )
        try:
            result = await page.run()
        finally:
            if cap is not None:
                await cap.give_back_unsent(self._engine)
        if cap is not None and cap.deferred_until is not None:
            result.deferred_until = max(cap.deferred_until, deferred_until or 0.0)
            result.deferred_reason = cap.reason
            result.deferred_by_cap = True
        elif deferred_until is not None:
            result.deferred_until = deferred_until
            result.deferred_reason = (
                f"WhatsApp daily messaging limit reached ({broadcast.daily_limit:,} unique"
                " recipients per 24 hours)"
            )
        return result
