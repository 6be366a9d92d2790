"""`tasks.notify_finished`: tell the business that a task ended, by webhook and/or email.

Runs after `tasks.finish`, so the snapshot it sends is the terminal one. Each channel is
recorded in `notification_deliveries` once delivered (or refused for good), in Postgres, so a
retried attempt (Temporal retries with backoff while a receiver is down) sends only what is
still missing. A channel that can never succeed (an HTTP 404, an unknown mailbox) is recorded
as rejected and reported as a non-retryable error; the workflow logs it, the task's outcome is
not affected.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from longtasks.contracts import activities as act
from longtasks.contracts.ops import NotifyRequest, NotifyResult
from longtasks.db.repositories import notifications as notification_repo
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.notifications import NotificationConfig
from longtasks.db.repositories.tasks import TaskRow
from longtasks.notifications import email, payload, secrets, webhook
from longtasks.observability import metrics
from longtasks.observability.logs import bind
from longtasks.settings import Settings


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
            config = await notification_repo.get_config(conn, task.business_id)
            done = await notification_repo.settled_channels(conn, task.id)
        if config is None:
            return NotifyResult()
        result = NotifyResult()
        retry: list[str] = []
        with bind(business_id=task.business_id, task_id=task.id):
            if config.webhook_url and "webhook" not in done:
                await self._channel("webhook", task, config, result, retry)
            if config.email_to and "email" not in done:
                await self._channel("email", task, config, result, retry)
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
        task: TaskRow,
        config: NotificationConfig,
        result: NotifyResult,
        retry: list[str],
    ) -> None:
        try:
            if channel == "webhook":
                await self._webhook(task, config)
            else:
                await self._email(task, config)
        except (webhook.WebhookRejected, email.EmailRejected) as exc:
            activity.logger.warning("%s notification refused: %s", channel, exc)
            await self._record(task.id, channel, "rejected", str(exc))
            metrics.count_notification(channel, "rejected")
            result.rejected.append(channel)
            return
        except (webhook.WebhookRetryable, email.EmailRetryable) as exc:
            activity.logger.info("%s notification not delivered yet: %s", channel, exc)
            metrics.count_notification(channel, "retry")
            retry.append(f"{channel}: {exc}")
            return
        await self._record(task.id, channel, "delivered")
        metrics.count_notification(channel, "delivered")
        result.delivered.append(channel)

    async def _record(
        self, task_id: int, channel: str, outcome: str, detail: str | None = None
    ) -> None:
        async with self._engine.begin() as conn:
            await notification_repo.record_delivery(conn, task_id, channel, outcome, detail)

    async def _webhook(self, task: TaskRow, config: NotificationConfig) -> None:
        assert config.webhook_url is not None
        if not config.webhook_secret_encrypted:
            raise webhook.WebhookRejected("no webhook secret configured")
        await webhook.post(
            config.webhook_url,
            secret=secrets.decrypt(self._settings, config.webhook_secret_encrypted),
            payload=payload.webhook_body(task, dt.datetime.now(dt.UTC)),
            idempotency_key=payload.delivery_id(task.id, "webhook"),
            timeout_s=self._settings.webhook_timeout_s,
        )

    async def _email(self, task: TaskRow, config: NotificationConfig) -> None:
        assert config.email_to is not None
        domain = self._settings.smtp_from.rpartition("@")[2] or "longtasks"
        message = email.build_message(
            self._settings,
            to=config.email_to,
            subject=payload.email_subject(task),
            text=payload.email_text(task),
            message_id=f"<task-{task.id}-finished@{domain}>",
        )
        await email.send(self._settings, message)
