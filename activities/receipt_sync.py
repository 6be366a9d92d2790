"""Gmail receipt sync: decide the mode, list message ids into staging, fetch and store receipts.

Gmail calls are reads, so the only side effect is the receipt row; it is inserted with
ON CONFLICT (business_id, gmail_message_id) DO NOTHING, which makes a re-fetched message (a
retried page, a second sync) store nothing twice. Fetch pages run on the shared claim -> act ->
settle engine for its ledger, cancel polling, heartbeats and exact counters.

Errors: a revoked grant stops the task with a clear, non-retryable error; rate limits and
transient failures leave the item claimed and the page is retried by Temporal; a message that
is not a receipt is `skipped` (counted), a malformed one `failed` with the parser's code.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.pages import ItemNotConfirmed, PageItem, PageRun, PageTuning, StopTask
from longtasks.contracts import activities as act
from longtasks.contracts.receipts import (
    FULL,
    INCREMENTAL,
    ListRequest,
    ListResult,
    SyncStart,
)
from longtasks.contracts.tasks import PageRequest, PageResult, TaskPlan
from longtasks.db.models import GmailConnection, ReceiptSyncRun
from longtasks.db.repositories import gmail as gmail_repo
from longtasks.db.repositories import receipts as receipt_repo
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.gmail import TokenCipher
from longtasks.db.repositories.ledger import Claim, Outcome
from longtasks.db.repositories.receipts import NewReceipt
from longtasks.domain import ItemStatus, ReceiptSource
from longtasks.providers.gmail import (
    GmailApi,
    GmailAuthRevoked,
    GmailCredentials,
    GmailError,
    GmailHistoryTooOld,
    GmailNotFound,
)
from longtasks.receipt_parsing import MalformedReceipt, NotAReceipt, parse_receipt

T = TypeVar("T")


@dataclass(frozen=True)
class SyncTuning:
    # Fetch pages: `page_size` is GMAIL_FETCH_PAGE_SIZE (the task type's page setting).
    pages: PageTuning
    list_page_size: int = 500
    fetch_concurrency: int = 16


def gmail_query(query: str | None, since: object | None) -> str | None:
    """The Gmail search for a full sync: the user's query, narrowed to mail after `since`."""
    parts = [query.strip()] if query and query.strip() else []
    if since is not None:
        parts.append(f"after:{since:%Y/%m/%d}")
    return " ".join(parts) or None


def revoked(connection: GmailConnection, exc: GmailError) -> ApplicationError:
    return ApplicationError(
        f"Gmail access for {connection.email} was revoked or has expired ({exc.message});"
        " reconnect the mailbox and sync again",
        type="GmailAuthRevoked",
        non_retryable=True,
    )


