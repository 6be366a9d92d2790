"""Shared by the receipt tests and the receipt fault tests: rows without the API, sandbox facts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowHandle

from devtools.sandbox.gmail import GmailSandbox
from longtasks.db.repositories import gmail as gmail_repo
from longtasks.db.repositories import receipts as receipt_repo
from longtasks.db.repositories import tasks as task_repo
from longtasks.db.repositories.gmail import TokenCipher
from longtasks.db.repositories.receipts import NewReceipt, ReceiptFilter
from longtasks.settings import Settings
from longtasks.temporal.tasks import start_task_workflow


def gmail_sandbox(stack: Any) -> GmailSandbox:
    sandbox = stack.sandbox.gmail
    assert isinstance(sandbox, GmailSandbox), "the test stack serves the Gmail sandbox"
    return sandbox


def mailbox_for(business_id: int) -> str:
    return f"owner-{business_id}@receipts.test"


async def connect_directly(engine: AsyncEngine, settings: Settings, business_id: int) -> str:
    """A connection as `PUT /api/receipts/gmail_connection` stores it (no schedule)."""
    email = mailbox_for(business_id)
    async with engine.begin() as conn:
        await gmail_repo.upsert_connection(
            conn,
            TokenCipher(settings.encryption_keys),
            business_id=business_id,
            email=email,
            refresh_token=f"sandbox:{email}",
        )
    return email


async def create_sync_task(
    engine: AsyncEngine, business_id: int, *, query: str | None = None, since: dt.date | None = None
) -> int:
    async with engine.begin() as conn:
        task = await task_repo.create_task(
            conn, business_id=business_id, task_type="receipt_sync", total_items=0
        )
        await gmail_repo.create_sync_run(
            conn, task_id=task.id, business_id=business_id, query=query, since=since
        )
    return task.id


async def seed_receipts(
    engine: AsyncEngine,
    business_id: int,
    count: int,
    *,
    source: str = "manual",
    first_day: dt.date = dt.date(2025, 1, 1),
) -> list[int]:
    """`count` receipts issued one a day from `first_day`; answers their ids in order."""
    ids = []
    async with engine.begin() as conn:
        for i in range(count):
            receipt_id = await receipt_repo.insert_receipt(
                conn,
                business_id,
                NewReceipt(
                    vendor=f"Vendor {i % 7}",
                    amount=Decimal("10.05") + i,
                    currency="ILS",
                    issued_at=first_day + dt.timedelta(days=i),
                    subject=f"receipt {i}",
                    source=source,
                    gmail_message_id=f"seed-{business_id}-{i}" if source == "gmail" else None,
                ),
            )
            assert receipt_id is not None
            ids.append(receipt_id)
    return ids


async def create_delete_task(engine: AsyncEngine, business_id: int, receipt_ids: list[int]) -> int:
    async with engine.begin() as conn:
        task = await task_repo.create_task(
            conn, business_id=business_id, task_type="receipt_delete", total_items=len(receipt_ids)
        )
        await receipt_repo.select_ids(conn, task.id, receipt_ids)
    return task.id


async def create_filter_delete_task(
    engine: AsyncEngine, business_id: int, page_size: int, **where: Any
) -> tuple[int, int]:
    """A delete by filter as `POST /api/receipts/bulk_delete` plans it; (task id, selected)."""
    async with engine.begin() as conn:
        task = await task_repo.create_task(
            conn, business_id=business_id, task_type="receipt_delete", total_items=0
        )
        selected = await receipt_repo.plan_filter_delete(
            conn, task.id, business_id, ReceiptFilter(**where), page_size
        )
        await task_repo.set_total(conn, task.id, selected)
    return task.id, selected


async def start_task(
    client: Client,
    engine: AsyncEngine,
    queue: str,
    business_id: int,
    task_id: int,
    task_type: str,
) -> WorkflowHandle[Any, Any]:
    async with engine.connect() as conn:
        task = await task_repo.get_task(conn, task_id)
    assert task is not None and task.workflow_id is not None
    return await start_task_workflow(
        client,
        workflow_id=task.workflow_id,
        workflow_name=task_type,
        task_queue=queue,
        task_id=task_id,
        business_id=business_id,
        task_type=task_type,
        summary=f"test {task_type} {task_id}",
    )


async def receipt_count(engine: AsyncEngine, business_id: int, **where: Any) -> int:
    async with engine.connect() as conn:
        return await receipt_repo.count_matching(conn, business_id, ReceiptFilter(**where))


async def stored_receipts(engine: AsyncEngine, business_id: int) -> dict[str, dict[str, Any]]:
    """gmail_message_id -> the stored receipt's fields, for comparing with sandbox facts."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT gmail_message_id, vendor, amount, currency, issued_at, attachments"
                " FROM receipts WHERE business_id = :b AND source = 'gmail'"
            ),
            {"b": business_id},
        )
        return {r[0]: dict(r._mapping) for r in rows}


async def staged_ids(engine: AsyncEngine, task_id: int) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT message_id FROM gmail_sync_messages WHERE task_id = :t ORDER BY seq"),
            {"t": task_id},
        )
        return [r[0] for r in rows]


def expected_outcomes(sandbox: Any, email: str, message_ids: list[str]) -> dict[str, Any]:
    """What the sandbox generated for these messages: receipts (by id), newsletters, malformed."""
    facts = [sandbox.message_facts(email, mid) for mid in message_ids]
    return {
        "receipts": {f.message_id: f for f in facts if f.kind == "receipt"},
        "newsletters": sum(f.kind == "newsletter" for f in facts),
        "malformed": sum(f.kind == "malformed" for f in facts),
    }
