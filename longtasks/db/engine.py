"""Engine and session factories. Made where a process starts, injected everywhere else."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from longtasks.db import tenancy


def sqlalchemy_url(database_url: str) -> str:
    """`postgresql://...` (what pgserver, Heroku-style env vars and psql use) -> psycopg 3."""
    url = make_url(database_url)
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def libpq_url(database_url: str) -> str:
    """The plain libpq form, for psycopg connections made outside SQLAlchemy (LISTEN)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def create_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine whose every transaction acts for the context's business (db.tenancy)."""
    engine = create_async_engine(
        sqlalchemy_url(database_url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        # A restarted Postgres leaves dead connections in the pool; recycle them quickly.
        pool_recycle=300,
    )
    tenancy.install(engine)
    return engine
