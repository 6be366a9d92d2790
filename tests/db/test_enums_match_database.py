"""The migrated database holds what `longtasks.domain` says: each enum-backed CHECK lists
exactly the enum's values, and `task_types` the built-in task types. A value added to an enum
without a migration (a new task status, say) fails here."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import CheckConstraint, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from longtasks.db.engine import create_engine
from longtasks.db.models import Base
from longtasks.db.repositories import task_types as task_type_repo
from longtasks.domain import TaskType
from tests.conftest import fresh_database


def enum_checks() -> Iterator[tuple[str, str, type[enum.StrEnum]]]:
    """(table, constraint, enum) for every CHECK the models derive from an enum."""
    for table in Base.metadata.sorted_tables:
        for constraint in table.constraints:
            if isinstance(constraint, CheckConstraint) and "enum" in constraint.info:
                yield table.name, str(constraint.name), constraint.info["enum"]


def listed_values(definition: str) -> set[str]:
    """The quoted literals of `pg_get_constraintdef` (`... ARRAY['a'::character varying, ...`)."""
    return {m.replace("''", "'") for m in re.findall(r"'((?:[^']|'')*)'", definition)}


async def constraint_definitions(engine: AsyncEngine) -> dict[tuple[str, str], str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT rel.relname, con.conname, pg_get_constraintdef(con.oid)"
                " FROM pg_constraint con JOIN pg_class rel ON rel.oid = con.conrelid"
                " WHERE con.contype = 'c'"
            )
        )
        return {(r[0], r[1]): str(r[2]) for r in rows}


def test_the_models_derive_a_check_from_each_stored_enum() -> None:
    checks = {(table, name) for table, name, _ in enum_checks()}
    assert {
        ("long_running_tasks", "ck_long_running_tasks_status"),
        ("long_running_tasks", "ck_long_running_tasks_priority"),
        ("task_items", "ck_task_items_status"),
        ("broadcasts", "ck_broadcasts_unconfirmed_policy"),
        ("receipts", "ck_receipts_source"),
    } <= checks


async def test_a_freshly_migrated_database_matches_the_enums(postgres_url: str) -> None:
    async with fresh_database(postgres_url) as url:
        engine = create_engine(url, pool_size=1)
        try:
            live = await constraint_definitions(engine)
            async with engine.connect() as conn:
                task_types = await task_type_repo.known(conn)
        finally:
            await engine.dispose()
    for table, name, values in enum_checks():
        assert (table, name) in live, f"{name}: no such constraint in the migrated database"
        assert listed_values(live[table, name]) == {v.value for v in values}, (
            f"{name} lists {sorted(listed_values(live[table, name]))}; {values.__name__} has"
            f" {sorted(v.value for v in values)}: a migration is missing"
        )
    assert task_types == {t.value for t in TaskType}


@pytest.mark.parametrize(
    ("column", "value"),
    [("task_type", "not_registered"), ("status", "bogus"), ("priority", "urgent")],
)
async def test_the_database_refuses_a_task_outside_the_enums(
    engine: AsyncEngine, column: str, value: str
) -> None:
    row = {"business_id": 1, "task_type": "broadcast", "status": "running", "priority": "low"}
    row[column] = value
    async with engine.connect() as conn:
        await conn.execute(
            text("INSERT INTO businesses (id, name) VALUES (1, 'b1') ON CONFLICT DO NOTHING")
        )
        await conn.commit()
        with pytest.raises(IntegrityError):
            await conn.execute(
                text(
                    "INSERT INTO long_running_tasks (business_id, task_type, status, priority)"
                    " VALUES (:business_id, :task_type, :status, :priority)"
                ),
                row,
            )
        await conn.rollback()
