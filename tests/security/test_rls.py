"""The database as the second wall: row-level security between businesses.

- Every table of the live schema either holds a business's data and has RLS enabled and
  FORCED with a `tenant` policy, or is exempt here with the reason. A table added by anyone
  later fails this until it is one or the other; every view reads with its caller's policies.
- With the filter removed entirely (`SELECT * FROM <table>`), the application's role acting
  for business A sees A's rows and nothing of B's, and acting for no business sees nothing.
- Every repository read, given B's ids while acting for A (a query whose business filter is
  missing or wrong), returns nothing of B's; a read added later fails the inventory test
  until it is listed here.
- Writes: B's rows cannot be changed or deleted from A, nor rows claiming B inserted.
- The paths that must cross businesses are named functions, listed here, and the role the
  services use owns nothing and cannot bypass RLS.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import pkgutil
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, NoResultFound
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import longtasks.db.repositories as repositories_package
from longtasks.audiences.csv_intake import Chunk, Header
from longtasks.db.models import Broadcast, BusinessPolicy
from longtasks.db.repositories import (
    audiences,
    audit,
    broadcasts,
    businesses,
    gmail,
    ledger,
    notifications,
    ops,
    pacing,
    policies,
    previews,
    receipts,
    revocations,
    send_days,
    send_limits,
    suppressions,
    unconfirmed,
)
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.audit import Actor, AuditAction
from longtasks.db.repositories.broadcasts import MessageSpec, RecipientInput
from longtasks.db.repositories.gmail import TokenCipher
from longtasks.db.repositories.ledger import ClaimRequest, Outcome
from longtasks.db.repositories.receipts import NewReceipt, ReceiptFilter
from longtasks.db.tenancy import acting_for, check_role
from longtasks.domain import TERMINAL_STATUSES, ItemStatus, TaskStatus
from tests.conftest import FaultReport, SecurityRow, Stack

# Tables that hold no business's data, and why.
EXEMPT = {
    "alembic_version": "Alembic's bookkeeping; the application's role has no grant on it",
    "api_rate_limits": "request budgets keyed by caller, charged before any business is"
    " known (unauthenticated callers by address); no business's data",
    "task_types": "the names of the task types, shared by every business",
}
# The functions through which work crosses businesses (SECURITY DEFINER, owned by the owner).
NAMED_PATHS = {
    "longtasks_task_business": "an activity learns which business its task is for",
    "longtasks_cleanup_terminal": "the daily cleanup deletes old terminal tasks of all",
    "longtasks_task_counts": "/metrics counts tasks by type and status, counts only",
    "longtasks_status_businesses": "the token-less WhatsApp webhook learns which business each"
    " status is for, then acts for it",
    "longtasks_sender_businesses": "the webhook learns which businesses a STOP reply's number"
    " sends for, then acts for each",
    "longtasks_prune_status_inbox": "the daily cleanup forgets unknown statuses of every sender",
}


@dataclass
class Seeded:
    business_id: int
    sender_id: str
    broadcast_task: int
    broadcast_id: int
    delete_task: int
    filter_task: int
    sync_task: int
    receipt_id: int
    schedule_key: str
    gmail_message_id: str
    audience_id: int = 0
    import_task: int = 0


async def seed(engine: AsyncEngine, stack: Stack, business_id: int) -> Seeded:
    """A row of this business in every table that holds one, written as the owner."""
    cipher = TokenCipher(stack.settings.encryption_keys)
    sender = f"pn-{business_id}"  # the sender new_business gave it
    key = f"rls-{uuid.uuid4().hex}"
    message_id = f"msg-{uuid.uuid4().hex[:12]}"
    async with engine.begin() as conn:
        await businesses.ensure_business(conn, business_id, whatsapp_phone_number_id=sender)
        broadcast_task = await task_repo.create_task(
            conn, business_id=business_id, task_type="broadcast", total_items=2
        )
        broadcast_id = await broadcasts.create_broadcast(
            conn,
            business_id=business_id,
            task_id=broadcast_task.id,
            name="rls",
            message=MessageSpec("hi", None, None, None),
            recipient_list=[RecipientInput("+972523000001"), RecipientInput("+972523000002")],
        )
        await ledger.claim(
            conn,
            broadcast_task.id,
            [ClaimRequest("1", 1, "+972523000001"), ClaimRequest("2", 2, "+972523000002")],
        )
        await ledger.settle(conn, broadcast_task.id, [Outcome("1", ItemStatus.succeeded)])
        receipt_id = await receipts.insert_receipt(
            conn,
            business_id,
            NewReceipt("Shop", Decimal("12.50"), "ILS", dt.date(2026, 1, 1), "a receipt", (),
                       "gmail", message_id),
            task_id=broadcast_task.id,
        )  # fmt: skip
        assert receipt_id is not None
        delete_task = await task_repo.create_task(
            conn, business_id=business_id, task_type="receipt_delete", total_items=1
        )
        await receipts.select_ids(conn, delete_task.id, [receipt_id])
        filter_task = await task_repo.create_task(
            conn, business_id=business_id, task_type="receipt_delete", total_items=1
        )
        await receipts.plan_filter_delete(
            conn, filter_task.id, business_id, ReceiptFilter(source="gmail"), 1000
        )
        sync_task = await task_repo.create_task(
            conn, business_id=business_id, task_type="receipt_sync", total_items=0
        )
        await gmail.upsert_connection(
            conn, cipher, business_id=business_id, email=f"b{business_id}@example.com",
            refresh_token="refresh",
        )  # fmt: skip
        await gmail.create_sync_run(
            conn, task_id=sync_task.id, business_id=business_id, query=None, since=None,
            schedule_key=key,
        )  # fmt: skip
        await gmail.stage_message_ids(conn, sync_task.id, [message_id])
        await notifications.put_config(
            conn, business_id, webhook_url="https://hooks.example.com/x",
            webhook_secret_encrypted="x", email_to=None,
        )  # fmt: skip
        await notifications.record_delivery(conn, broadcast_task.id, "webhook", "delivered")
        await revocations.revoke(
            conn, business_id=business_id, jti=f"jti-{business_id}", revoked_by="x", keep_s=60
        )
        await audit.record(
            conn, AuditAction.token_revoked, actor=Actor(business_id, "someone", "admin")
        )
        await pacing.reserve_slots(conn, sender, 1, 0.01)
        # A cancelled broadcast, and a finished delete, for the reads that look for them.
        await task_repo.request_cancel(conn, broadcast_task.id, "rls test")
        await task_repo.finish(conn, delete_task.id, TaskStatus.completed)
        await pacing.reserve_daily_budget(conn, sender, ["+972523000001"], 100)
        # Issue 14's controls: a policy, a day's reservation, a retry's child, a task paused
        # by the quota, and a failure a retry would send again.
        await policies.put_policy(
            conn, business_id, {"daily_send_cap": 1000, "approval_required_above": 5}, by="x"
        )
        await send_days.reserve(conn, business_id, 1, 1000)
        await task_repo.create_task(
            conn, business_id=business_id, task_type="broadcast", total_items=1,
            parent_task_id=broadcast_task.id,
        )  # fmt: skip
        waiting = await task_repo.create_task(
            conn, business_id=business_id, task_type="broadcast", total_items=1
        )
        await task_repo.mark_waiting(conn, waiting.id, "daily send cap reached")
        await ledger.settle(conn, broadcast_task.id, [Outcome("2", ItemStatus.failed, "131026")])
        await ledger.claim(conn, broadcast_task.id, [ClaimRequest("3", 3, "+972523000003")])
        import_task = await task_repo.create_task(
            conn, business_id=business_id, task_type="audience_import", total_items=1
        )
        # Issue 12: an item sent but not confirmed, a suppression, the sender's webhook health
        # and a status waiting in its inbox.
        await ledger.claim(conn, broadcast_task.id, [ClaimRequest("4", 4, "+972523000004")])
        await conn.execute(
            text(
                "UPDATE task_items SET status = 'unconfirmed' WHERE task_id = :t AND item_key = '4'"
            ),
            {"t": broadcast_task.id},
        )
        await suppressions.add(
            conn, [(business_id, "+972523000001")], reason=suppressions.OPTED_OUT, source="rls"
        )
        await conn.execute(
            text(
                "INSERT INTO wa_webhook_health (sender_id, newest_dispatch_with_status,"
                " last_status_at) VALUES (:s, now(), now())"
            ),
            {"s": sender},
        )
        await conn.execute(
            text(
                "INSERT INTO wa_status_inbox (wamid, status, phone_number_id, occurred_at)"
                " VALUES (:w, 'delivered', :s, now())"
            ),
            {"s": sender, "w": f"wamid.rls.{business_id}"},
        )
    # An audience, uploaded as the application's role through the same COPY path the API uses.
    header = Header(("phone", "name"), 0, ",")
    with acting_for(business_id):
        async with stack.app_engine.begin() as conn:
            audience_id = await audiences.create(
                conn, business_id=business_id, name="rls", filename="rls.csv", header=header,
                chunk_rows=10,
            )  # fmt: skip
            async with audiences.chunk_writer(conn, audience_id) as writer:
                await writer.write([Chunk(0, [2], "+972523000001\x1fAda")])
            await audiences.uploaded(
                conn, audience_id, row_count=1, byte_count=20, task_id=import_task.id
            )
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO audience_members (audience_id, seq, line, phone, vars)"
                " VALUES (:a, 1, 2, '+972523000001', '{Ada}');"
            ),
            {"a": audience_id},
        )
        await conn.execute(
            text(
                "INSERT INTO audience_errors (audience_id, line, reason, detail, phone, vars)"
                " VALUES (:a, 3, 'invalid_phone', 'not a number', 'nope', '{}')"
            ),
            {"a": audience_id},
        )
        await conn.execute(
            text("UPDATE audiences SET status = 'ready' WHERE id = :a"), {"a": audience_id}
        )
        await conn.execute(
            text("UPDATE broadcasts SET audience_id = :a WHERE id = :b"),
            {"a": audience_id, "b": broadcast_id},
        )
        await conn.execute(
            text("UPDATE broadcast_recipients SET member_seq = seq WHERE broadcast_id = :b"),
            {"b": broadcast_id},
        )
    return Seeded(
        business_id=business_id,
        sender_id=sender,
        broadcast_task=broadcast_task.id,
        broadcast_id=broadcast_id,
        delete_task=delete_task.id,
        filter_task=filter_task.id,
        sync_task=sync_task.id,
        receipt_id=receipt_id,
        schedule_key=key,
        gmail_message_id=message_id,
        audience_id=audience_id,
        import_task=import_task.id,
    )


@pytest.fixture
async def two(stack: Stack, new_business: Callable[[], Awaitable[int]]) -> tuple[Seeded, Seeded]:
    return (
        await seed(stack.engine, stack, await new_business()),
        await seed(stack.engine, stack, await new_business()),
    )


async def _tables(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    rows = await conn.execute(
        text("""
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   ARRAY(SELECT polname FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
                   EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                           AND a.attname = 'business_id' AND NOT a.attisdropped) AS has_business
            FROM pg_class c
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
        """)
    )
    return {r.relname: dict(r._mapping) for r in rows}


async def test_every_table_of_a_business_has_forced_row_level_security(
    stack: Stack, fault_report: FaultReport
) -> None:
    async with stack.engine.connect() as conn:
        tables = await _tables(conn)
        references = await conn.execute(
            text("""
                SELECT c.relname, f.relname FROM pg_constraint k
                JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class f ON f.oid = k.confrelid
                WHERE k.contype = 'f' AND c.relnamespace = 'public'::regnamespace
            """)
        )
        parents = [(r[0], r[1]) for r in references]
        views = await conn.execute(
            text(
                "SELECT c.relname, coalesce(c.reloptions, '{}') FROM pg_class c"
                " WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'v'"
            )
        )
        view_options = {r[0]: list(r[1]) for r in views}
    covered = sorted(t for t in tables if t not in EXEMPT)
    unwalled = [
        t
        for t in covered
        if not (
            tables[t]["relrowsecurity"]
            and tables[t]["relforcerowsecurity"]
            and "tenant" in tables[t]["policies"]
        )
    ]
    assert not unwalled, (
        f"tables without forced row-level security and a tenant policy: {unwalled}; enable and"
        " force it in the table's migration (see 0013_row_level_security) or, if it holds no"
        " business's data, add it to EXEMPT with the reason"
    )
    for table in EXEMPT:
        if table not in tables:
            continue
        assert not tables[table]["has_business"], f"{table} has a business_id: not exempt"
        assert not [p for c, p in parents if c == table and p in covered], (
            f"{table} points at a business's rows: not exempt"
        )
    assert all("security_invoker=true" in opts for opts in view_options.values()), view_options
    fault_report.add_security(
        SecurityRow(
            area="RLS",
            check=f"tables with RLS enabled and forced, tenant policy: {', '.join(covered)};"
            f" exempt: {', '.join(sorted(EXEMPT))}; views security_invoker:"
            f" {', '.join(sorted(view_options))}",
            cases=len(tables) + len(view_options),
            outcome=f"{len(covered)} tables walled, {len(EXEMPT)} exempt with a reason",
        )
    )


async def _count(engine: AsyncEngine, table: str, where: str = "true") -> int:
    async with engine.connect() as conn:
        result = await conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"))
        return int(result.scalar_one())


def _belongs(table: str, seeded: Seeded) -> str:
    """SQL (for the owner) selecting the rows of `table` that are `seeded`'s business's."""
    b = seeded.business_id
    tasks_of_b = f"(SELECT id FROM long_running_tasks WHERE business_id = {b})"
    broadcasts_of_b = f"(SELECT id FROM broadcasts WHERE business_id = {b})"
    audiences_of_b = f"(SELECT id FROM audiences WHERE business_id = {b})"
    special = {
        "businesses": f"id = {b}",
        "broadcast_recipients": f"broadcast_id IN {broadcasts_of_b}",
        "sender_pacing": f"sender_id = '{seeded.sender_id}'",
        "sender_contacts": f"sender_id = '{seeded.sender_id}'",
        "wa_webhook_health": f"sender_id = '{seeded.sender_id}'",
        "wa_status_inbox": f"phone_number_id = '{seeded.sender_id}'",
    }
    if table in special:
        return special[table]
    if table.startswith("audience_"):
        return f"audience_id IN {audiences_of_b}"
    return f"business_id = {b}" if table in _WITH_BUSINESS else f"task_id IN {tasks_of_b}"


_WITH_BUSINESS: set[str] = set()


async def test_unfiltered_reads_show_the_acting_business_only(
    stack: Stack, two: tuple[Seeded, Seeded], fault_report: FaultReport
) -> None:
    a, b = two
    async with stack.engine.connect() as conn:
        tables = await _tables(conn)
    walled = sorted(t for t in tables if t not in EXEMPT and tables[t]["relrowsecurity"])
    _WITH_BUSINESS.update(t for t in walled if tables[t]["has_business"])
    seen_rows = 0
    for table in walled:
        mine = await _count(stack.engine, table, _belongs(table, a))
        theirs = await _count(stack.engine, table, _belongs(table, b))
        assert mine > 0 and theirs > 0, (table, "seed a row of each business in it")
        with acting_for(a.business_id):
            everything = await _count(stack.app_engine, table)
            leaked = await _count(stack.app_engine, table, _belongs(table, b))
        # What A sees with no filter at all is exactly A's rows.
        assert (everything, leaked) == (mine, 0), (table, everything, mine, leaked)
        with acting_for(None):
            nobody = await _count(stack.app_engine, table)
        assert nobody == 0, (table, nobody)
        seen_rows += everything
    fault_report.add_security(
        SecurityRow(
            area="RLS",
            check=f"`SELECT * FROM <table>` (no filter) as the application's role acting for"
            f" business A, on each of {len(walled)} walled tables holding rows of A and B;"
            " and acting for no business",
            cases=len(walled) * 2,
            outcome=f"{seen_rows} rows of A seen, 0 rows of B leaked; 0 rows with no business",
        )
    )


def _reads(b: Seeded, stack: Stack) -> dict[str, Callable[[AsyncConnection], Awaitable[Any]]]:
    """Each repository read, given B's ids (and no business filter where it takes none)."""
    t, bid, a = b.broadcast_task, b.business_id, b.audience_id
    everything = ReceiptFilter()
    # B's broadcast as the retry reads it (a row object; what matters is the ids it carries).
    broadcast_of_b = Broadcast(id=b.broadcast_id, audience_id=b.audience_id)
    return {
        "audit.list_events": lambda c: audit.list_events(c, bid, limit=100),
        "broadcasts.get_for_task": lambda c: broadcasts.get_for_task(c, t),
        "broadcasts.recipient_count": lambda c: broadcasts.recipient_count(c, b.broadcast_id),
        "broadcasts.recipients_page": lambda c: broadcasts.recipients_page(
            c, b.broadcast_id, after_seq=0, up_to_seq=100
        ),
        "broadcasts.broadcast_id_for_task": lambda c: broadcasts.broadcast_id_for_task(c, t),
        "businesses.exists": lambda c: businesses.exists(c, bid),
        "gmail.get_connection": lambda c: gmail.get_connection(c, bid),
        "gmail.get_sync_run": lambda c: gmail.get_sync_run(c, b.sync_task),
        "gmail.task_for_schedule_key": lambda c: gmail.task_for_schedule_key(c, b.schedule_key),
        "gmail.running_sync_task": lambda c: gmail.running_sync_task(c, bid),
        "gmail.staged_count": lambda c: gmail.staged_count(c, b.sync_task),
        "gmail.staged_page": lambda c: gmail.staged_page(
            c, b.sync_task, after_seq=0, up_to_seq=100
        ),
        "ledger.count_claimed": lambda c: ledger.count_claimed(c, t, ["1", "2", "3"]),
        "ledger.list_items": lambda c: ledger.list_items(c, t, status=None, after=None, limit=100),
        "notifications.get_config": lambda c: notifications.get_config(c, bid),
        "notifications.settled_channels": lambda c: notifications.settled_channels(c, t),
        "ops.list_unfinished": lambda c: ops.list_unfinished(
            c, bid, task_type=None, created_before=None, limit=100
        ),
        "ops.count_terminal": lambda c: ops.count_terminal(
            c, bid, task_type=None, created_before=None
        ),
        "receipts.task_of_gmail_message": lambda c: receipts.task_of_gmail_message(
            c, bid, b.gmail_message_id
        ),
        "receipts.list_receipts": lambda c: receipts.list_receipts(
            c, bid, where=everything, before_id=None, limit=100
        ),
        "receipts.count_matching": lambda c: receipts.count_matching(c, bid, everything),
        "receipts.selection_count": lambda c: receipts.selection_count(c, b.delete_task),
        "receipts.filter_delete_plan": lambda c: receipts.filter_delete_plan(c, b.filter_task),
        "receipts.filter_delete_counts": lambda c: receipts.filter_delete_counts(c, b.filter_task),
        "revocations.is_revoked": lambda c: revocations.is_revoked(
            c, business_id=bid, jti=f"jti-{bid}"
        ),
        "tasks.get_task": lambda c: task_repo.get_task(c, t),
        "tasks.list_tasks": lambda c: task_repo.list_tasks(c, bid, limit=100),
        "tasks.is_cancel_requested": lambda c: task_repo.is_cancel_requested(c, t),
        "tasks.children_of": lambda c: _values(task_repo.children_of(c, [t])),
        "tasks.control_flags": lambda c: task_repo.control_flags(c, t),
        "tasks.waiting_on_quota": lambda c: task_repo.waiting_on_quota(c, bid),
        "broadcasts.get_broadcast_of_task": lambda c: broadcasts.get_broadcast_of_task(c, t),
        "broadcasts.retryable_failures": lambda c: broadcasts.retryable_failures(
            c, t, broadcast_of_b, error_codes=None
        ),
        "broadcasts.members_of_list_page": lambda c: broadcasts.members_of_list_page(
            c, b.broadcast_id, b.audience_id, after_seq=0, up_to_seq=100
        ),
        "ledger.settled_keys": lambda c: ledger.settled_keys(c, t, after_seq=0, up_to_seq=100),
        "previews.broadcast_preview": lambda c: previews.broadcast_preview(
            c, t, default_messages_per_s=10.0
        ),
        "policies.get_policy": lambda c: _policy_fields(policies.get_policy(c, bid)),
        "send_days.used_today": lambda c: send_days.used_today(c, bid),
        "send_limits.send_limits": lambda c: send_limits.send_limits(
            c, bid, default_messages_per_s=0.0
        ),
        "audiences.get": lambda c: audiences.get(c, a, bid),
        "audiences.get_for_task": lambda c: audiences.get_for_task(c, b.import_task),
        "audiences.list_for_business": lambda c: audiences.list_for_business(
            c, bid, before_id=None, limit=100
        ),
        "audiences.list_errors": lambda c: audiences.list_errors(c, a, after_line=None, limit=100),
        "audiences.members_page": lambda c: audiences.members_page(
            c, a, after_seq=0, up_to_seq=100
        ),
        "audiences.lock_ready": lambda c: audiences.lock_ready(c, a),
        "audiences.running_broadcasts": lambda c: audiences.running_broadcasts(c, a),
        "audiences.staged_chunk": lambda c: audiences.staged_chunk(c, a, 0),
        "suppressions.active_for": lambda c: suppressions.active_for(c, bid, ["+972523000001"]),
        "unconfirmed.proven_after": lambda c: unconfirmed.proven_after(c, b.sender_id),
        "unconfirmed.outlook": lambda c: _outlook(
            unconfirmed.outlook(c, t, sender_id=b.sender_id, grace_s=0.0, max_wait_s=0.0)
        ),
    }


