"""Broadcasts and their recipients."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, exists, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.audiences.template_params import MISSING_PARAM
from longtasks.db.models import (
    DEFAULT_FAILURE_SHARE,
    DEFAULT_WINDOW,
    Broadcast,
    BroadcastRecipient,
    Business,
    BusinessPolicy,
)
from longtasks.db.rows import mapped_first
from longtasks.domain import UnconfirmedPolicy

broadcasts = cast(Table, Broadcast.__table__)
recipients = cast(Table, BroadcastRecipient.__table__)
businesses = cast(Table, Business.__table__)
policies = cast(Table, BusinessPolicy.__table__)


@dataclass(frozen=True)
class RecipientInput:
    phone: str
    invalid_reason: str | None = None
    # A retry of a broadcast to an audience: the member this recipient is, whose row
    # personalizes its message.
    member_seq: int | None = None


@dataclass(frozen=True)
class MessageSpec:
    text: str | None
    template_name: str | None
    template_language: str | None
    template_params: list[Any] | None


@dataclass(frozen=True)
class BroadcastForSend:
    """What a send page needs of a broadcast, its business (the sender, its pace and tier) and
    the business's policy: one statement over three tables per page, not one table's row."""

    broadcast_id: int
    business_id: int
    # The number it sends from: recorded when it began, else its business's current one.
    sender_id: str | None
    messages_per_s: float | None
    daily_limit: int | None
    message: MessageSpec
    # The business's policy (business_policies; the defaults without a row).
    daily_send_cap: int | None = None
    auto_pause_failure_share: float | None = DEFAULT_FAILURE_SHARE
    auto_pause_window: int = DEFAULT_WINDOW
    # To an audience: its members, or (`own_list`, a retry) a list of some of them.
    audience_id: int | None = None
    own_list: bool = True
    unconfirmed_policy: UnconfirmedPolicy = UnconfirmedPolicy.at_most_once


@dataclass(frozen=True)
class RecipientRow:
    """What a send needs of a recipient, read on the send path. Not the table's row type
    (`BroadcastRecipient`): a page of 500 read as mapped objects costs ~1-3 ms more (a session,
    instrumented objects), on every page of every broadcast."""

    id: int
    seq: int
    phone: str
    invalid_reason: str | None
    # An audience member's line in its file and its row's variables (personalized messages).
    line: int | None = None
    vars: list[str] | None = None
    # Why the business must not message this recipient now (its suppression list), if so:
    # filled in at send time, whichever list the recipients came from.
    suppressed: str | None = None


_INSERT_RECIPIENTS = text("""
    INSERT INTO broadcast_recipients (broadcast_id, seq, phone, invalid_reason, member_seq)
    SELECT :broadcast_id, ord, p, r, m
    FROM unnest(CAST(:phones AS text[]), CAST(:reasons AS text[]), CAST(:members AS int[]))
        WITH ORDINALITY AS t(p, r, m, ord)
