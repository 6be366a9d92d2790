"""`longtasks migrate` on an external database: the owner (MIGRATION_DATABASE_URL) is an
ordinary role, not a superuser, so FORCE ROW LEVEL SECURITY binds it too; the command runs the
migrations as it and creates (then, run again, updates) the application's role named in
DATABASE_URL, which owns nothing, cannot bypass row-level security and sees one business at a
time, while the owner's `maintenance` policy still shows it every row."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from cli.main import main
from longtasks.db.engine import create_engine, libpq_url
from longtasks.db.tenancy import acting_for, check_role
from migrations.runner import revisions
from tests.conftest import FaultReport, SecurityRow


@dataclass
class External:
    owner_url: str
    app_url: str
    app_role: str


@pytest.fixture
def external(postgres_url: str) -> Iterator[External]:
    """A database owned by an ordinary role that may create roles (as a managed Postgres
    gives), and the URL of an application role that does not exist yet."""
    suffix = uuid.uuid4().hex[:8]
    owner, app, database = f"lt_owner_{suffix}", f"lt_app_{suffix}", f"lt_external_{suffix}"
    admin_url = make_url(postgres_url).set(database="postgres")
    with psycopg.connect(libpq_url(admin_url.render_as_string(hide_password=False))) as conn:
        conn.autocommit = True
        conn.execute(f"CREATE ROLE {owner} LOGIN CREATEROLE PASSWORD 'owner-pw'")
        conn.execute(f"CREATE DATABASE {database} OWNER {owner}")
    base = make_url(postgres_url).set(database=database)
    yield External(
        owner_url=base.set(username=owner, password="owner-pw").render_as_string(
            hide_password=False
        ),
        app_url=base.set(username=app, password="app-pw").render_as_string(hide_password=False),
        app_role=app,
    )
    with psycopg.connect(libpq_url(admin_url.render_as_string(hide_password=False))) as conn:
        conn.autocommit = True
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        conn.execute(f"DROP ROLE IF EXISTS {app}")
        conn.execute(f"DROP ROLE IF EXISTS {owner}")


async def test_migrate_creates_the_application_role_on_an_external_database(
    external: External,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fault_report: FaultReport,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("DATABASE_URL", external.app_url)
    monkeypatch.setenv("MIGRATION_DATABASE_URL", external.owner_url)

    async def migrate() -> list[str]:
        assert await asyncio.to_thread(main, ["migrate"]) == 0
        return capsys.readouterr().out.strip().splitlines()

    head = revisions()[-1]
    assert await migrate() == [
        f"upgraded from base to {head}",
        f"application role {external.app_role} created, grants in place",
    ]
    owner = create_engine(external.owner_url, pool_size=2)
    app = create_engine(external.app_url, pool_size=2)
    try:
        async with owner.begin() as conn:
            for business in (1, 2):
                await conn.execute(
                    text("INSERT INTO businesses (id, name) VALUES (:id, 'b')"), {"id": business}
                )
                await conn.execute(
                    text(
                        "INSERT INTO long_running_tasks (business_id, task_type, total_items)"
                        " VALUES (:id, 'broadcast', 1)"
                    ),
                    {"id": business},
                )
        owner_check, app_check = await check_role(owner), await check_role(app)
        # Not a superuser, so the forced policies bind the owner too: `maintenance` shows it
        # every business (a data migration must not skip any).
        assert not owner_check.superuser and not owner_check.bypasses_rls
        assert await _count(owner, "long_running_tasks") == 2
        assert app_check.walled, app_check
        with acting_for(1):
            assert await _count(app, "long_running_tasks") == 1
            assert await _count(app, "businesses") == 1
        assert await _count(app, "long_running_tasks") == 0
        assert await _count(app, "businesses") == 0
        # The application may not change the schema nor read Alembic's bookkeeping.
        with pytest.raises(DBAPIError, match="permission denied"):
            async with app.begin() as conn:
                await conn.execute(text("CREATE TABLE mine (id int)"))
        with pytest.raises(DBAPIError, match="permission denied"):
            async with app.begin() as conn:
                await conn.execute(text("SELECT * FROM alembic_version"))
    finally:
        await owner.dispose()
        await app.dispose()
    # Run again (as after every release): the role is updated, nothing else moves.
    assert await migrate() == [
        f"already at {head}",
        f"application role {external.app_role} updated, grants in place",
    ]
    # A role that may create in `public` (PUBLIC's grant before Postgres 15) could plant an
    # overload that a named SECURITY DEFINER function resolves: migrate refuses, naming the fix.
    with psycopg.connect(libpq_url(external.owner_url), autocommit=True) as as_owner:
        as_owner.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    assert await asyncio.to_thread(main, ["migrate"]) == 2
    assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC" in capsys.readouterr().err
    fault_report.add_security(
        SecurityRow(
            area="RLS",
            check="`longtasks migrate` on an external database owned by an ordinary role"
            " (CREATEROLE, not a superuser): application role created, then updated; its"
            " reads acting for business 1, and for none; DDL and alembic_version; then"
            " CREATE on schema public granted to PUBLIC",
            cases=7,
            outcome="role owns nothing, no BYPASSRLS; sees 1 of 2 businesses, then 0;"
            " DDL and alembic_version refused; the owner still sees both; migrate refuses a"
            " role that could create in public",
        )
    )


async def _count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