async def _outlook(outlook: Awaitable[unconfirmed.Outlook]) -> int:
    """How many of B's items are still unconfirmed."""
    return (await outlook).remaining


async def _values(children: Awaitable[dict[int, list[int]]]) -> list[int]:
    return [child for found in (await children).values() for child in found]


async def _policy_fields(policy: Awaitable[BusinessPolicy]) -> tuple[Any, ...]:
    """What a business set (the defaults are anyone's)."""
    got = await policy
    return (got.daily_send_cap, got.approval_required_above, got.updated_by)


# Repository functions that are not reads of a business's rows, by kind (the inventory test
# fails for any function in no list: a new read must be added to _reads).
WRITES = {
    "audit.record", "broadcasts.create_broadcast", "businesses.ensure_business",
    "gmail.upsert_connection", "gmail.store_access_token", "gmail.store_history_id",
    "gmail.create_sync_run", "gmail.set_sync_mode", "gmail.raise_new_history_id",
    "gmail.stage_message_ids", "ledger.claim", "ledger.settle", "ledger.release",
    "notifications.put_config", "notifications.delete_config", "notifications.record_delivery",
    "pacing.reserve_slots", "pacing.reserve_daily_budget", "receipts.insert_receipt",
    "receipts.select_ids", "receipts.delete_batch", "receipts.plan_filter_delete",
    "receipts.delete_filter_page", "revocations.revoke", "tasks.create_task",
    "tasks.request_cancel", "tasks.mark_running", "tasks.set_total", "tasks.raise_counts",
    "tasks.set_status_reason", "tasks.add_counts", "tasks.finish", "tasks.delete_task",
    "task_types.ensure", "audiences.create", "audiences.uploaded", "audiences.lock",
    "audiences.delete_audience", "audiences.save_normalized", "audiences.finalize",
    "audiences.mark_failed", "policies.put_policy", "send_days.reserve", "send_days.refund",
    "tasks.request_pause", "tasks.auto_pause", "tasks.record_outcomes", "tasks.request_resume",
    "tasks.mark_paused", "tasks.mark_resumed", "tasks.mark_waiting", "tasks.approve",
    "tasks.reject", "tasks.expire", "broadcasts.record_sender", "ledger.mark_dispatched",
    "ledger.unmark_dispatched", "suppressions.add", "tasks.drop_pause_with_nothing_left",
    "unconfirmed.settle_and_decide", "deliveries.apply_statuses",
    "deliveries.drain_inbox",
}  # fmt: skip
CROSS_BUSINESS = {
    "ops.delete_terminal_before": "longtasks_cleanup_terminal",
    "tasks.count_by_status": "longtasks_task_counts",
    "key_rotation.rotate_gmail_tokens": "rotate-keys runs as the owner",
    "key_rotation.rotate_webhook_secrets": "rotate-keys runs as the owner",
    "gmail.connected_business_ids": "acting for a business it lists that one only",
    "deliveries.businesses_of_statuses": "longtasks_status_businesses",
    "suppressions.businesses_of_sender": "longtasks_sender_businesses",
    "deliveries.prune_inbox": "longtasks_prune_status_inbox",
}
NOT_BUSINESS_DATA = {
    "admission.admit", "admission.prune", "task_types.known",
    "ledger.commit_without_waiting_for_disk",
}  # fmt: skip


