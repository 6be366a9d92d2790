"""The shared page engine: claim a page of items, act on each, settle outcomes in micro-batches.

The order that makes "never lose, never double" hold:
1. Claim every item of the page (`sending`) and commit, before any side effect.
2. Act on claimed items with bounded concurrency. A first-attempt item is only started while no
   cancel is requested; an item claimed by an earlier attempt is always acted on again, since
   that attempt may already have performed it: idempotent actions simply repeat, and actions
   that must not repeat (a WhatsApp send) see the earlier attempt's dispatch mark
   (`activities.dispatch`) and report the item `unconfirmed` instead.
3. Every `flush_interval_s` settle what finished, in one transaction with the counter increment
   and the NOTIFY; count only rows that moved from `sending` (or `unconfirmed`), so retries
   never count twice.
4. At the end, release first-attempt claims that were never started (cancelled mid-page), and
   items the provider refused to take while asking the sender to stop.

Cancellation is seen two ways: a poll of the task's `cancel_requested` flag (fast: the REST
cancel sets it before signalling), and Temporal's own activity cancellation through heartbeats.
Either way, in-flight items finish and are settled before the activity returns. A pause (the
`pause_requested` flag, polled with it) stops the page the same way, and the page says so
(`stopped_by_pause`), so the workflow runs it again after the resume. The provider can ask for
that pause too (`PauseSending`, e.g. WhatsApp's spam limit): the page raises the flag itself,
with the reason, as the circuit breaker does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from longtasks.contracts.tasks import PageResult, TaskPlan
from longtasks.db.repositories import ledger
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.ledger import Claim, ClaimRequest, Outcome
from longtasks.observability import metrics

ItemT = TypeVar("ItemT")


class ItemNotConfirmed(Exception):
    """An item whose side effect could not be confirmed now; the page is retried later."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class StopTask(Exception):
    """Nothing more can be done for this task (e.g. the provider token is revoked)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class PauseSending(Exception):
    """The provider asks this sender to stop for now (WhatsApp's spam rate limit, a blocked
    template): the task pauses itself with the reason, as its circuit breaker would; nothing
    was taken for the item that raised it, so it goes back to be sent after the resume."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PageItem(Generic[ItemT]):
    key: str
    seq: int
    label: str | None
    payload: ItemT


@dataclass(frozen=True)
class Breaker:
    """The circuit breaker: the task pauses itself once `share` of its last `window` provider
    answers were failures (across all its pages and workers: the window lives on the task row).

    `answer` says what an outcome counts as: True a failure, False a success, None not an
    answer at all (an invalid number or an opted-out recipient never reached the provider).
    """

    share: float
    window: int
    answer: Callable[[Outcome], bool | None]

    def reason(self, failures: int, answers: int, codes: Counter[str]) -> str:
        common = f"; most often {codes.most_common(1)[0][0]}" if codes else ""
        return (
            f"paused itself: {failures} of the last {answers} sends failed"
            f" ({failures / answers:.0%}; the policy pauses at {self.share:.0%}){common}"
        )


@dataclass(frozen=True)
class PageTuning:
    """How pages are cut and run; the worker builds it from its settings."""

    page_size: int = 500
    window: int = 4
    pages_per_run: int = 400
    heartbeat_timeout_s: float = 20.0
    cancel_poll_interval_s: float = 0.2
    # Settling in micro-batches keeps the progress users see < 1 s behind the provider, and
    # shrinks what a crash can leave unconfirmed to the items in flight.
    flush_interval_s: float = 0.25

    def plan(self, total_items: int, page_size: int | None = None) -> TaskPlan:
        return TaskPlan(
            total_items=total_items,
            page_size=page_size or self.page_size,
            window=self.window,
            pages_per_run=self.pages_per_run,
            heartbeat_timeout_s=self.heartbeat_timeout_s,
        )


Act = Callable[[PageItem[ItemT], Claim], Awaitable[Outcome]]
# Runs in the settling transaction, after the outcomes are written (e.g. apply provider
# statuses that arrived for those items before the outcomes were recorded).
AfterSettle = Callable[[AsyncConnection, Sequence[Outcome]], Awaitable[None]]


