"""ENCRYPTION_KEY rotation: with the new key in ENCRYPTION_KEY and the old in
ENCRYPTION_OLD_KEYS everything still decrypts; `longtasks rotate-keys` re-encrypts the stored
OAuth tokens and webhook secrets with the new key; then the old key can go."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cli.main import main
from longtasks.auth.tickets import TicketSigner
from longtasks.auth.tokens import Principal, TokenRejected
from longtasks.db.repositories import gmail as gmail_repo
from longtasks.db.repositories import notifications as notification_repo
from longtasks.db.repositories.gmail import TokenCipher
from longtasks.domain import Role
from longtasks.notifications import secrets
from tests.conftest import FaultReport, SecurityRow, Stack

WEBHOOK_SECRET = "webhook-secret-for-rotation"
REFRESH = "refresh-token-for-rotation"


async def _stored(stack: Stack, business_id: int) -> tuple[str, str]:
    async with stack.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT g.refresh_token_enc, n.webhook_secret_encrypted"
                    " FROM gmail_connections g JOIN notification_settings n USING (business_id)"
                    " WHERE business_id = :b"
                ),
                {"b": business_id},
            )
        ).one()
    return row[0], row[1]


async def _rotate(monkeypatch: pytest.MonkeyPatch, stack: Stack, newest: str, old: str) -> None:
    """`longtasks rotate-keys` as an operator runs it: settings from the environment."""
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("DATABASE_URL", str(stack.settings.database_url))
    monkeypatch.setenv("MIGRATION_DATABASE_URL", str(stack.settings.migration_database_url))
    monkeypatch.setenv("ENCRYPTION_KEY", newest)
    monkeypatch.setenv("ENCRYPTION_OLD_KEYS", json.dumps([old]))
    assert await asyncio.to_thread(main, ["rotate-keys"]) == 0


async def test_rotate_keys_moves_stored_secrets_to_the_new_key(
    stack: Stack,
    new_business: Callable[[], Awaitable[int]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fault_report: FaultReport,
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "admin") as http:
        connected = await http.put(
            "/api/receipts/gmail_connection",
            json={"email": "rotation@example.com", "refresh_token": REFRESH},
        )
        assert connected.status_code == 200, connected.text
        configured = await http.put(
            "/api/notifications",
            json={"webhook_url": "https://hooks.example.com/r", "webhook_secret": WEBHOOK_SECRET},
        )
        assert configured.status_code == 200, configured.text
    old = stack.settings.encryption_key
    new = Fernet.generate_key().decode()
    overlap = stack.settings.model_copy(
        update={"encryption_key": new, "encryption_old_keys": [old]}
    )
    new_only = stack.settings.model_copy(update={"encryption_key": new, "encryption_old_keys": []})

    # The overlap: written with the old key, read with the new one configured first.
    async with stack.engine.connect() as conn:
        refresh = await _refresh_token(conn, TokenCipher(overlap.encryption_keys), business_id)
        assert refresh == REFRESH
        with pytest.raises(ValueError, match="cannot be decrypted"):
            await _refresh_token(conn, TokenCipher([new]), business_id)
    before = await _stored(stack, business_id)

    try:
        await _rotate(monkeypatch, stack, new, old)
        printed = capsys.readouterr().out
        assert "re-encrypted with the newest key" in printed
        after = await _stored(stack, business_id)
        assert after[0] != before[0] and after[1] != before[1]
        # The new key alone reads everything now; the old key alone reads nothing.
        async with stack.engine.connect() as conn:
            refresh = await _refresh_token(conn, TokenCipher([new]), business_id)
            assert refresh == REFRESH
            with pytest.raises(ValueError, match="cannot be decrypted"):
                await _refresh_token(conn, TokenCipher([old]), business_id)
            config = await notification_repo.get_config(conn, business_id)
        assert config is not None and config.webhook_secret_encrypted is not None
        assert secrets.decrypt(new_only, config.webhook_secret_encrypted) == WEBHOOK_SECRET
    finally:
        # The rest of the session runs with the original key: rotate back (the same command).
        await _rotate(monkeypatch, stack, old, new)
    async with stack.engine.connect() as conn:
        refresh = await _refresh_token(
            conn, TokenCipher(stack.settings.encryption_keys), business_id
        )
        assert refresh == REFRESH
    fault_report.add_security(
        SecurityRow(
            area="secrets at rest",
            check="ENCRYPTION_KEY rotation: overlap read, `longtasks rotate-keys`, old key"
            " removed (OAuth tokens, webhook secrets), then rotated back",
            cases=2,
            outcome="readable during the overlap; after the rotation the new key alone"
            " decrypts and the old key alone does not",
        )
    )


async def _refresh_token(conn: AsyncConnection, cipher: TokenCipher, business_id: int) -> str:
    connection = await gmail_repo.get_connection(conn, business_id)
    assert connection is not None
    return cipher.decrypt(connection.refresh_token_enc)


def test_tickets_signed_with_the_old_key_open_during_the_overlap() -> None:
    principal = Principal(
        business_id=1, role=Role.viewer, subject="u", jti="j", expires_at=time.time() + 600
    )
    ticket, _ = TicketSigner(["old-key"], 60).mint(principal, "/api/long_tasks/events")
    assert TicketSigner(["new-key", "old-key"], 60).verify(ticket, "/api/long_tasks/events")
    with pytest.raises(TokenRejected):
        TicketSigner(["new-key"], 60).verify(ticket, "/api/long_tasks/events")
