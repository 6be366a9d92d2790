"""SQLAlchemy models. The schema itself is owned by Alembic (`migrations/`), never `create_all`."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from longtasks.domain import (
    TERMINAL_STATUSES,
    AudienceStatus,
    ItemStatus,
    Priority,
    ReceiptSource,
    TaskStatus,
    UnconfirmedPolicy,
)

# Stable constraint names so Alembic autogenerate and hand-written migrations agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def one_of(column: str, values: type[enum.StrEnum], *, name: str | None = None) -> CheckConstraint:
    """`column IN (...)` with an enum's values (`longtasks.domain`). The migrations write each
    list out as of their day; tests/db/test_enums_match_database.py holds the migrated database
    to the enums through the `enum` this records, so a value added without a migration fails."""
    listed = ", ".join(f"'{member.value}'" for member in values)
    return CheckConstraint(
        f"{column} IN ({listed})", name=name or column, info={"enum": values, "column": column}
    )


class Business(Base):
    __tablename__ = "businesses"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The WhatsApp sender: a phone number id of the Cloud API. Sends are paced per sender.
    whatsapp_phone_number_id: Mapped[str | None] = mapped_column(String(64))
    # WhatsApp's per-number throughput (messages/s); None means the worker's default.
    whatsapp_messages_per_s: Mapped[float | None] = mapped_column(Float)
    # WhatsApp's messaging tier: unique recipients per rolling 24 h (None: unlimited).
    whatsapp_daily_limit: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class TaskTypeName(Base):
    """The task types tasks may have: the built-in ones (written by migration 0005) and those
    a registry adds when a worker or API starts (`task_types/`)."""

    __tablename__ = "task_types"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class LongRunningTask(Base):
    __tablename__ = "long_running_tasks"
    __table_args__ = (
        one_of("status", TaskStatus),
        one_of("priority", Priority),
        CheckConstraint("processed_items = success_count + failed_count", name="processed_sum"),
        # What task_items' (business_id, task_id) foreign key points at.
        UniqueConstraint("business_id", "id", name="uq_long_running_tasks_business_id"),
        Index("ix_long_running_tasks_business_newest", "business_id", text("id DESC")),
        Index("ix_long_running_tasks_business_status", "business_id", "status", text("id DESC")),
        Index("ix_long_running_tasks_business_type", "business_id", "task_type", text("id DESC")),
        Index("ix_long_running_tasks_status", "status"),
        Index(
            "ix_long_running_tasks_parent_task_id",
            "parent_task_id",
            postgresql_where=text("parent_task_id IS NOT NULL"),
        ),
        Index(
            "ix_long_running_tasks_terminal_age",
            text("coalesce(completed_at, created_at)"),
            postgresql_where=text(
                "status IN (" + ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATUSES)) + ")"
            ),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    task_type: Mapped[str] = mapped_column(ForeignKey("task_types.name"))
    status: Mapped[str] = mapped_column(String(20), server_default=TaskStatus.running.value)
    total_items: Mapped[int] = mapped_column(Integer, server_default="0")
    processed_items: Mapped[int] = mapped_column(Integer, server_default="0")
    success_count: Mapped[int] = mapped_column(Integer, server_default="0")
    failed_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # Items looked at and deliberately not acted on (e.g. a mail that is not a receipt).
    skipped_count: Mapped[int] = mapped_column(Integer, server_default="0")
    cancelled_count: Mapped[int] = mapped_column(Integer, server_default="0")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    # Why a running task is not moving (waiting for a provider quota window, ...).
    status_reason: Mapped[str | None] = mapped_column(Text)
    workflow_id: Mapped[str | None] = mapped_column(String(200))
    priority: Mapped[str] = mapped_column(String(10), server_default="normal")
    start_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Bumped on every change; the SSE event id, so a reconnecting client resumes after it.
    version: Mapped[int] = mapped_column(BigInteger, server_default="1")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Controls (0005_controls). The subjects (`sub` of the caller's token) of who created,
    # paused, approved or rejected the task; `system` when the task paused itself.
    created_by: Mapped[str | None] = mapped_column(String(200))
    # A retry of another task's failed items points at it.
    parent_task_id: Mapped[int | None] = mapped_column(
        ForeignKey("long_running_tasks.id", ondelete="SET NULL")
    )
    # Asked to pause (by a person or the circuit breaker): pages start no new item while set.
    pause_requested: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    paused_by: Mapped[str | None] = mapped_column(String(200))
    paused_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # How often the task paused itself: numbers each pause notification (its idempotency key).
    auto_pauses: Mapped[int] = mapped_column(Integer, server_default="0")
    approval_expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    rejected_by: Mapped[str | None] = mapped_column(String(200))
    # The measured rate behind `eta_seconds`: two marks (time, processed items) at most
    # `RATE_WINDOW_S` apart, moved forward by the counter updates themselves.
    rate_prev_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    rate_prev_items: Mapped[int | None] = mapped_column(Integer)
    rate_mark_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    rate_mark_items: Mapped[int | None] = mapped_column(Integer)
    # The circuit breaker's sliding window: the task's last provider answers, oldest first,
    # `1` a failure and `0` a success, at most the policy's `auto_pause_window` of them.
    recent_outcomes: Mapped[str | None] = mapped_column(Text)
    # Broadcasts: items by delivery state (Meta's status webhooks, or the send's own answer),
    # sends unconfirmed right now, and sends re-sent under the at_least_once policy (0009).
    delivery_accepted: Mapped[int] = mapped_column(Integer, server_default="0")
    delivery_delivered: Mapped[int] = mapped_column(Integer, server_default="0")
    delivery_read: Mapped[int] = mapped_column(Integer, server_default="0")
    delivery_failed: Mapped[int] = mapped_column(Integer, server_default="0")
    unconfirmed_count: Mapped[int] = mapped_column(Integer, server_default="0")
    resent_count: Mapped[int] = mapped_column(Integer, server_default="0")

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def progress_pct(self) -> float:
        if self.total_items <= 0:
            return 100.0 if self.is_terminal else 0.0
        # Items cancelled unprocessed are not progress: a task cancelled at 30% stays at 30%.
        return round(min(100.0, 100.0 * self.processed_items / self.total_items), 1)

    @property
    def delivery_pending(self) -> int:
        """Items whose delivery is not known yet: not sent, in flight, or unconfirmed. Sends of
        a cancelled task that never happened are not pending; at worst (an unconfirmed send of a
        cancelled task that turns out delivered) the count stays at 0."""
        known = (
            self.delivery_accepted
            + self.delivery_delivered
            + self.delivery_read
            + self.delivery_failed
        )
        return max(0, self.total_items - self.cancelled_count - known)


# A business without a policy row: no approval, no cap, and a circuit breaker that pauses a
# task when half of its last 200 provider answers were failures.
DEFAULT_FAILURE_SHARE = 0.5
DEFAULT_WINDOW = 200


class BusinessPolicy(Base):
    """What a business allows its tasks: approval above a size, a daily send cap, and when a
    task pauses itself (0005_controls). No row: the defaults."""

    __tablename__ = "business_policies"
    __table_args__ = (
        CheckConstraint("approval_required_above >= 0", name="approval_required_above"),
        CheckConstraint("daily_send_cap >= 0", name="daily_send_cap"),
        CheckConstraint(
            "auto_pause_failure_share > 0 AND auto_pause_failure_share <= 1",
            name="auto_pause_failure_share",
        ),
        CheckConstraint("auto_pause_window > 0", name="auto_pause_window"),
    )

    business_id: Mapped[int] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), primary_key=True
    )
    approval_required_above: Mapped[int | None] = mapped_column(Integer)
    daily_send_cap: Mapped[int | None] = mapped_column(Integer)
    auto_pause_failure_share: Mapped[float | None] = mapped_column(Float)
    auto_pause_window: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )

    @classmethod
    def defaults(cls, business_id: int) -> BusinessPolicy:
        """The policy of a business without a row (never stored as such)."""
        return cls(
            business_id=business_id,
            approval_required_above=None,
            daily_send_cap=None,
            auto_pause_failure_share=DEFAULT_FAILURE_SHARE,
            auto_pause_window=DEFAULT_WINDOW,
            updated_by=None,
            updated_at=None,
        )

    def needs_approval(self, items: int) -> bool:
        return self.approval_required_above is not None and items > self.approval_required_above


class BusinessSendDay(Base):
    """Messages a business's tasks reserved on one UTC day: its daily send cap, held across
    every task and worker by reserving here before sending."""

    __tablename__ = "business_send_days"

    business_id: Mapped[int] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    reserved: Mapped[int] = mapped_column(Integer, server_default="0")


class Broadcast(Base):
    __tablename__ = "broadcasts"
    __table_args__ = (one_of("unconfirmed_policy", UnconfirmedPolicy),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), index=True)
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("long_running_tasks.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    message_text: Mapped[str | None] = mapped_column(Text)
    template_name: Mapped[str | None] = mapped_column(String(512))
    template_language: Mapped[str | None] = mapped_column(String(20))
    template_params: Mapped[list[Any] | None] = mapped_column(JSONB)
    recipient_count: Mapped[int] = mapped_column(Integer)
    # Dropped at intake as repeats of an earlier number (the approval preview shows them).
    duplicates_dropped: Mapped[int] = mapped_column(Integer, server_default="0")
    # Sends to an audience's members instead of its own `broadcast_recipients` (0008).
    audience_id: Mapped[int | None] = mapped_column(
        ForeignKey("audiences.id", ondelete="SET NULL"), index=True
    )
    # The number it sends from, fixed when it begins: status webhooks must name it.
    sender_id: Mapped[str | None] = mapped_column(String(64))
    # What to do with a send nobody can confirm: at_most_once (never re-sent) or at_least_once.
    unconfirmed_policy: Mapped[str] = mapped_column(String(20), server_default="at_most_once")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class SenderPacing(Base):
    """The next free send slot of a sender, shared by all workers."""

    __tablename__ = "sender_pacing"

    sender_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_slot_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class SenderContact(Base):
    """When a sender last messaged a recipient: the rolling 24-hour window of its tier."""

    __tablename__ = "sender_contacts"
    __table_args__ = (Index("ix_sender_contacts_sender_last_sent", "sender_id", "last_sent_at"),)

    sender_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    phone: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_sent_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class BroadcastRecipient(Base):
    """One recipient; `seq` numbers them 1..N so pages are plain keyset ranges."""

    __tablename__ = "broadcast_recipients"
    __table_args__ = (UniqueConstraint("broadcast_id", "seq", name="uq_broadcast_recipients_seq"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    # E.164 when valid; the raw input (truncated) when not, with the reason.
    phone: Mapped[str] = mapped_column(String(64))
    invalid_reason: Mapped[str | None] = mapped_column(String(200))
    # A retry of a broadcast to an audience: the member this recipient is (0008).
    member_seq: Mapped[int | None] = mapped_column(Integer)


class TaskItem(Base):
    """The per-item ledger: one row per item a task has claimed or settled."""

    __tablename__ = "task_items"
    __table_args__ = (
        one_of("status", ItemStatus),
        # An item is its task's business's: row-level security compares business_id
        # (migration 0015) and this key keeps the pair true.
        ForeignKeyConstraint(
            ["business_id", "task_id"],
            ["long_running_tasks.business_id", "long_running_tasks.id"],
            ondelete="CASCADE",
            name="fk_task_items_business_id_long_running_tasks",
        ),
        Index("ix_task_items_task_status_seq", "task_id", "status", "seq"),
        Index("ix_task_items_task_seq", "task_id", "seq"),
        Index(
            "ix_task_items_provider_ref",
            "provider_ref",
            postgresql_where=text("provider_ref IS NOT NULL"),
        ),
    )

    task_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    item_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    business_id: Mapped[int] = mapped_column(BigInteger)
    seq: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    provider_ref: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, server_default="1")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # Set, committed, before a side effect that cannot be repeated safely (a WhatsApp send)
    # may leave: an attempt that finds it set does not know whether the effect happened.
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_by: Mapped[str | None] = mapped_column(String(40))
    # Delivery state (longtasks.domain.Delivery: 1 accepted, 2 failed, 3 delivered, 4 read).
    delivery: Mapped[int | None] = mapped_column(SmallInteger)
    delivery_code: Mapped[str | None] = mapped_column(String(100))
    accepted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resends: Mapped[int] = mapped_column(Integer, server_default="0")


class WhatsAppStatusInbox(Base):
    """Statuses of wamids not (yet) recorded on an item; applied when the send is recorded."""

    __tablename__ = "wa_status_inbox"

    wamid: Mapped[str] = mapped_column(String(200), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    phone_number_id: Mapped[str] = mapped_column(String(64))
    callback: Mapped[str | None] = mapped_column(String(512))
    code: Mapped[str | None] = mapped_column(String(100))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class WhatsAppWebhookHealth(Base):
    """Per sender number: the newest dispatch whose status webhook has arrived."""

    __tablename__ = "wa_webhook_health"

    sender_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    newest_dispatch_with_status: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_status_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class WhatsAppSuppression(Base):
    """A recipient a business must not message (or not before `expires_at`)."""

    __tablename__ = "wa_suppressions"

    business_id: Mapped[int] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), primary_key=True
    )
    phone: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class NotificationSettings(Base):
    """Where a business hears that a task ended: a signed webhook and/or an email (0003_ops)."""

    __tablename__ = "notification_settings"

    business_id: Mapped[int] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), primary_key=True
    )
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    # Encrypted at rest with ENCRYPTION_KEY (notifications.secrets); never returned by the API.
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    email_to: Mapped[str | None] = mapped_column(String(320))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class NotificationDelivery(Base):
    """One row per channel delivered for a finished task: a retried activity skips these."""

    __tablename__ = "notification_deliveries"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("long_running_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    # `webhook`, `email`; a pause notification is `webhook:pause-N` (N: the task's Nth pause).
    channel: Mapped[str] = mapped_column(String(40), primary_key=True)
    # delivered, or rejected (a permanent refusal: retrying cannot help, so do not).
    outcome: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Receipt(Base):
    """A receipt: synced from Gmail (`gmail_message_id` unique per business) or added by hand."""

    __tablename__ = "receipts"
    __table_args__ = (
        one_of("source", ReceiptSource),
        CheckConstraint(
            "source <> 'gmail' OR gmail_message_id IS NOT NULL", name="gmail_has_message_id"
        ),
        UniqueConstraint(
            "business_id", "gmail_message_id", name="uq_receipts_business_gmail_message"
        ),
        Index("ix_receipts_business_newest", "business_id", text("id DESC")),
        Index("ix_receipts_business_issued", "business_id", "issued_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    source: Mapped[str] = mapped_column(String(20))
    gmail_message_id: Mapped[str | None] = mapped_column(String(64))
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("long_running_tasks.id", ondelete="SET NULL"), index=True
    )
    vendor: Mapped[str] = mapped_column(String(200))
    # Money is Numeric, never float.
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[dt.date] = mapped_column(Date)
    subject: Mapped[str] = mapped_column(Text, server_default="")
    attachments: Mapped[list[Any]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class GmailConnection(Base):
    """A business's connected mailbox; OAuth tokens are Fernet-encrypted at rest."""

    __tablename__ = "gmail_connections"

    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    access_token_enc: Mapped[str] = mapped_column(Text)
    refresh_token_enc: Mapped[str] = mapped_column(Text)
    history_id: Mapped[int | None] = mapped_column(BigInteger)
    last_synced_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ReceiptSyncRun(Base):
    """What one `receipt_sync` task was asked for and what its begin activity decided."""

    __tablename__ = "receipt_sync_runs"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("long_running_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id"))
    query: Mapped[str | None] = mapped_column(Text)
    since: Mapped[dt.date | None] = mapped_column(Date)
    mode: Mapped[str | None] = mapped_column(String(20))
    start_history_id: Mapped[int | None] = mapped_column(BigInteger)
    new_history_id: Mapped[int | None] = mapped_column(BigInteger)
    schedule_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class GmailSyncMessage(Base):
    """Staging for a sync: the listed message ids numbered 1..N, so the total is exact."""

    __tablename__ = "gmail_sync_messages"
    __table_args__ = (
        UniqueConstraint("task_id", "message_id", name="uq_gmail_sync_messages_message"),
    )

    task_id: Mapped[int] = mapped_column(
        ForeignKey("long_running_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64))


class TaskReceiptSelection(Base):
    """Staging for a bulk delete: the selected ids numbered 1..N (raw: maybe not ours)."""

    __tablename__ = "task_receipt_selection"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("long_running_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    receipt_id: Mapped[int] = mapped_column(BigInteger)


class ReceiptDeletePage(Base):
    """One page of a delete by filter: a receipt-id range cut at intake, then what it deleted.

    The page's receipts are recorded as one array, not a ledger row each; the `task_ledger`
    view lists them as the task's succeeded items.
    """

    __tablename__ = "receipt_delete_pages"

    task_id: Mapped[int] = mapped_column(
        ForeignKey("long_running_tasks.id", ondelete="CASCADE"), primary_key=True
    )
    page: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_seq: Mapped[int] = mapped_column(Integer)
    business_id: Mapped[int] = mapped_column(BigInteger)
    after_id: Mapped[int] = mapped_column(BigInteger)
    up_to_id: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str | None] = mapped_column(String(20))
    issued_after: Mapped[dt.date | None] = mapped_column(Date)
    issued_before: Mapped[dt.date | None] = mapped_column(Date)
    expected: Mapped[int] = mapped_column(Integer)
    deleted: Mapped[int | None] = mapped_column(Integer)
    deleted_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    settled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Audience(Base):
    """An uploaded customer list (0005_audiences): its header, import status and counts."""

    __tablename__ = "audiences"
    __table_args__ = (
        one_of("status", AudienceStatus),
        Index("ix_audiences_business_newest", "business_id", text("id DESC")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    business_id: Mapped[int] = mapped_column(ForeignKey("businesses.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), server_default=AudienceStatus.importing.value)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    columns: Mapped[list[str]] = mapped_column(ARRAY(Text))
    phone_column: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str | None] = mapped_column(String(255))
    byte_count: Mapped[int] = mapped_column(BigInteger, server_default="0")
    row_count: Mapped[int] = mapped_column(Integer, server_default="0")
    chunk_rows: Mapped[int] = mapped_column(Integer)
    valid_count: Mapped[int | None] = mapped_column(Integer)
    invalid_count: Mapped[int | None] = mapped_column(Integer)
    duplicate_count: Mapped[int | None] = mapped_column(Integer)
    suppressed_count: Mapped[int | None] = mapped_column(Integer)
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("long_running_tasks.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    ready_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def variables(self) -> list[str]:
        """The columns a template may name, in the order members keep their values."""
        return [c for i, c in enumerate(self.columns) if i != self.phone_column]


class AudienceUploadChunk(Base):
    """Staging: one chunk of uploaded records (an import page), then its normalized numbers."""

    __tablename__ = "audience_upload_chunks"

    audience_id: Mapped[int] = mapped_column(
        ForeignKey("audiences.id", ondelete="CASCADE"), primary_key=True
    )
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True)
    lines: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    records: Mapped[str | None] = mapped_column(Text)
    valid_lines: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    valid_phones: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    valid_vars: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    invalid_count: Mapped[int | None] = mapped_column(Integer)
    normalized_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AudienceMember(Base):
    """A valid, first-seen, not suppressed row of an audience; `seq` numbers them 1..N."""

    __tablename__ = "audience_members"

    audience_id: Mapped[int] = mapped_column(
        ForeignKey("audiences.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    line: Mapped[int] = mapped_column(Integer)
    phone: Mapped[str] = mapped_column(String(20))
    vars: Mapped[list[str]] = mapped_column(ARRAY(Text))


class AudienceError(Base):
    """A row left out of an audience, with its line and reason."""

    __tablename__ = "audience_errors"

    audience_id: Mapped[int] = mapped_column(
        ForeignKey("audiences.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text)
    phone: Mapped[str] = mapped_column(String(64))
    duplicate_of: Mapped[int | None] = mapped_column(Integer)
    vars: Mapped[list[str]] = mapped_column(ARRAY(Text))


class RevokedToken(Base):
    """A revoked bearer token, by business and jti, kept until any such token has expired."""

    __tablename__ = "revoked_tokens"
    __table_args__ = (Index("ix_revoked_tokens_expires_at", "expires_at"),)

    business_id: Mapped[int] = mapped_column(
        ForeignKey("businesses.id", ondelete="CASCADE"), primary_key=True
    )
    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    revoked_by: Mapped[str] = mapped_column(String(200))
    revoked_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class ApiRateLimit(Base):
    """A caller's request budget (GCRA): `tat` is when its budget is full again (0006)."""

    __tablename__ = "api_rate_limits"
    __table_args__ = ({"prefixes": ["UNLOGGED"]},)

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    tat: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """One action on a business's tasks or settings, by whom (0007; append-only)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_business_newest", "business_id", text("id DESC")),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    business_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    action: Mapped[str] = mapped_column(String(64))
    actor_subject: Mapped[str] = mapped_column(String(200))
    actor_role: Mapped[str] = mapped_column(String(20))
    task_id: Mapped[int | None] = mapped_column(BigInteger)
    client_addr: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
