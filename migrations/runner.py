"""Running the Alembic migrations: up to head, or to any revision in either direction."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from longtasks.db.engine import sqlalchemy_url

_HERE = Path(__file__).resolve().parent
BASE = "base"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    # Alembic runs synchronously; psycopg 3 serves both sync and async.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def revisions() -> list[str]:
    """Every revision, oldest first (the history is one line: no branches)."""
    script = ScriptDirectory.from_config(alembic_config("postgresql://unused/x"))
    if len(script.get_heads()) != 1:
        raise RuntimeError(f"migrations have several heads: {script.get_heads()}")
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def current_revision(database_url: str) -> str | None:
    engine = create_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def migrate_to(database_url: str, target: str) -> str:
    """Move to `target` (a revision, `head` or `base`), up or down as needed; says which."""
    order = revisions()
    wanted = order[-1] if target == "head" else target
    if wanted != BASE and wanted not in order:
        raise ValueError(f"unknown revision {target!r}; known: {', '.join(order)}")
    current = current_revision(database_url)
    position = {BASE: -1, None: -1} | {r: i for i, r in enumerate(order)}
    if position[wanted] > position[current]:
        upgrade(database_url, wanted)
        return f"upgraded from {current or BASE} to {wanted}"
    if position[wanted] < position[current]:
        downgrade(database_url, wanted)
        return f"downgraded from {current} to {wanted}"
    return f"already at {wanted}"


def migrate(owner_url: str, app_url: str, target: str = "head") -> list[str]:
    """`longtasks migrate`: the migrations as the owner, then the application's role and grants
    (migrations.roles); what was done, a sentence each."""
    from migrations.roles import ensure_app_role

    moved = migrate_to(owner_url, target)
    return [moved, ensure_app_role(owner_url, app_url)]
