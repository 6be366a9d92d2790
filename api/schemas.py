"""Response and request bodies of the REST API."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from sqlalchemy import inspect

from api.errors import AppError
from longtasks.db.models import LongRunningTask
from longtasks.db.repositories.previews import BroadcastPreview
from longtasks.domain import Delivery, ItemStatus, Priority, TaskStatus, TaskType, UnconfirmedPolicy

# The spec's schema of task types; `create_app` sets its values to the app's registry's.
TASK_TYPE_SCHEMA = TaskType.__name__


class _DocumentedAsTaskType:
    """A plain string that the spec documents as the `TaskType` enum: the built-in types'
    enum schema, whose values `create_app` replaces with its registry's types (a deployment may
    register more). Inputs are checked against the app's registry (`api.deps`), and the
    database refuses a task of an unregistered type (a foreign key), so no response has one."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(TypeAdapter(TaskType).core_schema)


TaskTypeName = Annotated[str, _DocumentedAsTaskType]
Limit = Annotated[int, Field(ge=1, le=500)]


class ErrorOut(BaseModel):
    """Every error answer but 422 (which lists the reasons): `{"detail": "..."}`."""

    detail: str


# Documented on every operation, so the OpenAPI spec describes what clients can really get.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": why}
    for code, why in (
        (400, "a malformed value (e.g. a cursor)"),
        (401, "a missing, expired or invalid bearer token"),
        (403, "the token's role is too weak"),
        (404, "not found in this business"),
        (409, "conflicts with the resource's state"),
        (413, "the body or the recipient list is too large"),
        (503, "Postgres or Temporal is unavailable; retry"),
    )
}
ERROR_RESPONSES[429] = {
    "model": ErrorOut,
    "description": "rate limit exceeded for this token",
    "headers": {
        "Retry-After": {"description": "seconds", "required": True, "schema": {"type": "integer"}}
    },
}


class DeliveryOut(BaseModel):
    """A broadcast's items by delivery state: what WhatsApp's status webhooks (or a send's own
    answer) said. `failed` includes items that failed at send time; `pending` are items whose
    delivery is not known yet (not sent, in flight, or unconfirmed). These keep moving after
    the task ends, as statuses keep coming."""

    accepted: int
    delivered: int
    read: int
    failed: int
    pending: int
    # Sends nobody could confirm right now, and sends re-sent under the at_least_once policy.
    unconfirmed: int
    resent: int

    @classmethod
    def of(cls, row: LongRunningTask) -> DeliveryOut:
        return cls(
            accepted=row.delivery_accepted,
            delivered=row.delivery_delivered,
            read=row.delivery_read,
            failed=row.delivery_failed,
            pending=row.delivery_pending,
            unconfirmed=row.unconfirmed_count,
            resent=row.resent_count,
        )


# Built by validation from a task's row (`LongRunningTask`, see `of`). (Comments, not
# docstrings: docstrings become the spec's descriptions.)
class TaskOut(BaseModel):
    id: int
    business_id: int
    task_type: TaskTypeName
    status: TaskStatus
    total_items: int
    processed_items: int
    success_count: int
    failed_count: int
    skipped_count: int
    cancelled_count: int
    progress_pct: float
    cancel_requested: bool
    cancel_reason: str | None
    error_message: str | None
    status_reason: str | None
    workflow_id: str | None
    priority: Priority
    start_at: dt.datetime | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    completed_at: dt.datetime | None
    eta_seconds: int | None = Field(
        description="seconds until the task ends, at the rate measured over the last ~30 s and"
        " no faster than pacing, WhatsApp's daily tier and the business's daily cap allow;"
        " null while it cannot be estimated and whenever the task is not running"
    )
    created_by: str | None
    parent_task_id: int | None = Field(description="the task whose failed items this retries")
    child_task_ids: list[int] = Field(description="the tasks retrying this one's failed items")
    pause_requested: bool
    paused_by: str | None = Field(description="who paused it (`system`: it paused itself)")
    paused_at: dt.datetime | None
    approval_expires_at: dt.datetime | None
    approved_by: str | None
    approved_at: dt.datetime | None
    rejected_by: str | None
    # Broadcasts only (null for other task types).
    delivery: DeliveryOut | None = None

    @classmethod
    def of(
        cls,
        row: LongRunningTask,
        *,
        eta_seconds: int | None = None,
        child_task_ids: Sequence[int] = (),
    ) -> TaskOut:
        """Validated from the row's columns (as loaded), its `progress_pct`, and the values
        computed when it is read (`api.task_views`)."""
        return cls.model_validate(
            {
                **inspect(row).dict,
                "progress_pct": row.progress_pct,
                "eta_seconds": eta_seconds,
                "child_task_ids": child_task_ids,
                "delivery": (
                    DeliveryOut.of(row) if row.task_type == TaskType.broadcast.value else None
                ),
            }
        )


class TaskEnvelope(BaseModel):
    task: TaskOut


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None


DeliveryName = Literal["accepted", "failed", "delivered", "read"]
_DELIVERY_NAMES: dict[int, DeliveryName] = {
    Delivery.accepted: "accepted",
    Delivery.failed: "failed",
    Delivery.delivered: "delivered",
    Delivery.read: "read",
}


