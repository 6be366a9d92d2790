"""Every migration goes up, down and up again on real Postgres with data in its tables, and
`longtasks migrate --to REVISION` moves either way.

The data: after each upgrade, every table that is empty gets rows of its own, made from the
live schema (not from the models, which only know head): every column filled (those with a
default get it, as the application leaves them), each value a CHECK constraint's `IN (...)`
list allows at least once (a downgrade that restores an older constraint must deal with the
newer values), foreign keys pointing at rows that exist. A revision added later needs no seed
of its own: its tables are filled the same way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from cli.main import main
from longtasks.db.engine import libpq_url
from migrations.runner import BASE, current_revision, downgrade, revisions, upgrade
from tests.conftest import FaultReport, SecurityRow

_IN_LIST = re.compile(r"\((\w+)\)::text = ANY \(\(?ARRAY\[(.*?)\]")
_IN_LIST_PLAIN = re.compile(r"\(?(\w+) IN \((.*?)\)")


@pytest.fixture
def scratch_url(postgres_url: str) -> Iterator[str]:
    """An empty database of its own on the session's server."""
    name = f"longtasks_migrations_{uuid.uuid4().hex[:8]}"
    admin = make_url(postgres_url).set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(libpq_url(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'alembic_version'"
    ).fetchall()
    return sorted(r[0] for r in rows)


def _parents(conn: psycopg.Connection[Any], table: str) -> dict[str, tuple[str, str, int]]:
    """column -> (referenced table, referenced column, the foreign key's oid). The columns of
    a key over several columns are filled from one referenced row."""
    rows = conn.execute(
        """
        SELECT a.attname, cf.relname, af.attname, k.oid
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_class cf ON cf.oid = k.confrelid
        CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS u(col, fcol)
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.col
        JOIN pg_attribute af ON af.attrelid = k.confrelid AND af.attnum = u.fcol
        WHERE k.contype = 'f' AND c.relname = %s
        ORDER BY cardinality(k.conkey), k.oid
        """,
        (table,),
    ).fetchall()
    # A column in two keys takes the wider key's row (ordered last).
    return {r[0]: (r[1], r[2], int(r[3])) for r in rows}


def _allowed_values(conn: psycopg.Connection[Any], table: str) -> dict[str, list[str]]:
    """column -> the values a CHECK (column IN (...)) constraint allows."""
    allowed: dict[str, list[str]] = {}
    rows = conn.execute(
        "SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k JOIN pg_class c"
        " ON c.oid = k.conrelid WHERE k.contype = 'c' AND c.relname = %s",
        (table,),
    ).fetchall()
    for (definition,) in rows:
        for pattern in (_IN_LIST, _IN_LIST_PLAIN):
            for column, values in pattern.findall(definition):
                allowed[column] = re.findall(r"'([^']*)'", values)
    return allowed


def _unique_columns(conn: psycopg.Connection[Any], table: str) -> set[str]:
    """Columns of the table's primary key and unique indexes: they get distinct values."""
    rows = conn.execute(
        "SELECT a.attname FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(x.indkey)"
        " WHERE c.relname = %s AND x.indisunique",
        (table,),
    ).fetchall()
    return {r[0] for r in rows}


def _value(kind: str, i: int, column: str, unique: bool) -> Any:
    if kind in ("bigint", "integer", "smallint"):
        # Counters are 0 (their CHECKs add up); keys are distinct.
        return 1000 + i if unique else 0
    if kind in ("numeric", "double precision", "real"):
        return 10 + i
    if kind == "boolean":
        return i % 2 == 1
    if kind == "timestamp with time zone":
        return dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=i)
    if kind == "date":
        return dt.date(2026, 1, 1) + dt.timedelta(days=i)
    if kind == "jsonb":
        return psycopg.types.json.Jsonb({"seeded": i})
    if kind == "ARRAY":
        return [i, i + 1]
    return f"{i}-{column}"  # distinct in its first characters (varchar(3) keeps "0-c")


