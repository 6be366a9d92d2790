"""`tasks.notify_finished`: tell the business that a task ended, by webhook and/or email;
`tasks.notify_paused`: that a task paused itself and waits for a person.

Runs after `tasks.finish`, so the snapshot it sends is the terminal one. Each channel is
recorded in `notification_deliveries` once delivered (or refused for good), in Postgres, so a
retried attempt (Temporal retries with backoff while a receiver is down) sends only what is
still missing. A channel that can never succeed (an HTTP 404, an unknown mailbox) is recorded
as rejected and reported as a non-retryable error; the workflow logs it, the task's outcome is
not affected.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from longtasks.contracts import activities as act
from longtasks.contracts.ops import NotifyPausedRequest, NotifyRequest, NotifyResult
from longtasks.db.models import LongRunningTask, NotificationSettings
from longtasks.db.repositories import notifications as notification_repo
from longtasks.db.repositories import tasks as task_repo
from longtasks.notifications import email, payload, secrets, webhook
from longtasks.observability import metrics
from longtasks.observability.logs import bind
from longtasks.outbound import OutboundPolicy
from longtasks.settings import Settings


@dataclass(frozen=True)
class Notice:
    """One event's notification: what it says, and the delivery records of its channels."""

    event: str
    webhook_channel: str
    email_channel: str
    subject: str
    text: str
    message_id: str


class NotifyActivities:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings

    @activity.defn(name=act.NOTIFY_FINISHED.name)
    async def notify_finished(self, request: NotifyRequest) -> NotifyResult:
        async with self._engine.connect() as conn:
            task = await task_repo.get_task(conn, request.task_id)
        if task is None or not task.is_terminal:
            return NotifyResult()
        return await self._notify(
            task,
            Notice(
                event=payload.EVENT,
                webhook_channel="webhook",
                email_channel="email",
                subject=payload.email_subject(task),
                text=payload.email_text(task),
                message_id=f"task-{task.id}-finished",
            ),
        )

    @activity.defn(name=act.NOTIFY_PAUSED.name)
    async def notify_paused(self, request: NotifyPausedRequest) -> NotifyResult:
        """The snapshot as the pause left it; each pause is its own delivery (`:pause-N`)."""
        async with self._engine.connect() as conn:
            task = await task_repo.get_task(conn, request.task_id)
        if task is None:
            return NotifyResult()
        return await self._notify(
            task,
            Notice(
                event=payload.PAUSED_EVENT,
                webhook_channel=payload.pause_channel("webhook", request.pause),
                email_channel=payload.pause_channel("email", request.pause),
                subject=payload.paused_subject(task),
                text=payload.paused_text(task),
                message_id=f"task-{task.id}-paused-{request.pause}",
            ),
        )

    async def _notify(self, task: LongRunningTask, notice: Notice) -> NotifyResult:
        async with self._engine.connect() as conn:
            config = await notification_repo.get_config(conn, task.business_id)
            done = await notification_repo.settled_channels(conn, task.id)
        if config is None:
            return NotifyResult()
        result = NotifyResult()
        retry: list[str] = []
        with bind(business_id=task.business_id, task_id=task.id):
            if config.webhook_url and notice.webhook_channel not in done:
                await self._channel(notice.webhook_channel, task, config, notice, result, retry)
            if config.email_to and notice.email_channel not in done:
                await self._channel(notice.email_channel, task, config, notice, result, retry)
        if retry:
            raise ApplicationError(
                "; ".join(retry), type="NotificationNotDelivered", non_retryable=False
            )
        if result.rejected:
            raise ApplicationError(
                f"notification refused for good on: {', '.join(result.rejected)}",
                type="NotificationRejected",
                non_retryable=True,
            )
        return result

    async def _channel(
        self,
        channel: str,
        task: LongRunningTask,
        config: NotificationSettings,
        notice: Notice,
        result: NotifyResult,
        retry: list[str],
    ) -> None:
        kind = channel.partition(":")[0]
        try:
            if kind == "webhook":
                await self._webhook(task, config, notice, channel)
            else:
                await self._email(task, config, notice)
        except (webhook.WebhookRejected, email.EmailRejected) as exc:
            activity.logger.warning("%s notification refused: %s", channel, exc)
            await self._record(task.id, channel, "rejected", str(exc))
            metrics.count_notification(kind, "rejected")
            result.rejected.append(channel)
            return
        except (webhook.WebhookRetryable, email.EmailRetryable) as exc:
            activity.logger.info("%s notification not delivered yet: %s", channel, exc)
            metrics.count_notification(kind, "retry")
            retry.append(f"{channel}: {exc}")
            return
        await self._record(task.id, channel, "delivered")
        metrics.count_notification(kind, "delivered")
        result.delivered.append(channel)

    async def _record(
        self, task_id: int, channel: str, outcome: str, detail: str | None = None
    ) -> None:
        async with self._engine.begin() as conn:
            await notification_repo.record_delivery(conn, task_id, channel, outcome, detail)

    async def _webhook(
        self, task: LongRunningTask, config: NotificationSettings, notice: Notice, channel: str
    ) -> None:
        assert config.webhook_url is not None
        if not config.webhook_secret_encrypted:
            raise webhook.WebhookRejected("no webhook secret configured")
        await webhook.post(
            config.webhook_url,
            secret=secrets.decrypt(self._settings, config.webhook_secret_encrypted),
            payload=payload.webhook_body(
                task, dt.datetime.now(dt.UTC), event=notice.event, channel=channel
            ),
            idempotency_key=payload.delivery_id(task.id, channel),
            timeout_s=self._settings.webhook_timeout_s,
            policy=OutboundPolicy.of(self._settings.effective_outbound_allowed_networks),
        )

    async def _email(
        self, task: LongRunningTask, config: NotificationSettings, notice: Notice
    ) -> None:
        assert config.email_to is not None
        domain = self._settings.smtp_from.rpartition("@")[2] or "longtasks"
        message = email.build_message(
            self._settings,
            to=config.email_to,
            subject=notice.subject,
            text=notice.text,
            message_id=f"<{notice.message_id}@{domain}>",
        )
        await email.send(self._settings, message)