# Built by validation from a row of the `task_ledger` view (a mapping).
class ItemOut(BaseModel):
    item_key: str
    seq: int
    label: str | None
    status: ItemStatus
    error_code: str | None
    error_message: str | None
    # Broadcasts: the message's wamid.
    provider_ref: str | None
    attempts: int
    updated_at: dt.datetime
    # Broadcasts: the delivery state and its provider error code, when each state was reached,
    # and how often an unconfirmed send was re-sent (at_least_once).
    delivery: DeliveryName | None = None
    delivery_error_code: str | None = None
    accepted_at: dt.datetime | None = None
    delivered_at: dt.datetime | None = None
    read_at: dt.datetime | None = None
    failed_at: dt.datetime | None = None
    resends: int = 0

    @model_validator(mode="before")
    @classmethod
    def _from_ledger_row(cls, data: Any) -> Any:
        # A row of the ledger view names the delivery state by its rank (`delivery`) and its
        # code `delivery_code`; the answer names the state and calls the code what it is.
        if isinstance(data, Mapping) and "delivery_code" in data:
            data = dict(data)
            rank = data.get("delivery")
            data["delivery"] = _DELIVERY_NAMES[rank] if isinstance(rank, int) else rank
            data["delivery_error_code"] = data.pop("delivery_code")
        return data


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None


class ColumnParamIn(BaseModel):
    """A parameter taken from each member's row of the broadcast's audience."""

    model_config = ConfigDict(extra="forbid")
    column: str = Field(min_length=1, max_length=200, description="one of the audience's variables")
    default: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="for a member whose cell is empty (else that member's item fails)",
    )


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=512)
    language: str = Field(min_length=2, max_length=20)
    params: list[Annotated[str, Field(max_length=1024)] | ColumnParamIn] = Field(
        default_factory=list,
        max_length=20,
        description='literals, and with `audience_id` columns: ["Shalom", {"column": "name"}]',
    )

    @property
    def columns(self) -> list[str]:
        return [p.column for p in self.params if isinstance(p, ColumnParamIn)]


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(default=None, min_length=1, max_length=4096)
    template: TemplateIn | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> MessageIn:
        if (self.text is None) == (self.template is None):
            raise ValueError("give exactly one of message.text or message.template")
        return self


class StartOptions(BaseModel):
    """Options every start request takes."""

    start_at: dt.datetime | None = Field(
        default=None, description="delayed start (ISO 8601 with a time zone)"
    )
    priority: Priority = Priority.normal

    @field_validator("start_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("start_at needs a time zone, e.g. 2026-12-01T09:00:00Z")
        return value


class BroadcastIn(StartOptions):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    message: MessageIn
    recipients: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None, min_length=1, description="phone numbers; or give `audience_id`"
    )
    audience_id: int | None = Field(
        default=None, ge=1, description="a ready audience of the business, instead of a list"
    )
    unconfirmed_policy: UnconfirmedPolicy = Field(
        default=UnconfirmedPolicy.at_most_once,
        description="a send whose answer never came and for which no status webhook arrived:"
        " counted failed and never re-sent (at_most_once: nobody gets it twice), or re-sent"
        " (at_least_once: everybody gets it, a few maybe twice)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> BroadcastIn:
        if (self.recipients is None) == (self.audience_id is None):
            raise ValueError("give exactly one of recipients or audience_id")
        template = self.message.template
        if self.audience_id is None and template is not None and template.columns:
            raise ValueError("template parameters naming a column need an audience_id")
        return self


class PreviewOut(BaseModel):
    task_id: int
    broadcast_id: int
    submitted: int = Field(description="numbers the request carried")
    duplicates_removed: int
    invalid: int
    recipients: int = Field(description="valid numbers after normalization, duplicates removed")
    suppressed: int = Field(description="of those, opted out: not messaged")
    to_send: int
    messages_per_s: float | None = Field(description="the sender's pace; null: unpaced")
    estimated_duration_s: int | None = Field(description="at the sender's pace")
    tier_limit: int | None = Field(description="WhatsApp's unique recipients per 24 h")
    tier_used_24h: int
    tier_headroom: int | None
    exceeds_tier: bool

    @classmethod
    def of(cls, task_id: int, preview: BroadcastPreview) -> PreviewOut:
        return cls(task_id=task_id, exceeds_tier=preview.exceeds_tier, **preview.__dict__)


class BroadcastStarted(BaseModel):
    task: TaskOut
    broadcast_id: int
    audience_id: int | None = None
    recipients_accepted: int
    recipients_invalid: int
    duplicates_dropped: int
    # When it waits for approval: what it will do, for whoever decides (GET .../preview too).
    preview: PreviewOut | None = None


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The value `encode_cursor` wrote; anything else (loose base64, NUL bytes) is a 400."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.b64decode(padded.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise AppError("invalid cursor", status_code=400) from exc
    if not value.isprintable():  # NUL and control characters: never in a cursor we made
        raise AppError("invalid cursor", status_code=400)
    return value


MAX_BIGINT = 2**63 - 1


def cursor_int(raw: str) -> int:
    """An id or seq in a cursor: ASCII digits within Postgres bigint ('²'.isdigit() is True)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or int(raw) > MAX_BIGINT:
        raise AppError("invalid cursor", status_code=400)
    return int(raw)