def _repository_functions() -> set[str]:
    found = set()
    for module_info in pkgutil.iter_modules(repositories_package.__path__):
        module = importlib.import_module(f"{repositories_package.__name__}.{module_info.name}")
        for name, fn in inspect.getmembers(module, inspect.iscoroutinefunction):
            if not name.startswith("_") and fn.__module__ == module.__name__:
                found.add(f"{module_info.name}.{name}")
    return found


def test_every_repository_function_is_accounted_for(stack: Stack) -> None:
    reads = set(_reads(Seeded(1, "s", 1, 1, 1, 1, 1, 1, "k", "m"), stack))
    listed = reads | WRITES | set(CROSS_BUSINESS) | NOT_BUSINESS_DATA
    unlisted = sorted(_repository_functions() - listed)
    assert not unlisted, (
        f"repository functions in no list of tests/security/test_rls.py: {unlisted}; a read"
        " of a business's rows goes in _reads (and is then run with another business's ids)"
    )
    assert not (listed - _repository_functions()), sorted(listed - _repository_functions())


def _nothing(value: Any) -> bool:
    if isinstance(value, tuple) and not hasattr(value, "__dataclass_fields__"):
        return all(v in (None, 0, False) for v in value)
    return value in (None, 0, False, [], set(), (), {}) or (
        hasattr(value, "__dataclass_fields__")
        and all(v in (None, 0, False) for v in vars(value).values())
    )


