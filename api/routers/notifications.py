"""`/api/notifications`: where a business hears that one of its tasks ended.

When a task ends (completed, cancelled, failed) the worker POSTs a signed JSON snapshot of it to
`webhook_url` and/or mails `email_to`; see README "Notifications". The webhook secret is stored
encrypted and never returned: GET says only whether one is set.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.deps import Admin, ResourcesDep, Viewer
from api.errors import AppError
from api.transactions import ReadConn, WriteConn
from longtasks.db.repositories import audit, businesses
from longtasks.db.repositories import notifications as notification_repo
from longtasks.db.repositories.audit import AuditAction
from longtasks.notifications import secrets
from longtasks.outbound import OutboundPolicy, literal_address_refused
from longtasks.settings import Environment, Settings

router = APIRouter(prefix="/api/notifications", tags=["notifications"])

_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


class NotificationsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    webhook_url: str | None = Field(default=None, max_length=2000)
    webhook_secret: str | None = Field(default=None, min_length=16, max_length=200)
    email_to: str | None = Field(default=None, max_length=320)

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook_url must be an http(s) URL")
        if parts.username or parts.password:
            raise ValueError("webhook_url must not carry credentials; use webhook_secret")
        return value

    @field_validator("email_to")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError("email_to must be one email address")
        return value

    @model_validator(mode="after")
    def _secret_with_url(self) -> NotificationsIn:
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("webhook_secret (16+ characters) is required with webhook_url")
        return self


# Built by validation from the business's row (`NotificationSettings`), read by attribute, or
# from `NOT_CONFIGURED` when it has none. The secret itself never leaves: only whether one is set.
class NotificationsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    webhook_url: str | None
    webhook_secret_set: bool = Field(validation_alias="webhook_secret_encrypted")
    email_to: str | None
    updated_at: dt.datetime | None

    @field_validator("webhook_secret_set", mode="before")
    @classmethod
    def _set(cls, encrypted: str | None) -> bool:
        return bool(encrypted)


NOT_CONFIGURED = {
    "webhook_url": None,
    "webhook_secret_encrypted": None,
    "email_to": None,
    "updated_at": None,
}


@router.get("", response_model=NotificationsOut)
async def get_notifications(principal: Viewer, conn: ReadConn) -> NotificationsOut:
    config = await notification_repo.get_config(conn, principal.business_id)
    return NotificationsOut.model_validate(config or NOT_CONFIGURED)


@router.put("", response_model=NotificationsOut)
async def put_notifications(
    body: NotificationsIn, resources: ResourcesDep, principal: Admin, conn: WriteConn
) -> NotificationsOut:
    """Replace the business's settings; omit a channel to turn it off."""
    if body.webhook_url is not None:
        _refuse_internal_targets(body.webhook_url, resources.settings)
    encrypted = (
        secrets.encrypt(resources.settings, body.webhook_secret)
        if body.webhook_url is not None and body.webhook_secret is not None
        else None
    )
    await businesses.ensure_business(conn, principal.business_id)
    config = await notification_repo.put_config(
        conn,
        principal.business_id,
        webhook_url=body.webhook_url,
        webhook_secret_encrypted=encrypted,
        email_to=body.email_to,
    )
    # Which channels and where the webhook goes; never the secret or the mail address.
    await audit.record(
        conn,
        AuditAction.notifications_updated,
        details={
            "webhook_host": urlsplit(body.webhook_url).hostname if body.webhook_url else None,
            "email": body.email_to is not None,
        },
    )
    return NotificationsOut.model_validate(config)


def _refuse_internal_targets(url: str, settings: Settings) -> None:
    """Early feedback on a URL that names an internal address outright (https in production
    too). The wall itself is at delivery (`longtasks.outbound`): names resolve there."""
    parts = urlsplit(url)
    if settings.environment is Environment.production and parts.scheme != "https":
        raise AppError("webhook_url must be https", status_code=422)
    policy = OutboundPolicy.of(settings.effective_outbound_allowed_networks)
    if literal_address_refused(parts.hostname or "", policy):
        raise AppError("webhook_url must be a public address", status_code=422)


@router.delete("", status_code=204, response_class=Response)
async def delete_notifications(principal: Admin, conn: WriteConn) -> Response:
    await notification_repo.delete_config(conn, principal.business_id)
    await audit.record(conn, AuditAction.notifications_deleted)
    return Response(status_code=204)
