"""`longtasks token`: a stable subject (`--user`), a jti on every token, and signing with a
private key (`--key`, `--kid`) for a deployment that verifies public keys only."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from cli.main import main
from longtasks.auth.tokens import TokenVerifier
from longtasks.domain import Role
from longtasks.settings import Settings


def printed_token(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["token", *args]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_a_dev_token_names_its_user_and_has_a_jti(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings()
    token = printed_token(capsys, "--business-id", "7", "--role", "operator", "--user", "alice")
    principal = TokenVerifier.from_settings(settings).verify(token)
    assert (principal.business_id, principal.role, principal.subject) == (7, Role.operator, "alice")
    other = printed_token(capsys, "--business-id", "7", "--role", "operator", "--user", "alice")
    assert TokenVerifier.from_settings(settings).verify(other).jti != principal.jti
    default = printed_token(capsys, "--business-id", "7", "--role", "viewer")
    assert TokenVerifier.from_settings(settings).verify(default).subject == "business:7:viewer"


def test_a_token_signed_with_a_private_key_verifies_with_its_public_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    key_file = tmp_path / "host.pem"
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_file = tmp_path / "host.pub.pem"
    public_file.write_bytes(public)
    token = printed_token(
        capsys, "--business-id", "3", "--role", "admin", "--user", "ops", "--key", str(key_file),
        "--kid", "host-2026",
    )  # fmt: skip
    assert jwt.get_unverified_header(token)["kid"] == "host-2026"
    # Configured by file path, as a mounted secret would be; HS256 off.
    settings = Settings(jwt_public_keys={"host-2026": str(public_file)}, jwt_hs256=False)
    principal = TokenVerifier.from_settings(settings).verify(token)
    assert (principal.business_id, principal.subject) == (3, "ops")


def test_a_token_longer_than_the_maximum_lifetime_is_not_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    limit = Settings().jwt_max_lifetime_s
    code = main(["token", "--business-id", "1", "--role", "viewer", "--ttl", str(limit + 1)])
    assert code == 2
    assert capsys.readouterr().out == ""