class ReceiptSyncActivities:
    def __init__(
        self,
        engine: AsyncEngine,
        gmail: GmailApi | None,
        cipher: TokenCipher,
        tuning: SyncTuning,
    ) -> None:
        self._engine = engine
        self._gmail = gmail
        self._cipher = cipher
        self._tuning = tuning
        # One credentials object per mailbox in this worker: concurrent pages that meet an
        # expired access token share one refresh instead of each spending one.
        self._credentials: dict[int, GmailCredentials] = {}
        self._concurrency = asyncio.Semaphore(tuning.fetch_concurrency)

    # -- helpers -----------------------------------------------------------------------------

    @property
    def gmail(self) -> GmailApi:
        if self._gmail is None:
            raise ApplicationError(
                "this worker has no Gmail client configured", type="NoGmail", non_retryable=True
            )
        return self._gmail

    async def _load(self, task_id: int) -> tuple[ReceiptSyncRun, GmailConnection, GmailCredentials]:
        async with self._engine.connect() as conn:
            run = await gmail_repo.get_sync_run(conn, task_id)
            if run is None:
                raise ApplicationError(
                    f"task {task_id} has no sync request", type="NotFound", non_retryable=True
                )
            connection = await gmail_repo.get_connection(conn, run.business_id)
        if connection is None:
            raise ApplicationError(
                f"business {run.business_id} has no Gmail connection; connect a mailbox first",
                type="NoGmailConnection",
                non_retryable=True,
            )
        refresh_token = self._cipher.decrypt(connection.refresh_token_enc)
        cached = self._credentials.get(run.business_id)
        if cached is None or cached.refresh_token != refresh_token:
            access_token = self._cipher.decrypt(connection.access_token_enc)
            cached = GmailCredentials(access_token, refresh_token)
            self._credentials[run.business_id] = cached
        return run, connection, cached

    async def _keep_token(self, connection: GmailConnection, credentials: GmailCredentials) -> None:
        """Store a refreshed access token again (encrypted), so other workers reuse it."""
        if credentials.access_token == self._cipher.decrypt(connection.access_token_enc):
            return
        async with self._engine.begin() as conn:
            await gmail_repo.store_access_token(
                conn,
                self._cipher,
                connection.business_id,
                refresh_token=credentials.refresh_token,
                access_token=credentials.access_token,
            )

    async def _heartbeating(self, work: Awaitable[T]) -> T:
        """Await one Gmail call (it may back off for a while) while telling Temporal we live."""
        task = asyncio.ensure_future(work)
        while True:
            done, _ = await asyncio.wait({task}, timeout=2.0)
            if done:
                return task.result()
            activity.heartbeat()

    @contextlib.asynccontextmanager
    async def _gmail_errors(self, connection: GmailConnection) -> AsyncIterator[None]:
        try:
            yield
        except GmailAuthRevoked as exc:
            raise revoked(connection, exc) from exc
        except GmailHistoryTooOld:
            raise  # the caller falls back to a full sync
        except GmailError as exc:
            if exc.retryable:
                raise  # Temporal retries the activity with backoff
            raise ApplicationError(
                f"Gmail refused the request: {exc}", type="GmailRequestError", non_retryable=True
            ) from exc

    # -- phase 0: mode -------------------------------------------------------------------------

    @activity.defn(name=act.RECEIPT_SYNC_START.name)
    async def start(self, task_id: int) -> SyncStart:
        """Incremental from the stored history id unless the request narrows the mail (query,
        since) or there is none yet; a full sync notes the mailbox's history id first, so mail
        arriving while it runs is picked up by the next incremental sync."""
        heartbeat_s = self._tuning.pages.heartbeat_timeout_s
        run, connection, credentials = await self._load(task_id)
        if run.mode is not None:  # decided by an earlier attempt
            return SyncStart(mode=run.mode, heartbeat_timeout_s=heartbeat_s)
        if run.query is None and run.since is None and connection.history_id is not None:
            mode, start_history_id, new_history_id = INCREMENTAL, connection.history_id, None
        else:
            async with self._gmail_errors(connection):
                profile = await self._heartbeating(self.gmail.get_profile(credentials))
            mode, start_history_id, new_history_id = FULL, None, profile.history_id
        await self._keep_token(connection, credentials)
        async with self._engine.begin() as conn:
            await gmail_repo.set_sync_mode(
                conn,
                task_id,
                mode=mode,
                start_history_id=start_history_id,
                new_history_id=new_history_id,
            )
            await task_repo.set_status_reason(conn, task_id, f"listing Gmail messages ({mode})")
        return SyncStart(mode=mode, heartbeat_timeout_s=heartbeat_s)

    # -- phase 1: list ids into staging --------------------------------------------------------

    @activity.defn(name=act.RECEIPT_SYNC_LIST_PAGE.name)
    async def list_page(self, request: ListRequest) -> ListResult:
        run, connection, credentials = await self._load(request.task_id)
        gmail = self.gmail
        history_id: int | None = None
        try:
            async with self._gmail_errors(connection):
                if request.mode == INCREMENTAL:
                    assert run.start_history_id is not None
                    history = await self._heartbeating(
                        gmail.list_history(
                            credentials,
                            start_history_id=run.start_history_id,
                            page_token=request.page_token,
                        )
                    )
                    ids, next_token = history.message_ids, history.next_page_token
                    history_id = history.history_id
                else:
                    page = await self._heartbeating(
                        gmail.list_message_ids(
                            credentials,
                            query=gmail_query(run.query, run.since),
                            page_token=request.page_token,
                            max_results=self._tuning.list_page_size,
                        )
                    )
                    ids, next_token = page.ids, page.next_page_token
        except GmailHistoryTooOld:
            # Gmail keeps about a week of history: fall back to a full sync by ourselves.
            async with self._gmail_errors(connection):
                profile = await self._heartbeating(gmail.get_profile(credentials))
            async with self._engine.begin() as conn:
                await gmail_repo.set_sync_mode(
                    conn,
                    request.task_id,
                    mode=FULL,
                    start_history_id=None,
                    new_history_id=profile.history_id,
                )
            await self._keep_token(connection, credentials)
            return ListResult(history_too_old=True)
        await self._keep_token(connection, credentials)
        async with self._engine.begin() as conn:
            new = await gmail_repo.stage_message_ids(conn, request.task_id, ids)
            total = await gmail_repo.staged_count(conn, request.task_id)
            if history_id is not None:
                await gmail_repo.raise_new_history_id(conn, request.task_id, history_id)
            # The total grows while listing and is exact once it ends, before any fetch.
            await task_repo.set_total(conn, request.task_id, total)
            await task_repo.set_status_reason(
                conn, request.task_id, f"listing Gmail messages: {total:,} found"
            )
        return ListResult(
            listed=len(ids), staged_new=new, staged_total=total, next_page_token=next_token
        )

    @activity.defn(name=act.RECEIPT_SYNC_BEGIN.name)
    async def begin(self, task_id: int) -> TaskPlan:
        async with self._engine.begin() as conn:
            total = await gmail_repo.staged_count(conn, task_id)
            await task_repo.set_total(conn, task_id, total)
            await task_repo.set_status_reason(conn, task_id, None)
        return self._tuning.pages.plan(total)

    # -- phase 2: fetch, parse, store ----------------------------------------------------------

    @activity.defn(name=act.RECEIPT_SYNC_FETCH_PAGE.name)
    async def fetch_page(self, request: PageRequest) -> PageResult:
        run, connection, credentials = await self._load(request.task_id)
        gmail = self.gmail
        async with self._engine.connect() as conn:
            staged = await gmail_repo.staged_page(
                conn, request.task_id, after_seq=request.after_seq, up_to_seq=request.up_to_seq
            )
        task_id, business_id = request.task_id, run.business_id

        async def fetch_one(item: PageItem[str], claim: Claim) -> Outcome:
            message_id = item.payload
            try:
                message = await gmail.get_message(credentials, message_id)
            except GmailNotFound:
                return Outcome(
                    item.key, ItemStatus.skipped, "message_deleted", "deleted from the mailbox"
                )
            except GmailAuthRevoked as exc:
                raise StopTask("GmailAuthRevoked", str(revoked(connection, exc))) from exc
            except GmailError as exc:
                if exc.retryable:
                    raise ItemNotConfirmed(exc.code, exc.message) from exc
                raise StopTask("GmailRequestError", f"Gmail refused the request: {exc}") from exc
            try:
                parsed = parse_receipt(message)
            except MalformedReceipt as exc:
                return Outcome(item.key, ItemStatus.failed, exc.code, exc.message)
            if isinstance(parsed, NotAReceipt):
                return Outcome(item.key, ItemStatus.skipped, "not_a_receipt", parsed.reason)
            receipt = NewReceipt(
                source=ReceiptSource.gmail,
                gmail_message_id=message_id,
                vendor=parsed.vendor,
                amount=parsed.amount,
                currency=parsed.currency,
                issued_at=parsed.issued_at,
                subject=parsed.subject,
                attachments=parsed.attachments,
            )
            async with self._engine.begin() as conn:
                receipt_id = await receipt_repo.insert_receipt(
                    conn, business_id, receipt, task_id=task_id
                )
                if receipt_id is not None:
                    return Outcome(item.key, ItemStatus.succeeded, provider_ref=str(receipt_id))
                stored_by = await receipt_repo.task_of_gmail_message(conn, business_id, message_id)
            if stored_by == task_id:
                # Stored by an earlier attempt of this page whose ledger update was lost.
                return Outcome(item.key, ItemStatus.succeeded)
            return Outcome(
                item.key,
                ItemStatus.skipped,
                "already_stored",
                f"stored by an earlier sync (task {stored_by})" if stored_by else "stored before",
            )

        items = [PageItem(key=mid, seq=seq, label=None, payload=mid) for seq, mid in staged]
        page = PageRun(
            self._engine, task_id, items, fetch_one, self._tuning.pages, self._concurrency
        )
        try:
            return await page.run()
        finally:
            await self._keep_token(connection, credentials)

    @activity.defn(name=act.RECEIPT_SYNC_COMPLETE.name)
    async def complete(self, task_id: int) -> None:
        """Every page settled: later syncs are incremental from the history id noted for this
        one (the mailbox's, taken before a full listing or reported by the last history page)."""
        async with self._engine.begin() as conn:
            run = await gmail_repo.get_sync_run(conn, task_id)
            if run is None or run.new_history_id is None:
                return
            connection = await gmail_repo.get_connection(conn, run.business_id)
            if connection is None:
                return
            await gmail_repo.store_history_id(
                conn, run.business_id, email=connection.email, history_id=run.new_history_id
            )