""")


async def create_broadcast(
    conn: AsyncConnection,
    *,
    business_id: int,
    task_id: int,
    name: str,
    message: MessageSpec,
    recipient_list: Sequence[RecipientInput],
    duplicates_dropped: int = 0,
    audience_id: int | None = None,
    recipient_count: int | None = None,
    unconfirmed_policy: UnconfirmedPolicy = UnconfirmedPolicy.at_most_once,
) -> int:
    """A broadcast with its own recipient list (numbered 1..N), or to an audience, whose
    members it reads at send time (`audience_id`, with the audience's member count)."""
    result = await conn.execute(
        insert(broadcasts)
        .values(
            business_id=business_id,
            task_id=task_id,
            name=name,
            unconfirmed_policy=unconfirmed_policy.value,
            message_text=message.text,
            template_name=message.template_name,
            template_language=message.template_language,
            template_params=message.template_params,
            recipient_count=len(recipient_list) if recipient_count is None else recipient_count,
            duplicates_dropped=duplicates_dropped,
            audience_id=audience_id,
        )
        .returning(broadcasts.c.id)
    )
    broadcast_id = int(result.scalar_one())
    if not recipient_list:
        return broadcast_id
    # One statement for the whole list: seq = position, so pages are keyset ranges of seq.
    await conn.execute(
        _INSERT_RECIPIENTS,
        {
            "broadcast_id": broadcast_id,
            "phones": [r.phone for r in recipient_list],
            "reasons": [r.invalid_reason for r in recipient_list],
            "members": [r.member_seq for r in recipient_list],
        },
    )
    return broadcast_id


async def get_for_task(conn: AsyncConnection, task_id: int) -> BroadcastForSend | None:
    result = await conn.execute(
        select(
            broadcasts.c.id,
            broadcasts.c.business_id,
            func.coalesce(broadcasts.c.sender_id, businesses.c.whatsapp_phone_number_id),
            businesses.c.whatsapp_messages_per_s,
            businesses.c.whatsapp_daily_limit,
            broadcasts.c.message_text,
            broadcasts.c.template_name,
            broadcasts.c.template_language,
            broadcasts.c.template_params,
            policies.c.business_id.is_not(None),
            policies.c.daily_send_cap,
            policies.c.auto_pause_failure_share,
            policies.c.auto_pause_window,
            broadcasts.c.audience_id,
            exists().where(recipients.c.broadcast_id == broadcasts.c.id),
            broadcasts.c.unconfirmed_policy,
        )
        .join(businesses, businesses.c.id == broadcasts.c.business_id)
        .outerjoin(policies, policies.c.business_id == broadcasts.c.business_id)
        .where(broadcasts.c.task_id == task_id)
    )
    row = result.first()
    if row is None:
        return None
    has_policy = bool(row[9])
    return BroadcastForSend(
        broadcast_id=row[0],
        business_id=row[1],
        sender_id=row[2],
        messages_per_s=row[3],
        daily_limit=row[4],
        message=MessageSpec(
            text=row[5], template_name=row[6], template_language=row[7], template_params=row[8]
        ),
        daily_send_cap=row[10],
        auto_pause_failure_share=row[11] if has_policy else DEFAULT_FAILURE_SHARE,
        auto_pause_window=row[12] if has_policy else DEFAULT_WINDOW,
        audience_id=row[13],
        own_list=bool(row[14]),
        unconfirmed_policy=UnconfirmedPolicy(row[15]),
    )


async def record_sender(conn: AsyncConnection, broadcast_id: int, sender_id: str) -> None:
    """Fix the number a broadcast sends from when it begins: a business that changes its number
    mid-broadcast does not move sends (and the statuses they expect) to another number."""
    await conn.execute(
        update(broadcasts)
        .where(broadcasts.c.id == broadcast_id, broadcasts.c.sender_id.is_(None))
        .values(sender_id=sender_id)
    )


async def recipient_count(conn: AsyncConnection, broadcast_id: int) -> int:
    result = await conn.execute(
        select(broadcasts.c.recipient_count).where(broadcasts.c.id == broadcast_id)
    )
    return int(result.scalar_one())


async def recipients_page(
    conn: AsyncConnection, broadcast_id: int, *, after_seq: int, up_to_seq: int
) -> list[RecipientRow]:
    """Recipients with after_seq < seq <= up_to_seq: a keyset range on the unique index."""
    result = await conn.execute(
        select(recipients.c.id, recipients.c.seq, recipients.c.phone, recipients.c.invalid_reason)
        .where(
            recipients.c.broadcast_id == broadcast_id,
            recipients.c.seq > after_seq,
            recipients.c.seq <= up_to_seq,
        )
        .order_by(recipients.c.seq)
    )
    return [RecipientRow(id=r[0], seq=r[1], phone=r[2], invalid_reason=r[3]) for r in result]


async def broadcast_id_for_task(conn: AsyncConnection, task_id: int) -> int | None:
    result = await conn.execute(select(broadcasts.c.id).where(broadcasts.c.task_id == task_id))
    value = result.scalar()
    return int(value) if value is not None else None


async def get_broadcast_of_task(conn: AsyncConnection, task_id: int) -> Broadcast | None:
    """The broadcast a task sends: what it was asked to send (a retry sends the same)."""
    return await mapped_first(conn, select(Broadcast).where(Broadcast.task_id == task_id))


def message_of(broadcast: Broadcast) -> MessageSpec:
    return MessageSpec(
        text=broadcast.message_text,
        template_name=broadcast.template_name,
        template_language=broadcast.template_language,
        template_params=broadcast.template_params,
    )


# Failures a new attempt cannot fix, or must not try: a number that is not one, a recipient
# who opted out (our suppression, or WhatsApp's 131050), a member whose row leaves a template
# parameter empty, and a send counted failed `unconfirmed` by the at_most_once policy (it may
# have reached the recipient: re-sending it is what at_most_once promised not to do).
NOT_RETRYABLE_CODES = ("invalid_phone", "opted_out", "131050", MISSING_PARAM, "unconfirmed")

# A recipient's ledger item is its seq in the broadcast. Only valid numbers that failed with a
# retryable code, and never a number the task reached (succeeded) under another item.
_RETRYABLE = text("""
    SELECT r.phone, r.member_seq
    FROM task_items ti
    JOIN broadcast_recipients r ON r.broadcast_id = :broadcast AND r.seq = ti.seq
    WHERE ti.task_id = :task AND ti.status = 'failed'
      AND r.invalid_reason IS NULL
      AND coalesce(ti.error_code, '') <> ALL(CAST(:excluded AS text[]))
      AND (CAST(:codes AS text[]) IS NULL OR ti.error_code = ANY(CAST(:codes AS text[])))
      AND NOT EXISTS (
          SELECT 1 FROM task_items s
          JOIN broadcast_recipients rs ON rs.broadcast_id = :broadcast AND rs.seq = s.seq
          WHERE s.task_id = :task AND s.status = 'succeeded' AND rs.phone = r.phone)
    ORDER BY r.seq
""")


# A broadcast to a whole audience: its items are the members' seqs (numbers are unique there).
_RETRYABLE_MEMBERS = text("""
    SELECT m.phone, m.seq
    FROM task_items ti
    JOIN audience_members m ON m.audience_id = :audience AND m.seq = ti.seq
    WHERE ti.task_id = :task AND ti.status = 'failed'
      AND coalesce(ti.error_code, '') <> ALL(CAST(:excluded AS text[]))
      AND (CAST(:codes AS text[]) IS NULL OR ti.error_code = ANY(CAST(:codes AS text[])))
    ORDER BY ti.seq
""")


async def retryable_failures(
    conn: AsyncConnection,
    task_id: int,
    broadcast: Broadcast,
    *,
    error_codes: Sequence[str] | None,
) -> list[RecipientInput]:
    """The recipients of a finished broadcast's items that failed retryably, in send order;
    for a broadcast to an audience, as the members they are (a retry personalizes them)."""
    to_members = broadcast.audience_id is not None and not await _has_own_list(conn, broadcast.id)
    result = await conn.execute(
        _RETRYABLE_MEMBERS if to_members else _RETRYABLE,
        {
            "task": task_id,
            "broadcast": broadcast.id,
            "audience": broadcast.audience_id,
            "excluded": list(NOT_RETRYABLE_CODES),
            "codes": list(error_codes) if error_codes is not None else None,
        },
    )
    return [RecipientInput(phone=r[0], member_seq=r[1]) for r in result]


async def _has_own_list(conn: AsyncConnection, broadcast_id: int) -> bool:
    found = await conn.execute(select(exists().where(recipients.c.broadcast_id == broadcast_id)))
    return bool(found.scalar())


async def members_of_list_page(
    conn: AsyncConnection, broadcast_id: int, audience_id: int, *, after_seq: int, up_to_seq: int
) -> list[RecipientRow]:
    """A retry's recipients (some members of an audience) with their rows' line and values."""
    result = await conn.execute(
        text(
            "SELECT r.id, r.seq, r.phone, m.line, m.vars FROM broadcast_recipients AS r"
            " JOIN audience_members AS m ON m.audience_id = :a AND m.seq = r.member_seq"
            " WHERE r.broadcast_id = :b AND r.seq > :after AND r.seq <= :up ORDER BY r.seq"
        ),
        {"a": audience_id, "b": broadcast_id, "after": after_seq, "up": up_to_seq},
    )
    return [RecipientRow(r[0], r[1], r[2], None, r[3], list(r[4])) for r in result]