async def test_repository_reads_with_another_business_s_ids_return_nothing(
    stack: Stack, two: tuple[Seeded, Seeded], fault_report: FaultReport
) -> None:
    a, b = two
    reads = _reads(b, stack)
    for name, read in reads.items():
        # The same read as the owner (past RLS) finds B's rows: the read itself works.
        async with stack.engine.connect() as conn:
            assert not _nothing(await read(conn)), (name, "the seed should give it something")
        with acting_for(a.business_id):
            async with stack.app_engine.connect() as conn:
                try:
                    result = await read(conn)
                except NoResultFound:  # `scalar_one` over no visible row: nothing either
                    result = None
        assert _nothing(result), (name, result)
    fault_report.add_security(
        SecurityRow(
            area="RLS",
            check=f"{len(reads)} repository reads run acting for A with B's ids and business"
            f" (filters pointing at B, or none): {', '.join(sorted(reads))}",
            cases=len(reads),
            outcome="0 rows of B returned (as the owner, each returns B's rows)",
        )
    )


async def test_writes_cannot_reach_another_business(
    stack: Stack, two: tuple[Seeded, Seeded]
) -> None:
    a, b = two
    with acting_for(a.business_id):
        async with stack.app_engine.begin() as conn:
            for statement in (
                "UPDATE long_running_tasks SET error_message = 'mallory was here'"
                f" WHERE id = {b.broadcast_task}",
                f"DELETE FROM receipts WHERE id = {b.receipt_id}",
                f"UPDATE task_items SET status = 'failed' WHERE task_id = {b.broadcast_task}",
                f"DELETE FROM notification_settings WHERE business_id = {b.business_id}",
            ):
                assert (await conn.execute(text(statement))).rowcount == 0, statement
        for statement in (
            "INSERT INTO long_running_tasks (business_id, task_type, total_items)"
            f" VALUES ({b.business_id}, 'broadcast', 1)",
            "INSERT INTO task_items (business_id, task_id, item_key, seq, status)"
            f" VALUES ({b.business_id}, {b.broadcast_task}, 'x', 99, 'sending')",
            f"INSERT INTO audit_events (business_id, action, actor_subject, actor_role)"
            f" VALUES ({b.business_id}, 'task.deleted', 'mallory', 'admin')",
        ):
            with pytest.raises(DBAPIError, match="row-level security"):
                async with stack.app_engine.begin() as conn:
                    await conn.execute(text(statement))
        # An item of A's own business in B's task: the (business_id, task_id) key refuses it
        # (it could otherwise take a key B's own claim would then skip).
        with pytest.raises(DBAPIError, match="fk_task_items_business_id_long_running_tasks"):
            async with stack.app_engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO task_items (business_id, task_id, item_key, seq, status)"
                        f" VALUES ({a.business_id}, {b.broadcast_task}, 'x', 99, 'sending')"
                    )
                )
    async with stack.engine.connect() as conn:
        task = await task_repo.get_task(conn, b.broadcast_task)
    assert task is not None and task.error_message is None


