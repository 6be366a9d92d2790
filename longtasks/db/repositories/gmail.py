"""Gmail connections (tokens encrypted at rest), sync requests, and a sync's staged message ids."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from longtasks.db.models import GmailConnection, ReceiptSyncRun
from longtasks.db.rows import mapped_first


class TokenCipher:
    """Fernet (AES-128-CBC + HMAC); tokens never hit disk raw. `keys` newest first
    (`settings.encryption_keys`): the newest encrypts, every one decrypts, so a key rotation
    needs no downtime; `rotate` re-encrypts with the newest (`longtasks rotate-keys`)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str) -> str:
        try:
            return self._fernet.decrypt(value.encode()).decode()
        except InvalidToken as exc:
            raise ValueError(
                "a stored token cannot be decrypted with ENCRYPTION_KEY or ENCRYPTION_OLD_KEYS"
            ) from exc

    def rotate(self, value: str) -> str:
        try:
            return self._fernet.rotate(value.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("a stored token cannot be decrypted with any key") from exc


async def upsert_connection(
    conn: AsyncConnection,
    cipher: TokenCipher,
    *,
    business_id: int,
    email: str,
    refresh_token: str,
    access_token: str = "",
) -> None:
    """Connect (or reconnect) a mailbox. A different address starts over with a full sync."""
    await conn.execute(
        text("""
            INSERT INTO gmail_connections
                (business_id, email, access_token_enc, refresh_token_enc)
            VALUES (:b, :email, :access, :refresh)
            ON CONFLICT (business_id) DO UPDATE SET
                email = EXCLUDED.email,
                access_token_enc = EXCLUDED.access_token_enc,
                refresh_token_enc = EXCLUDED.refresh_token_enc,
                history_id = CASE WHEN gmail_connections.email = EXCLUDED.email
                                  THEN gmail_connections.history_id END,
                updated_at = now()
        """),
        {
            "b": business_id,
            "email": email.strip().lower(),
            "access": cipher.encrypt(access_token),
            "refresh": cipher.encrypt(refresh_token),
        },
    )


async def get_connection(conn: AsyncConnection, business_id: int) -> GmailConnection | None:
    """The business's mailbox; its tokens stay encrypted until a caller with the cipher needs
    them (`TokenCipher.decrypt`)."""
    return await mapped_first(
        conn, select(GmailConnection).where(GmailConnection.business_id == business_id)
    )


async def connected_business_ids(conn: AsyncConnection) -> list[int]:
    result = await conn.execute(text("SELECT business_id FROM gmail_connections ORDER BY 1"))
    return [int(r[0]) for r in result]


async def store_access_token(
    conn: AsyncConnection,
    cipher: TokenCipher,
    business_id: int,
    *,
    refresh_token: str,
    access_token: str,
) -> None:
    """Keep a refreshed access token, unless the mailbox was reconnected meanwhile."""
    row = await get_connection(conn, business_id)
    if (
        row is None
        or cipher.decrypt(row.refresh_token_enc) != refresh_token
        or cipher.decrypt(row.access_token_enc) == access_token
    ):
        return
    await conn.execute(
        text(
            "UPDATE gmail_connections SET access_token_enc = :a, updated_at = now()"
            " WHERE business_id = :b"
        ),
        {"a": cipher.encrypt(access_token), "b": business_id},
    )


async def store_history_id(
    conn: AsyncConnection, business_id: int, *, email: str, history_id: int
) -> None:
    """After a completed sync: later syncs are incremental from here. Never moves backwards
    (an older sync finishing late must not make the next one re-read what is stored)."""
    await conn.execute(
        text(
            "UPDATE gmail_connections SET history_id = GREATEST(COALESCE(history_id, 0), :h),"
            " last_synced_at = now(), updated_at = now() WHERE business_id = :b AND email = :e"
        ),
        {"h": history_id, "b": business_id, "e": email},
    )


# -- sync requests -----------------------------------------------------------------------------


async def create_sync_run(
    conn: AsyncConnection,
    *,
    task_id: int,
    business_id: int,
    query: str | None,
    since: dt.date | None,
    schedule_key: str | None = None,
) -> None:
    await conn.execute(
        text(
            "INSERT INTO receipt_sync_runs (task_id, business_id, query, since, schedule_key)"
            " VALUES (:t, :b, :q, :s, :k)"
        ),
        {"t": task_id, "b": business_id, "q": query, "s": since, "k": schedule_key},
    )


async def get_sync_run(conn: AsyncConnection, task_id: int) -> ReceiptSyncRun | None:
    return await mapped_first(conn, select(ReceiptSyncRun).where(ReceiptSyncRun.task_id == task_id))


async def task_for_schedule_key(conn: AsyncConnection, schedule_key: str) -> int | None:
    result = await conn.execute(
        text("SELECT task_id FROM receipt_sync_runs WHERE schedule_key = :k"), {"k": schedule_key}
    )
    value = result.scalar()
    return int(value) if value is not None else None


async def set_sync_mode(
    conn: AsyncConnection,
    task_id: int,
    *,
    mode: str,
    start_history_id: int | None,
    new_history_id: int | None,
) -> None:
    await conn.execute(
        text(
            "UPDATE receipt_sync_runs SET mode = :m, start_history_id = :s,"
            " new_history_id = :n WHERE task_id = :t"
        ),
        {"m": mode, "s": start_history_id, "n": new_history_id, "t": task_id},
    )


async def raise_new_history_id(conn: AsyncConnection, task_id: int, history_id: int) -> None:
    await conn.execute(
        text(
            "UPDATE receipt_sync_runs SET new_history_id ="
            " GREATEST(COALESCE(new_history_id, 0), :h) WHERE task_id = :t"
        ),
        {"h": history_id, "t": task_id},
    )


async def running_sync_task(conn: AsyncConnection, business_id: int) -> int | None:
    result = await conn.execute(
        text(
            "SELECT id FROM long_running_tasks WHERE business_id = :b"
            " AND task_type = 'receipt_sync'"
            " AND status IN ('awaiting_approval', 'scheduled', 'running', 'paused')"
            " ORDER BY id DESC LIMIT 1"
        ),
        {"b": business_id},
    )
    value = result.scalar()
    return int(value) if value is not None else None


# -- staging: the listed message ids, numbered 1..N --------------------------------------------

_STAGE = text("""
    INSERT INTO gmail_sync_messages (task_id, seq, message_id)
    SELECT :task_id, :base + row_number() OVER (ORDER BY ord), mid
    FROM unnest(CAST(:ids AS text[])) WITH ORDINALITY AS t(mid, ord)
    WHERE NOT EXISTS (
        SELECT 1 FROM gmail_sync_messages g WHERE g.task_id = :task_id AND g.message_id = t.mid
    )
""")


async def stage_message_ids(conn: AsyncConnection, task_id: int, message_ids: Sequence[str]) -> int:
    """Append ids not staged yet, numbered after the last one; answers how many were new.

    A retried list page (its first attempt may have committed) adds nothing twice, and seq stays
    dense, so the count of staged ids is the exact total and pages are plain seq ranges.
    """
    unique = list(dict.fromkeys(message_ids))
    if not unique:
        return 0
    # One lister per task at a time (a zombie attempt may overlap its retry): serialize on the
    # task row, so two attempts never read the same max(seq).
    await conn.execute(
        text("SELECT 1 FROM long_running_tasks WHERE id = :t FOR UPDATE"), {"t": task_id}
    )
    base = await conn.execute(
        text("SELECT COALESCE(max(seq), 0) FROM gmail_sync_messages WHERE task_id = :t"),
        {"t": task_id},
    )
    result = await conn.execute(
        _STAGE, {"task_id": task_id, "base": int(base.scalar_one()), "ids": unique}
    )
    return int(result.rowcount or 0)


async def staged_count(conn: AsyncConnection, task_id: int) -> int:
    result = await conn.execute(
        text("SELECT count(*) FROM gmail_sync_messages WHERE task_id = :t"), {"t": task_id}
    )
    return int(result.scalar_one())


async def staged_page(
    conn: AsyncConnection, task_id: int, *, after_seq: int, up_to_seq: int
) -> list[tuple[int, str]]:
    result = await conn.execute(
        text(
            "SELECT seq, message_id FROM gmail_sync_messages WHERE task_id = :t"
            " AND seq > :a AND seq <= :u ORDER BY seq"
        ),
        {"t": task_id, "a": after_seq, "u": up_to_seq},
    )
    return [(int(r[0]), str(r[1])) for r in result]
