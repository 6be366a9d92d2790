"""Dev mode's Gmail: business 1 connected to the sandbox mailbox, with its sync Schedule.

The sandbox registers a refresh token spelled `sandbox:<email>` on first use, so a new user can
sync at once: `POST /api/receipts/sync` with `{}` (a full sync the first time).
"""

from __future__ import annotations

from longtasks.db.engine import create_engine
from longtasks.db.repositories import gmail as gmail_repo
from longtasks.db.repositories.businesses import ensure_business
from longtasks.db.repositories.gmail import TokenCipher
from longtasks.settings import Settings
from longtasks.temporal.client import connect
from longtasks.temporal.gmail_schedule import ensure_gmail_sync_schedule

DEMO_BUSINESS_ID = 1
DEMO_MAILBOX = "demo@longtasks.test"


async def connect_demo_mailbox(database_url: str, settings: Settings) -> None:
    """Connect business 1 once; an existing connection (and its history id) is kept."""
    engine = create_engine(database_url, pool_size=1)
    cipher = TokenCipher(settings.encryption_keys)
    try:
        async with engine.begin() as conn:
            await ensure_business(conn, DEMO_BUSINESS_ID)
            if await gmail_repo.get_connection(conn, DEMO_BUSINESS_ID) is None:
                await gmail_repo.upsert_connection(
                    conn,
                    cipher,
                    business_id=DEMO_BUSINESS_ID,
                    email=DEMO_MAILBOX,
                    refresh_token=f"sandbox:{DEMO_MAILBOX}",
                )
    finally:
        await engine.dispose()


async def ensure_demo_schedule(settings: Settings) -> str:
    client = await connect(settings)
    return await ensure_gmail_sync_schedule(
        client,
        DEMO_BUSINESS_ID,
        task_queue=settings.temporal_task_queue,
        interval_s=settings.gmail_sync_interval_s,
    )
