"""The application's database role: what the API and the workers connect as.

`longtasks migrate` runs the migrations as the owner (`MIGRATION_DATABASE_URL`, by default
`DATABASE_URL`) and then creates or updates the role named in `DATABASE_URL`, with its
password: it may log in, it owns nothing, it cannot bypass row-level security, create
databases or roles; it may read and write the tables (the audit log: insert and read only),
use their sequences and call the named cross-business functions. Re-run after every
migration (the command does), so new tables get their grants.

When both URLs name the same role, there is no second role and no wall: the command says so,
and the API and worker refuse to start that way in production
(`longtasks.db.tenancy.check_role`).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from longtasks.db.engine import libpq_url

log = logging.getLogger("longtasks.migrations")

# Tables the application reads and appends to, but never changes.
APPEND_ONLY = ("audit_events",)
# Tables the application has no business with.
NOT_THE_APPLICATIONS = ("alembic_version",)
# The application role's attributes: (pg_roles column, keyword when true, keyword when false),
# and whether it is wanted. It logs in; it is no superuser, cannot bypass row-level security,
# create databases or roles, replicate, or inherit another role's rights.
ATTRIBUTES = (
    ("rolcanlogin", "LOGIN", "NOLOGIN"),
    ("rolsuper", "SUPERUSER", "NOSUPERUSER"),
    ("rolbypassrls", "BYPASSRLS", "NOBYPASSRLS"),
    ("rolcreatedb", "CREATEDB", "NOCREATEDB"),
    ("rolcreaterole", "CREATEROLE", "NOCREATEROLE"),
    ("rolreplication", "REPLICATION", "NOREPLICATION"),
    ("rolinherit", "INHERIT", "NOINHERIT"),
)
_WANTED = (True, False, False, False, False, False, False)
_ROLE_ATTRIBUTES = (
    "SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolreplication,"
    " rolinherit FROM pg_roles WHERE rolname = %s"
)


class UnsafeAppRole(Exception):
    """The application's role could act past row-level security; the message says the fix."""


def role_of(database_url: str) -> str:
    user = make_url(database_url).username
    if not user:
        raise ValueError("the database URL names no user")
    return user


def ensure_app_role(owner_url: str, app_url: str) -> str:
    """Create or update the application role of `app_url`; a sentence saying what was done."""
    role = role_of(app_url)
    if role == role_of(owner_url):
        return (
            f"DATABASE_URL connects as the owner ({role}): no separate application role, so no"
            " second wall (set MIGRATION_DATABASE_URL to the owner and DATABASE_URL to the"
            " application's role)"
        )
    app = make_url(app_url)
    password = app.password
    with psycopg.connect(libpq_url(owner_url), autocommit=True) as conn:
        current = conn.execute(_ROLE_ATTRIBUTES, (role,)).fetchone()
        exists = current is not None
        # Creating, every attribute; updating, only what differs: an owner that may create
        # roles but is no superuser (a managed Postgres's) may not even restate SUPERUSER,
        # BYPASSRLS or REPLICATION.
        attributes = [
            yes if want else no
            for (_, yes, no), want, have in zip(
                ATTRIBUTES, _WANTED, current or (None,) * len(ATTRIBUTES), strict=True
            )
            if have != want
        ]
        statement = sql.SQL("{} {} {}").format(
            sql.SQL("ALTER ROLE") if exists else sql.SQL("CREATE ROLE"),
            sql.Identifier(role),
            sql.SQL(" ".join(attributes)),
        )
        if password:
            statement = sql.SQL("{} PASSWORD {}").format(statement, sql.Literal(str(password)))
        if attributes or password or not exists:
            conn.execute(statement)
        owned = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
            " WHERE r.rolname = %s",
            (role,),
        ).fetchone()
        if owned and owned[0]:
            raise UnsafeAppRole(
                f"role {role} owns {owned[0]} relations: the application's role must own"
                " nothing (REASSIGN OWNED BY it to the owner first)"
            )
        _grant(conn, role, str(app.database))
        # Through PUBLIC (the default before Postgres 15) it could still create a function in
        # `public` that a named SECURITY DEFINER function would resolve (a more specific
        # overload of `unnest`, say) and so run its own code as the owner.
        creates = conn.execute(
            "SELECT has_schema_privilege(%s, 'public', 'CREATE')", (role,)
        ).fetchone()
        if creates and creates[0]:
            raise UnsafeAppRole(
                f"role {role} may create objects in schema public (granted to PUBLIC before"
                " Postgres 15): run `REVOKE CREATE ON SCHEMA public FROM PUBLIC` as the owner,"
                " then `longtasks migrate` again"
            )
    return f"application role {role} {'updated' if exists else 'created'}, grants in place"


def _grant(conn: psycopg.Connection[Any], role: str, database: str) -> None:
    who = sql.Identifier(role)
    statements = [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), who),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(who),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(who),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
            who
        ),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(who),
    ]
    for table in NOT_THE_APPLICATIONS:
        statements.append(
            sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(sql.Identifier(table), who)
        )
    for table in APPEND_ONLY:
        if _exists(conn, table):
            statements.append(
                sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON TABLE {} FROM {}").format(
                    sql.Identifier(table), who
                )
            )
    for table in _tables(conn):
        statements.append(
            sql.SQL("REVOKE TRUNCATE, REFERENCES, TRIGGER ON TABLE {} FROM {}").format(
                sql.Identifier(table), who
            )
        )
    for signature in _named_functions(conn):
        statements.append(
            sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(signature), who)
        )
    for statement in statements:
        conn.execute(statement)


def _exists(conn: psycopg.Connection[Any], table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",)).fetchone() == (
        True,
    )


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace"
        " AND c.relkind IN ('r', 'p')"
    ).fetchall()
    return [str(r[0]) for r in rows]


def _named_functions(conn: psycopg.Connection[Any]) -> list[str]:
    """The cross-business functions (SECURITY DEFINER, `longtasks_` named), as signatures."""
    rows = conn.execute(
        "SELECT p.oid::regprocedure::text FROM pg_proc p"
        " WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'longtasks\\_%'"
        " AND p.prosecdef"
    ).fetchall()
    return [str(r[0]) for r in rows]
