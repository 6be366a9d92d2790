"""Re-encrypting secrets at rest with the newest key (`longtasks rotate-keys`).

Every business's rows, page by page in business-id order, each page in its own short
transaction (rows locked while they are rewritten, so a concurrent reconnect is not lost):
this is one of the named cross-business paths (see tests/security/test_rls.py).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

Rotate = Callable[[str], str]


async def rotate_gmail_tokens(
    conn: AsyncConnection, rotate: Rotate, *, after: int, limit: int
) -> tuple[int, int | None]:
    """(rows rewritten, the last business id of the page, or None when there were none)."""
    rows = (
        await conn.execute(
            text(
                "SELECT business_id, access_token_enc, refresh_token_enc FROM gmail_connections"
                " WHERE business_id > :after ORDER BY business_id LIMIT :limit FOR UPDATE"
            ),
            {"after": after, "limit": limit},
        )
    ).all()
    if not rows:
        return 0, None
    await conn.execute(
        text(
            "UPDATE gmail_connections SET access_token_enc = :a, refresh_token_enc = :r"
            " WHERE business_id = :b"
        ),
        [{"b": r[0], "a": rotate(r[1]), "r": rotate(r[2])} for r in rows],
    )
    return len(rows), int(rows[-1][0])


async def rotate_webhook_secrets(
    conn: AsyncConnection, rotate: Rotate, *, after: int, limit: int
) -> tuple[int, int | None]:
    rows = (
        await conn.execute(
            text(
                "SELECT business_id, webhook_secret_encrypted FROM notification_settings"
                " WHERE business_id > :after AND webhook_secret_encrypted IS NOT NULL"
                " ORDER BY business_id LIMIT :limit FOR UPDATE"
            ),
            {"after": after, "limit": limit},
        )
    ).all()
    if not rows:
        return 0, None
    await conn.execute(
        text(
            "UPDATE notification_settings SET webhook_secret_encrypted = :s WHERE business_id = :b"
        ),
        [{"b": r[0], "s": rotate(r[1])} for r in rows],
    )
    return len(rows), int(rows[-1][0])