def fill(url: str) -> dict[str, int]:
    """Rows in every empty table; returns how many rows each table holds."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        tables = _tables(conn)
        pending = [t for t in tables if not conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone()]
        for _ in range(len(tables)):  # parents before children
            if not pending:
                break
            for table in list(pending):
                parents = _parents(conn, table)
                if any(p in pending and p != table for p, _, _ in parents.values()):
                    continue
                _fill_table(conn, table, parents)
                pending.remove(table)
        assert not pending, f"could not fill {pending}"
        return {
            t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # type: ignore[index]
            for t in tables
        }


def _fill_table(
    conn: psycopg.Connection[Any], table: str, parents: dict[str, tuple[str, str, int]]
) -> None:
    columns = conn.execute(
        "SELECT column_name, data_type, is_identity, column_default, character_maximum_length"
        " FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s"
        " ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    allowed = _allowed_values(conn, table)
    unique = _unique_columns(conn, table)
    rows = max([len(v) for v in allowed.values()] + [3])
    # Per foreign key: its columns, and the referenced rows' values for them.
    keys: dict[int, tuple[str, list[str], list[str]]] = {}
    for column, (ref, ref_col, key) in parents.items():
        if ref != table:
            keys.setdefault(key, (ref, [], []))
            keys[key][1].append(column)
            keys[key][2].append(ref_col)
    referenced: dict[str, tuple[int, list[tuple[Any, ...]]]] = {}
    for ref, key_columns, ref_columns in keys.values():
        listed = ", ".join(f'"{c}"' for c in ref_columns)
        found = conn.execute(f'SELECT {listed} FROM "{ref}" ORDER BY 1').fetchall()
        for n, column in enumerate(key_columns):
            referenced[column] = (n, found)
    filled = [
        (name, kind, length)
        for name, kind, identity, default, length in columns
        if identity != "YES" and not (default or "").startswith("nextval(")
        # A column with a default gets it (what the application writes there), unless a
        # CHECK lists its values: then each of them appears.
        and (default is None or name in allowed)
        and not (name in parents and parents[name][0] == table)  # a row's own parent: NULL
    ]  # fmt: skip
    names = ", ".join(f'"{n}"' for n, _, _ in filled)
    marks = ", ".join(["%s"] * len(filled))
    for i in range(rows):
        values = []
        for name, kind, length in filled:
            if name in allowed:
                values.append(allowed[name][i % len(allowed[name])])
            elif name in referenced:
                position, found = referenced[name]
                values.append(found[i % len(found)][position])
            else:
                value = _value(kind, i, name, name in unique)
                values.append(value[:length] if isinstance(value, str) and length else value)
        _insert(conn, table, names, marks, values, [n for n, _, _ in filled])


# What a CHECK over a number likely admits, tried in turn (shares, windows, counts).
_NUMBERS_TO_TRY = (1, 0.5, 100)


def _insert(
    conn: psycopg.Connection[Any],
    table: str,
    names: str,
    marks: str,
    values: list[Any],
    columns: list[str],
) -> None:
    """Insert the row; a CHECK it breaks gets its numeric columns' values replaced in turn."""
    for attempt in range(len(_NUMBERS_TO_TRY) + 1):
        try:
            with conn.transaction():
                conn.execute(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', values)
            return
        except psycopg.errors.CheckViolation as exc:
            if attempt == len(_NUMBERS_TO_TRY):
                raise
            checked = conn.execute(
                "SELECT a.attname FROM pg_constraint k JOIN pg_attribute a"
                " ON a.attrelid = k.conrelid AND a.attnum = ANY(k.conkey)"
                " WHERE k.conname = %s AND k.conrelid = %s::regclass",
                (exc.diag.constraint_name, table),
            ).fetchall()
            for (column,) in checked:
                if column in columns and isinstance(values[columns.index(column)], int | float):
                    values[columns.index(column)] = _NUMBERS_TO_TRY[attempt]


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        return {
            t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])  # type: ignore[index]
            for t in _tables(conn)
        }


async def test_every_revision_goes_up_down_and_up_again_with_data(
    scratch_url: str, fault_report: FaultReport
) -> None:
    order = revisions()
    await asyncio.to_thread(_walk, scratch_url, order)
    fault_report.add_security(
        SecurityRow(
            area="migrations",
            check="each revision up, down, up again with rows in every table (every CHECK"
            " IN-value present), then head down to base and up to head: " + ", ".join(order),
            cases=len(order) * 3 + 2,
            outcome="every step succeeded; rows of surviving tables kept",
        )
    )


def _walk(url: str, order: list[str]) -> None:
    previous = BASE
    for revision in order:
        # Every table of the older schema is full (the previous step filled it).
        older = counts(url)
        upgrade(url, revision)
        full = fill(url)
        downgrade(url, previous)
        # The downgrade gives back every row the older schema had: what it removes is only
        # what its upgrade added (its own tables, rows it seeded such as a task type's name).
        kept = counts(url)
        assert kept == older, (revision, "the downgrade lost or left rows:", older, kept)
        upgrade(url, revision)
        again = fill(url)
        assert again == full, (revision, full, again)
        assert current_revision(url) == revision
        previous = revision
    # All the way down with every table full, and up again.
    for revision in reversed([BASE, *order[:-1]]):
        downgrade(url, revision)
    assert counts(url) == {}
    upgrade(url, "head")
    fill(url)


async def test_longtasks_migrate_to_moves_either_way(
    scratch_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    order = revisions()
    monkeypatch.setenv("DATABASE_URL", scratch_url)
    monkeypatch.setenv("ENVIRONMENT", "test")

    async def migrate(*args: str) -> tuple[int, str]:
        code = await asyncio.to_thread(main, ["migrate", *args])
        return code, capsys.readouterr().out.strip().splitlines()[0] if code == 0 else ""

    assert await migrate() == (0, f"upgraded from base to {order[-1]}")
    await asyncio.to_thread(fill, scratch_url)
    assert await migrate("--to", order[1]) == (0, f"downgraded from {order[-1]} to {order[1]}")
    assert current_revision(scratch_url) == order[1]
    assert await migrate("--to", order[1]) == (0, f"already at {order[1]}")
    assert await migrate("--to", "head") == (0, f"upgraded from {order[1]} to {order[-1]}")
    assert await migrate("--to", "base") == (0, f"downgraded from {order[-1]} to base")
    code, _ = await migrate("--to", "9999_nope")
    assert code == 2
    assert os.environ["DATABASE_URL"] == scratch_url
