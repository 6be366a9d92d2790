"""Webhook secrets at rest: Fernet with keys derived from ENCRYPTION_KEY (and, to decrypt what
older keys encrypted, ENCRYPTION_OLD_KEYS): the newest encrypts, every one decrypts."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from longtasks.settings import Settings


def _derive(key: str) -> Fernet:
    # Derived, so any ENCRYPTION_KEY string works and this use has its own key.
    digest = hashlib.sha256(b"longtasks-webhook-secret:" + key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _fernet(settings: Settings) -> MultiFernet:
    return MultiFernet([_derive(key) for key in settings.encryption_keys])


def encrypt(settings: Settings, secret: str) -> str:
    return _fernet(settings).encrypt(secret.encode()).decode()


def decrypt(settings: Settings, token: str) -> str:
    return _fernet(settings).decrypt(token.encode()).decode()


def rotate(settings: Settings, token: str) -> str:
    """The same secret, encrypted with the newest key."""
    try:
        return _fernet(settings).rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("a stored webhook secret cannot be decrypted with any key") from exc
