"""Production refuses the development placeholders: in the settings object, and through the real
process (`python -m cli api` exits non-zero with a clear message before serving anything)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from longtasks.settings import (
    PLACEHOLDER_ENCRYPTION_KEY,
    PLACEHOLDER_JWT_SECRET,
    PLACEHOLDER_WHATSAPP_APP_SECRET,
    PLACEHOLDER_WHATSAPP_VERIFY_TOKEN,
    Environment,
    Settings,
)
from tests.conftest import FaultReport, HostileRow, _free_port

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "a-real-production-secret-of-48-characters-xxxxxx"
GOOD_KEY = "cHJvZHVjdGlvbi1lbmNyeXB0aW9uLWtleS0zMi1ieXRlcyE="
DB_PASSWORD = "db-password-never-printed"


WHATSAPP_SECRETS = {
    "whatsapp_app_secret": "the-meta-app-secret",
    "whatsapp_verify_token": "a-verify-token",
}


def _production(**values: Any) -> Settings:
    # Explicit values win over the environment, so the test does not depend on it.
    return Settings(environment=Environment.production, **{**WHATSAPP_SECRETS, **values})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"encryption_key": GOOD_KEY}, "JWT_SECRET"),  # the placeholder by default
        ({"jwt_secret": PLACEHOLDER_JWT_SECRET, "encryption_key": GOOD_KEY}, "JWT_SECRET"),
        ({"jwt_secret": "short-secret", "encryption_key": GOOD_KEY}, r"32\+ characters"),
        ({"jwt_secret": "x" * 31, "encryption_key": GOOD_KEY}, r"32\+ characters"),
        ({"jwt_secret": GOOD_SECRET}, "ENCRYPTION_KEY"),  # the placeholder by default
        (
            {"jwt_secret": GOOD_SECRET, "encryption_key": PLACEHOLDER_ENCRYPTION_KEY},
            "ENCRYPTION_KEY",
        ),
        # Never an embedded database of its own in production: N workers, N databases.
        (
            {"jwt_secret": GOOD_SECRET, "encryption_key": GOOD_KEY, "database_url": None},
            "DATABASE_URL",
        ),
        (
            {
                "jwt_secret": GOOD_SECRET,
                "encryption_key": GOOD_KEY,
                "whatsapp_app_secret": PLACEHOLDER_WHATSAPP_APP_SECRET,
            },
            "WHATSAPP_APP_SECRET",
        ),
        (
            {
                "jwt_secret": GOOD_SECRET,
                "encryption_key": GOOD_KEY,
                "whatsapp_verify_token": PLACEHOLDER_WHATSAPP_VERIFY_TOKEN,
            },
            "WHATSAPP_VERIFY_TOKEN",
        ),
    ],
)
def test_production_refuses_placeholder_and_weak_secrets(
    values: dict[str, str | None], message: str
) -> None:
    values = {"database_url": f"postgresql://u:{DB_PASSWORD}@db/x", **values}
    with pytest.raises(ValidationError, match=message) as raised:
        _production(**values)
    # The error names the setting but never echoes the values (secrets, URLs with passwords).
    for secret in (DB_PASSWORD, GOOD_SECRET, GOOD_KEY):
        assert secret not in str(raised.value)


def test_production_accepts_real_secrets_and_development_keeps_placeholders() -> None:
    settings = _production(
        jwt_secret=GOOD_SECRET,
        encryption_key=GOOD_KEY,
        database_url=f"postgresql://u:{DB_PASSWORD}@db/x",
    )
    assert settings.jwt_secret == GOOD_SECRET
    dev = Settings(environment=Environment.development)
    assert dev.jwt_secret == PLACEHOLDER_JWT_SECRET


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.upper()
        not in {
            "JWT_SECRET",
            "ENCRYPTION_KEY",
            "ENVIRONMENT",
            "DATABASE_URL",
            "WHATSAPP_APP_SECRET",
            "WHATSAPP_VERIFY_TOKEN",
        }
    }
    # An unreachable database: if the guard failed, the API would not get far either way.
    return {
        **env,
        "API_PORT": str(_free_port()),
        "DATABASE_URL": f"postgresql://nobody:{DB_PASSWORD}@127.0.0.1:1/none",
        **extra,
    }


CASES = {
    "placeholders": {"ENVIRONMENT": "production"},
    "short secret": {
        "ENVIRONMENT": "production",
        "JWT_SECRET": "too-short",
        "ENCRYPTION_KEY": GOOD_KEY,
    },
    "placeholder key": {
        "ENVIRONMENT": "production",
        "JWT_SECRET": GOOD_SECRET,
        "ENCRYPTION_KEY": PLACEHOLDER_ENCRYPTION_KEY,
    },
    "no database": {
        "ENVIRONMENT": "production",
        "JWT_SECRET": GOOD_SECRET,
        "ENCRYPTION_KEY": GOOD_KEY,
        "DATABASE_URL": "",
    },
    "placeholder app secret": {
        "ENVIRONMENT": "production",
        "JWT_SECRET": GOOD_SECRET,
        "ENCRYPTION_KEY": GOOD_KEY,
    },
}
EXPECTED_NAME = {
    "placeholder key": "ENCRYPTION_KEY",
    "no database": "DATABASE_URL",
    "placeholder app secret": "WHATSAPP_APP_SECRET",
}


async def test_api_process_refuses_to_start_in_production_with_placeholders(
    fault_report: FaultReport,
) -> None:
    for label, extra in CASES.items():
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "cli", "api"],
            cwd=ROOT,
            env=_clean_env(**extra),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode != 0, (label, output)
        expected = EXPECTED_NAME.get(label, "JWT_SECRET")
        assert expected in output, (label, output)
        assert "must be set" in output, (label, output)
        assert output.startswith("longtasks: invalid settings:"), output  # no traceback
        for secret in (DB_PASSWORD, GOOD_SECRET, GOOD_KEY):
            assert secret not in output, (label, output)
        assert "Uvicorn running" not in output and "Application startup" not in output
    fault_report.add_hostile(
        HostileRow(
            scenario="`longtasks api` with ENVIRONMENT=production and placeholder/short secrets",
            requests=len(CASES),
            server_errors=0,
            outcome="the process exits non-zero naming the setting; nothing is served",
        )
    )
