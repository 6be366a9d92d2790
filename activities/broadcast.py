"""Broadcast activities: count the recipients, send one page of them, settle unconfirmed sends.

A send carries the item's key as `biz_opaque_callback_data` and is preceded by a committed
dispatch mark (`activities.dispatch`): the WhatsApp Cloud API has no idempotency key, so an
item whose request may have left is never sent again blindly. Its fate is settled by a status
webhook carrying its key, or by the broadcast's policy once the webhook pipeline has proven
healthy and the grace period has passed (`resolve_unconfirmed`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.dispatch import DispatchLog
from activities.pacing import SenderPacer
from activities.pages import (
    Breaker,
    ItemNotConfirmed,
    PageItem,
    PageRun,
    PageTuning,
    PauseSending,
    StopTask,
)
from activities.send_cap import DailyCapShare
from longtasks.audiences import template_params
from longtasks.audiences.template_params import MISSING_PARAM, MissingValue, Personalizer
from longtasks.contracts import activities as act
from longtasks.contracts.broadcasts import UnconfirmedCheck, UnconfirmedReview
from longtasks.contracts.messages import callback_data_for
from longtasks.contracts.tasks import PageRequest, PageResult, TaskPlan
from longtasks.db.repositories import audiences as audience_repo
from longtasks.db.repositories import broadcasts as broadcast_repo
from longtasks.db.repositories import deliveries, suppressions, unconfirmed
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.broadcasts import BroadcastForSend, MessageSpec, RecipientRow
from longtasks.db.repositories.ledger import Claim, DeliveryCounts, Outcome
from longtasks.db.repositories.pacing import reserve_daily_budget
from longtasks.domain import Delivery, ItemStatus, UnconfirmedPolicy
from longtasks.providers.whatsapp import (
    Message,
    TemplateMessage,
    TextMessage,
    WhatsAppAmbiguous,
    WhatsAppAuthError,
    WhatsAppPaused,
    WhatsAppRejected,
    WhatsAppRetryable,
    WhatsAppSender,
)
from longtasks.providers.whatsapp_errors import MARKETING_LIMIT_HOLD_S, ErrorClass


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
    # Unconfirmed sends: the grace after a proven-healthy pipeline, and the longest wait.
    unconfirmed_grace_s: float = 900.0
    unconfirmed_max_wait_s: float = 7 * 24 * 3600.0


# When a look leaves items a status has already spoken for (it arrived mid-look): look again
# this soon (the workflow adds its half second).
SETTLE_AGAIN_S = 0.01


# Failures the provider never saw: the circuit breaker does not count them.
NOT_SENT_CODES = frozenset({"invalid_phone", "opted_out", "marketing_limit", MISSING_PARAM})


def provider_answer(outcome: Outcome) -> bool | None:
    """What an outcome tells the circuit breaker: a failed send, a good one, or nothing (an
    unconfirmed send is not an answer: its status webhook will tell)."""
    if outcome.status == ItemStatus.succeeded:
        return False
    if outcome.status == ItemStatus.failed and outcome.error_code not in NOT_SENT_CODES:
        return True
    return None


def _failed(key: str, code: str, message: str) -> Outcome:
    return Outcome(key, ItemStatus.failed, code, message, delivery=Delivery.failed)


def breaker_for(broadcast: BroadcastForSend) -> Breaker | None:
    share = broadcast.auto_pause_failure_share
    if share is None:
        return None
    return Breaker(share=share, window=broadcast.auto_pause_window, answer=provider_answer)


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
        # One writer of dispatch marks for the whole worker, batching across pages and tasks.
        self._dispatch = DispatchLog(engine)

    @activity.defn(name=act.BROADCAST_BEGIN.name)
    async def begin(self, task_id: int) -> TaskPlan:
        async with self._engine.begin() as conn:
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
            await broadcast_repo.record_sender(conn, broadcast.broadcast_id, broadcast.sender_id)
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
            # The business's suppression list now (opt-outs, 131049 holds), whichever list.
            barred = await suppressions.active_for(
                conn, broadcast.business_id, [r.phone for r in recipients]
            )
        if barred:
            recipients = [
                replace(r, suppressed=barred[r.phone]) if r.phone in barred else r
                for r in recipients
            ]
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
            valid = [
                r.phone for r in recipients if r.invalid_reason is None and r.suppressed is None
            ]
            async with self._engine.begin() as conn:
                budget = await reserve_daily_budget(conn, sender_id, valid, broadcast.daily_limit)
            recipients = [
                r
                for r in recipients
                if r.invalid_reason is not None
                or r.suppressed is not None
                or r.phone in budget.allowed
            ]
            deferred_until = budget.retry_at
        tuning = self._tuning
        messages_per_s = broadcast.messages_per_s
        if messages_per_s is None:
            messages_per_s = tuning.default_messages_per_s

        business_id = broadcast.business_id
        dispatch = self._dispatch
        task_id = request.task_id
        # This attempt's name on the dispatch marks it makes.
        token = uuid.uuid4().hex

        async def send_one(item: PageItem[RecipientRow], claim: Claim) -> Outcome:
            recipient = item.payload
            if recipient.invalid_reason is not None:
                return _failed(item.key, "invalid_phone", recipient.invalid_reason)
            if claim.dispatched:
                # An earlier attempt may have sent it; only a status webhook can tell. (Before
                # the suppression list: that attempt's own opt-out news must not hide a send.)
                return Outcome(
                    item.key,
                    ItemStatus.unconfirmed,
                    "no_answer",
                    "an earlier attempt sent it and got no answer",
                )
            if recipient.suppressed is not None:
                why = {
                    suppressions.OPTED_OUT: "the recipient opted out of this business's messages",
                    suppressions.MARKETING_LIMIT: "WhatsApp's marketing limit (131049) was hit"
                    " for this recipient less than 24 hours ago",
                }.get(recipient.suppressed, recipient.suppressed)
                return _failed(item.key, recipient.suppressed, f"not sent: {why}")
            personal = message
            if personalizer is not None:
                assert isinstance(message, TemplateMessage)
                try:
                    params = personalizer.resolve(recipient.vars or [], recipient.line or 0)
                except MissingValue as exc:
                    return _failed(item.key, MISSING_PARAM, str(exc))
                personal = TemplateMessage(message.name, message.language, params)
            if cap is not None:
                cap.note_sent(item.key)
            callback = callback_data_for(task_id, item.key)
            delay = tuning.item_backoff_s
            last: Exception | None = None
            for attempt in range(tuning.item_attempts):
                try:
                    mine = await self._pacer.wait_turn(
                        sender_id, messages_per_s, lambda: dispatch.mark(task_id, item.key, token)
                    )
                except Exception as exc:  # the database is away: nothing was sent
                    last = exc
                    await asyncio.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, tuning.item_backoff_max_s)
                    continue
                if not mine:
                    return Outcome(
                        item.key,
                        ItemStatus.unconfirmed,
                        "no_answer",
                        "another attempt is sending it",
                    )
                try:
                    sent = await self._sender.send(
                        sender_id=sender_id,
                        to=recipient.phone,
                        message=personal,
                        callback_data=callback,
                    )
                except WhatsAppAmbiguous as exc:
                    return Outcome(item.key, ItemStatus.unconfirmed, exc.code, exc.message)
                except WhatsAppRejected as exc:
                    await self._remember_refusal(business_id, recipient.phone, exc.error_class)
                    return _failed(item.key, exc.code, exc.message)
                except WhatsAppAuthError as exc:
                    await dispatch.unmark(task_id, item.key, token)
                    raise StopTask("whatsapp_auth", f"WhatsApp refused the token: {exc}") from exc
                except WhatsAppPaused as exc:
                    await dispatch.unmark(task_id, item.key, token)
                    raise PauseSending(exc.code, exc.message) from exc
                except WhatsAppRetryable as exc:
                    # Not taken: sending it again is safe.
                    await dispatch.unmark(task_id, item.key, token)
                    last = exc
                    wait = exc.retry_after_s if exc.retry_after_s is not None else delay
                    if exc.per_sender:
                        # The number's throughput is used up: the whole sender pauses.
                        self._pacer.back_off(sender_id)
                    if exc.per_recipient:
                        # Pair-rate throttle: this recipient needs seconds of quiet; only this
                        # item waits, the rest of the page keeps sending.
                        wait = max(wait, tuning.per_recipient_backoff_s * 2**attempt)
                    await asyncio.sleep(wait * (0.5 + random.random()))
                    delay = min(delay * 2, tuning.item_backoff_max_s)
                    continue
                self._pacer.note_sent(sender_id)
                return Outcome(
                    item.key,
                    ItemStatus.succeeded,
                    provider_ref=sent.message_id,
                    delivery=Delivery.accepted,
                )
            assert last is not None
            code = last.code if isinstance(last, WhatsAppRetryable) else "database"
            raise ItemNotConfirmed(code, str(last))

        async def apply_early_statuses(conn: AsyncConnection, batch: Sequence[Outcome]) -> None:
            wamids = [o.provider_ref for o in batch if o.provider_ref]
            await deliveries.drain_inbox(conn, wamids)

        items = [PageItem(key=str(r.id), seq=r.seq, label=r.phone, payload=r) for r in recipients]
        page = PageRun(
            self._engine,
            request.task_id,
            items,
            send_one,
            tuning.pages,
            self._concurrency,
            breaker=breaker_for(broadcast),
            after_settle=apply_early_statuses,
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

    async def _remember_refusal(self, business_id: int, phone: str, error: ErrorClass) -> None:
        """An opt-out (131050) is forever; the marketing limit (131049) holds a day."""
        if error is ErrorClass.opted_out:
            reason, expires = suppressions.OPTED_OUT, None
        elif error is ErrorClass.marketing_limit:
            reason = suppressions.MARKETING_LIMIT
            expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=MARKETING_LIMIT_HOLD_S)
        else:
            return
        async with self._engine.begin() as conn:
            await suppressions.add(
                conn, [(business_id, phone)], reason=reason, source="send", expires_at=expires
            )

    @activity.defn(name=act.BROADCAST_RESOLVE_UNCONFIRMED.name)
    async def resolve_unconfirmed(self, check: UnconfirmedCheck) -> UnconfirmedReview:
        """Settle what the status webhooks have told, apply the policy to what waited long
        enough, and say when to look again."""
        tuning = self._tuning
        async with self._engine.begin() as conn:
            broadcast = await broadcast_repo.get_for_task(conn, check.task_id)
            if broadcast is None:
                raise ApplicationError("broadcast is gone", type="NotFound", non_retryable=True)
            sender_id = broadcast.sender_id or ""
            known, decided = await unconfirmed.settle_and_decide(
                conn,
                check.task_id,
                sender_id=sender_id,
                policy=broadcast.unconfirmed_policy,
                grace_s=tuning.unconfirmed_grace_s,
                max_wait_s=tuning.unconfirmed_max_wait_s,
            )
            rearmed = len(decided.rearmed_seqs)
            succeeded = known.from_unconfirmed + known.from_failed
            failed = decided.failed - known.from_failed
            await task_repo.add_counts(
                conn,
                check.task_id,
                succeeded=succeeded,
                failed=failed,
                unconfirmed=-(known.from_unconfirmed + decided.failed + rearmed),
                resent=rearmed,
                delivery=DeliveryCounts(failed=decided.failed),
            )
            outlook = await unconfirmed.outlook(
                conn,
                check.task_id,
                sender_id=sender_id,
                grace_s=tuning.unconfirmed_grace_s,
                max_wait_s=tuning.unconfirmed_max_wait_s,
            )
            reason = None
            if outlook.remaining:
                reason = _waiting_reason(
                    outlook.remaining,
                    broadcast.unconfirmed_policy,
                    outlook.decides_at,
                    proven=outlook.pipeline_proven,
                )
            await task_repo.set_status_reason(conn, check.task_id, reason)
        pages = sorted({(seq - 1) // check.page_size for seq in decided.rearmed_seqs})
        now = dt.datetime.now(dt.UTC)
        until_decision = (
            (outlook.decides_at - now).total_seconds() if outlook.decides_at is not None else 0.0
        )
        if outlook.settle_now:
            # Statuses came for some while this look ran: the next look settles them.
            until_decision = SETTLE_AGAIN_S
        return UnconfirmedReview(
            succeeded=succeeded,
            failed=failed,
            rearmed=rearmed,
            rearmed_pages=pages,
            remaining=outlook.remaining,
            decides_in_s=max(0.0, until_decision),
        )


def _waiting_reason(
    remaining: int, policy: UnconfirmedPolicy, decides_at: dt.datetime | None, *, proven: bool
) -> str:
    verb = "counted failed" if policy is UnconfirmedPolicy.at_most_once else "re-sent"
    when = f"{decides_at:%Y-%m-%d %H:%M:%S} UTC" if decides_at is not None else "later"
    pipeline = (
        "the status webhooks of later sends have arrived"
        if proven
        else "no status of a later send has arrived yet"
    )
    return (
        f"{remaining:,} send(s) unconfirmed (no answer from WhatsApp): waiting for their status"
        f" webhooks; {pipeline}; unless a status comes, they are {verb} ({policy.value})"
        f" from {when}"
    )
