"""Webhook secrets at rest: Fernet with a key derived from ENCRYPTION_KEY."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet

from longtasks.settings import Settings


def _fernet(settings: Settings) -> Fernet:
    # Derived, so any ENCRYPTION_KEY string works and this use has its own key.
    digest = hashlib.sha256(
        b"longtasks-webhook-secret:" + settings.encryption_key.encode()
    ).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(settings: Settings, secret: str) -> str:
    return _fernet(settings).encrypt(secret.encode()).decode()


def decrypt(settings: Settings, token: str) -> str:
    return _fernet(settings).decrypt(token.encode()).decode()