class PageRun(Generic[ItemT]):
    def __init__(
        self,
        engine: AsyncEngine,
        task_id: int,
        items: Sequence[PageItem[ItemT]],
        act: Act[ItemT],
        tuning: PageTuning,
        concurrency: asyncio.Semaphore,
        breaker: Breaker | None = None,
        *,
        after_settle: AfterSettle | None = None,
    ) -> None:
        self._engine = engine
        self._after_settle = after_settle
        self._task_id = task_id
        self._items = items
        self._act = act
        self._tuning = tuning
        self._concurrency = concurrency
        self._breaker = breaker
        self._cancel = asyncio.Event()
        self._pause = asyncio.Event()
        self._stop: StopTask | None = None
        self._pending: list[Outcome] = []
        self._result = PageResult()
        self._unconfirmed: list[ItemNotConfirmed] = []
        self._started: set[str] = set()
        # Items the provider refused while asking the sender to stop: released with the rest.
        self._given_back: set[str] = set()
        self._acting_done = asyncio.Event()

    async def run(self) -> PageResult:
        work = asyncio.create_task(self._run())
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            # Temporal asked us to stop (its UI, or the workflow): finish in-flight items,
            # settle them, then report cancellation.
            self._cancel.set()
            with contextlib.suppress(Exception):
                await work
            raise

    async def _run(self) -> PageResult:
        claims = await self._claim()
        poller = asyncio.create_task(self._poll_cancel())
        flusher = asyncio.create_task(self._flush_periodically())
        try:
            await self._act_on_all(claims)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            # Never cancel a flush mid-transaction: its batch would be lost from memory while
            # the rows stay claimed. Ask the flusher to stop and wait for it.
            self._acting_done.set()
            await flusher
            await self._flush()
        released = await self._release_unstarted(claims)
        self._result.released = released
        self._result.stopped_by_cancel = self._cancel.is_set()
        self._result.stopped_by_pause = self._pause.is_set() and not self._cancel.is_set()
        if self._stop is not None:
            raise ApplicationError(str(self._stop), type=self._stop.code, non_retryable=True)
        unsettled = await self._count_unsettled()
        if unsettled:
            detail = f" ({self._unconfirmed[0]})" if self._unconfirmed else ""
            raise ApplicationError(
                f"{unsettled} item(s) not settled yet{detail}; the page is retried (an item"
                " whose request may have left is not sent again: it becomes unconfirmed)",
                type="ItemsNotConfirmed",
            )
        return self._result

    async def _claim(self) -> list[Claim]:
        requests = [ClaimRequest(i.key, i.seq, i.label) for i in self._items]
        async with self._engine.begin() as conn:
            await ledger.commit_without_waiting_for_disk(conn)
            self._obey(*await task_repo.control_flags(conn, self._task_id))
            return await ledger.claim(conn, self._task_id, requests)

    def _obey(self, cancel: bool, pause: bool) -> None:
        if cancel:
            self._cancel.set()
        if pause:
            self._pause.set()

    def _stopping(self) -> bool:
        """No new item starts (items an earlier attempt claimed are always finished)."""
        return self._cancel.is_set() or self._pause.is_set() or self._stop is not None

    async def _act_on_all(self, claims: list[Claim]) -> None:
        by_key = {i.key: i for i in self._items}
        async with asyncio.TaskGroup() as group:
            for claim in claims:
                first_attempt = claim.attempts == 1
                if first_attempt and self._stopping():
                    continue
                await self._concurrency.acquire()
                if first_attempt and self._stopping():
                    self._concurrency.release()
                    continue
                self._started.add(claim.item_key)
                group.create_task(self._act_one(by_key[claim.item_key], claim))

    async def _act_one(self, item: PageItem[ItemT], claim: Claim) -> None:
        try:
            outcome = await self._act(item, claim)
        except ItemNotConfirmed as exc:
            self._unconfirmed.append(exc)
            return
        except StopTask as exc:
            self._stop = exc
            return
        except PauseSending as exc:
            self._given_back.add(item.key)
            await self._pause_for_provider(exc)
            return
        finally:
            self._concurrency.release()
        self._pending.append(outcome)

    async def _pause_for_provider(self, exc: PauseSending) -> None:
        """The task pauses itself (the flag every page obeys), with the provider's reason."""
        if self._pause.is_set():
            return
        self._pause.set()
        reason = f"paused itself: WhatsApp asked the sender to stop ({exc.code}: {exc})"
        try:
            async with self._engine.begin() as conn:
                if await task_repo.auto_pause(conn, self._task_id, reason) is not None:
                    activity.logger.warning("task %s %s", self._task_id, reason)
        except Exception:
            # The page still stops; a retried page meets the provider's refusal again.
            activity.logger.warning("recording the provider's pause failed", exc_info=True)

    async def _poll_cancel(self) -> None:
        while not self._cancel.is_set():
            await asyncio.sleep(self._tuning.cancel_poll_interval_s)
            try:
                async with self._engine.connect() as conn:
                    self._obey(*await task_repo.control_flags(conn, self._task_id))
            except Exception:
                activity.logger.warning("cancel poll failed", exc_info=True)

    async def _flush_periodically(self) -> None:
        while not self._acting_done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acting_done.wait(), self._tuning.flush_interval_s)
            try:
                await self._flush()
            except Exception:
                activity.logger.warning("settling outcomes failed; will retry", exc_info=True)

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            try:
                async with self._engine.begin() as conn:
                    await ledger.commit_without_waiting_for_disk(conn)
                    counts = await ledger.settle(conn, self._task_id, batch)
                    await task_repo.add_counts(
                        conn,
                        self._task_id,
                        succeeded=counts.succeeded,
                        failed=counts.failed,
                        skipped=counts.skipped,
                        unconfirmed=counts.unconfirmed,
                        delivery=counts.delivery,
                    )
                    if self._breaker is not None:
                        await self._watch_failures(conn, self._breaker, batch)
                    if self._after_settle is not None:
                        await self._after_settle(conn, batch)
            except Exception:
                # Keep the outcomes: the next flush tries again. If the activity dies first,
                # the items stay claimed and the retried page confirms them again.
                self._pending[:0] = batch
                raise
            self._result.succeeded += counts.succeeded
            self._result.failed += counts.failed
            self._result.skipped += counts.skipped
            self._result.unconfirmed += counts.unconfirmed
            # After the commit, and only what moved from claimed: a retry never counts twice.
            metrics.count_items(
                metrics.task_type_of_activity(),
                succeeded=counts.succeeded,
                failed=counts.failed,
                skipped=counts.skipped,
            )
        with contextlib.suppress(RuntimeError):  # outside an activity (unit use)
            activity.heartbeat({"settled": self._result.succeeded + self._result.failed})

    async def _watch_failures(
        self, conn: AsyncConnection, breaker: Breaker, batch: Sequence[Outcome]
    ) -> None:
        """In the settling transaction: add this batch's answers to the task's window and
        pause the task (the flag every page obeys) once too many failed."""
        answers = [(o, breaker.answer(o)) for o in batch]
        counted = [failed for _, failed in answers if failed is not None]
        if not counted:
            return
        size, failures = await task_repo.record_outcomes(
            conn, self._task_id, counted, breaker.window
        )
        if size < breaker.window or failures < breaker.share * size:
            return
        codes = Counter(o.error_code or "unknown" for o, failed in answers if failed)
        reason = breaker.reason(failures, size, codes)
        if await task_repo.auto_pause(conn, self._task_id, reason) is not None:
            activity.logger.warning("task %s %s", self._task_id, reason)
        self._pause.set()

    async def _count_unsettled(self) -> int:
        """Items of this page still claimed after acting: never report such a page done."""
        async with self._engine.connect() as conn:
            return await ledger.count_claimed(conn, self._task_id, [i.key for i in self._items])

    async def _release_unstarted(self, claims: list[Claim]) -> int:
        unstarted = [
            c
            for c in claims
            if (c.attempts == 1 and c.item_key not in self._started)
            or c.item_key in self._given_back
        ]
        if not unstarted:
            return 0
        async with self._engine.begin() as conn:
            return await ledger.release(conn, self._task_id, unstarted)