async def test_the_services_role_owns_nothing_and_named_paths_are_the_only_way_across(
    stack: Stack, fault_report: FaultReport
) -> None:
    check = await check_role(stack.app_engine)
    assert check.walled, check
    owner = await check_role(stack.engine)
    assert not owner.walled  # the owner (here a superuser) is not what services use
    async with stack.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT p.proname, p.prosecdef, has_function_privilege(:role, p.oid, 'EXECUTE')"
                " FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace"
                " AND p.proname LIKE 'longtasks\\_%'"
            ),
            {"role": check.role},
        )
        functions = {r[0]: (r[1], r[2]) for r in rows}
        audit_grants = await conn.execute(
            text(
                "SELECT privilege_type FROM information_schema.role_table_grants"
                " WHERE grantee = :role AND table_name = 'audit_events'"
            ),
            {"role": check.role},
        )
        audit_privileges = {r[0] for r in audit_grants}
        cleanup = (
            await conn.execute(
                text(
                    "SELECT pg_get_function_identity_arguments(p.oid), p.prosrc FROM pg_proc p"
                    " WHERE p.proname = 'longtasks_cleanup_terminal'"
                )
            )
        ).one()
    # The cleanup states its statuses itself, the domain's terminal ones: no argument lets a
    # caller widen it to other businesses' running tasks.
    assert cleanup[0] == "p_cutoff timestamp with time zone, p_limit integer", cleanup[0]
    statuses = set(re.findall(r"'(\w+)'", cleanup[1])) & {s.value for s in TaskStatus}
    assert statuses == {s.value for s in TERMINAL_STATUSES}, statuses
    definers = {name for name, (definer, _) in functions.items() if definer}
    assert definers == set(NAMED_PATHS), definers
    assert all(functions[name][1] for name in NAMED_PATHS)
    assert audit_privileges == {"INSERT", "SELECT"}, audit_privileges
    fault_report.add_security(
        SecurityRow(
            area="RLS",
            check=f"the services' role {check.role}: superuser, BYPASSRLS, tables owned;"
            " cross-business paths: " + "; ".join(f"{k} ({v})" for k, v in NAMED_PATHS.items()),
            cases=len(NAMED_PATHS) + 3,
            outcome="owns nothing, cannot bypass RLS; only the named functions cross"
            " businesses; audit log: INSERT and SELECT only",
        )
    )
