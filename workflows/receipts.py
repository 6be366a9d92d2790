"""The receipt workflows: bulk deletion, Gmail receipt sync, and the Schedule's sync kick.

`receipt_delete` walks the pages the API cut at intake: seq ranges of the caller's ids
(`task_receipt_selection`), or receipt-id ranges of a filter's matches (`receipt_delete_pages`);
each page deletes and records its outcome in one transaction.

`receipt_sync` runs in two phases, so progress has a true total:
1. List (`before_plan`): one activity per Gmail list page (messages.list for a full sync,
   history.list for an incremental one) stages message ids into `gmail_sync_messages`. The page
   token is the cursor, carried here: a worker killed mid-listing resumes at the last page
   Temporal recorded, and staging ignores ids it already has. When Gmail answers that the stored
   history id is too old, the activity switches the sync to full and listing starts over.
2. Fetch: the shared page loop over the staged seq ranges; a page fetches, parses and stores
   each message (`ON CONFLICT DO NOTHING` on the business's Gmail message id).
On completion the mailbox's new history id is stored, so the next sync is incremental.

`receipt_sync_kick` is what the per-business Temporal Schedule starts: one activity creates the
task row and starts `receipt_sync` like the REST API does, so scheduled syncs are ordinary tasks
(listed, cancellable, counted) and the kick itself ends in a second.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from longtasks.contracts import activities as act
    from longtasks.contracts.receipts import FULL, KickInput, KickRequest, KickResult, ListRequest
    from longtasks.contracts.tasks import ListingCursor, TaskInput, TaskOutcome

from workflows.page_loop import PAGE_RETRY, PagedTaskWorkflow

# Older histories listed in one run whatever its length; this marks runs that may continue as
# new mid-listing.
LISTING_CONTINUE_AS_NEW_PATCH = "listing-continue-as-new"

# A kick that cannot start its sync for ten minutes gives up: the next interval tries again.
KICK_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=60), maximum_attempts=15)


@workflow.defn(name="receipt_delete")
class ReceiptDeleteWorkflow(PagedTaskWorkflow):
    begin_activity = act.RECEIPT_DELETE_BEGIN
    page_activity = act.RECEIPT_DELETE_PAGE

    @workflow.run
    async def run(self, input: TaskInput) -> TaskOutcome:
        return await self.run_task(input)


@workflow.defn(name="receipt_sync")
class ReceiptSyncWorkflow(PagedTaskWorkflow):
    begin_activity = act.RECEIPT_SYNC_BEGIN
    page_activity = act.RECEIPT_SYNC_FETCH_PAGE

    @workflow.run
    async def run(self, input: TaskInput) -> TaskOutcome:
        return await self.run_task(input)

    async def before_plan(self, input: TaskInput) -> None:
        if input.listing is not None:
            # Continued as new mid-listing: pick up at the page the last run had reached.
            cursor = input.listing
        else:
            try:
                start = await self.execute_short(act.RECEIPT_SYNC_START, input.task_id)
            except ActivityError as err:
                # E.g. a revoked grant: the task fails with the reason, not hanging `running`.
                self.fail(f"starting the sync failed: {err.cause or err}")
                return
            cursor = ListingCursor(start.mode, 0, None, start.heartbeat_timeout_s)
        mode, page, page_token = cursor.mode, cursor.page, cursor.page_token
        listed_this_run = 0
        while True:
            # Between list pages the listing may pause too (a new path: only a pause leads here).
            await self.pause_if_requested(input.task_id)
            await self.record_cancel_if_needed(input.task_id)
            if self.cancel_requested:
                return
            if listed_this_run and workflow.patched(LISTING_CONTINUE_AS_NEW_PATCH):
                self._continue_listing_as_new_if_suggested(
                    input, ListingCursor(mode, page, page_token, cursor.heartbeat_timeout_s)
                )
            try:
                listed = await self.uninterrupted(
                    workflow.execute_activity(
                        act.RECEIPT_SYNC_LIST_PAGE.name,
                        ListRequest(
                            task_id=input.task_id, mode=mode, page=page, page_token=page_token
                        ),
                        result_type=act.RECEIPT_SYNC_LIST_PAGE.result,
                        start_to_close_timeout=timedelta(minutes=10),
                        heartbeat_timeout=timedelta(seconds=cursor.heartbeat_timeout_s),
                        retry_policy=PAGE_RETRY,
                        summary=f"list {mode} page {page + 1}",
                    )
                )
            except ActivityError as err:
                cause = err.cause if err.cause is not None else err
                self.fail(f"listing messages failed: {cause}")
                return
            listed_this_run += 1
            if listed.history_too_old:
                mode, page_token, page = FULL, None, 0
                continue
            page += 1
            workflow.set_current_details(
                f"listing {mode} sync: **{listed.staged_total:,}** messages found"
                f" after {page} page(s)"
            )
            page_token = listed.next_page_token
            if page_token is None:
                return

    def _continue_listing_as_new_if_suggested(self, input: TaskInput, at: ListingCursor) -> None:
        """A mailbox of ~a million messages lists 2,000 pages: too long a history for one run.
        The listing's cursor (Gmail's page token) is all the next run needs; the staged ids
        are in Postgres. Cancel is checked just before this, and a cancel signal that arrives
        while the run hands over either holds the handover back (the server refuses to
        continue as new past an unhandled signal) or reaches the next run."""
        if not workflow.info().is_continue_as_new_suggested():
            return
        workflow.continue_as_new(
            TaskInput(task_id=input.task_id, business_id=input.business_id, listing=at)
        )

    async def before_complete(self, input: TaskInput) -> None:
        await self.execute_short(act.RECEIPT_SYNC_COMPLETE, input.task_id)


@workflow.defn(name="receipt_sync_kick")
class ReceiptSyncKickWorkflow:
    @workflow.run
    async def run(self, input: KickInput) -> KickResult:
        info = workflow.info()
        result: KickResult = await workflow.execute_activity(
            act.RECEIPT_SYNC_START_SCHEDULED.name,
            KickRequest(
                business_id=input.business_id,
                schedule_key=f"{info.workflow_id}/{info.run_id}",
            ),
            result_type=act.RECEIPT_SYNC_START_SCHEDULED.result,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=KICK_RETRY,
        )
        return result


if __name__ == "__main__":
    raise SystemExit("workflows are run by the worker: `longtasks worker`")
