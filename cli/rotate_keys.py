"""`longtasks rotate-keys`: re-encrypt stored OAuth tokens and webhook secrets with the newest
ENCRYPTION_KEY, so the keys in ENCRYPTION_OLD_KEYS can then be dropped.

The rotation without downtime: (1) deploy with the new key in ENCRYPTION_KEY and the old one in
ENCRYPTION_OLD_KEYS (everything decrypts with either, new writes use the new one); (2) run this;
(3) deploy without ENCRYPTION_OLD_KEYS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from longtasks.db.engine import create_engine
from longtasks.db.repositories import key_rotation
from longtasks.db.repositories.gmail import TokenCipher
from longtasks.notifications import secrets
from longtasks.settings import Settings

Page = Callable[..., Awaitable[tuple[int, int | None]]]


async def _all_pages(
    engine: AsyncEngine, page: Page, rotate: Callable[[str], str], batch: int
) -> int:
    done, after = 0, 0
    while True:
        conn: AsyncConnection
        async with engine.begin() as conn:
            count, last = await page(conn, rotate, after=after, limit=batch)
        if last is None:
            return done
        done, after = done + count, last


async def rotate_keys(settings: Settings, database_url: str, batch: int = 500) -> dict[str, int]:
    engine = create_engine(database_url, pool_size=1)
    try:
        cipher = TokenCipher(settings.encryption_keys)
        return {
            "gmail connections": await _all_pages(
                engine, key_rotation.rotate_gmail_tokens, cipher.rotate, batch
            ),
            "webhook secrets": await _all_pages(
                engine,
                key_rotation.rotate_webhook_secrets,
                lambda token: secrets.rotate(settings, token),
                batch,
            ),
        }
    finally:
        await engine.dispose()


def run(settings: Settings, database_url: str) -> int:
    counts = asyncio.run(rotate_keys(settings, database_url))
    for what, count in counts.items():
        print(f"{what}: {count} re-encrypted with the newest key")
    return 0
