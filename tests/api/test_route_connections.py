"""Routes take their connection from the request's transaction (api/transactions.py), never from
the engine: a route that opens its own connection reads outside the request's snapshot, or
writes what the request's rollback cannot undo.

Read from the routers' source, so a new route is held to it the day it is written. The services
a route calls with `resources.engine` (`longtasks.tasks`: start, cancel, pause, ...) begin their
own transactions on purpose: they commit before they tell Temporal.
"""

from __future__ import annotations

import ast
from pathlib import Path

import api.routers

ROUTERS = Path(api.routers.__file__).parent

# A module that must open a connection itself, and why (say it beside the call too).
OWN_CONNECTION = {
    # A probe: an unreachable Postgres is part of its answer (503 and what failed), not an
    # error that ends the request before it can say so.
    "health.py",
}


def _engine_connections(source: str) -> list[int]:
    """Lines calling `<...>.engine.connect()`/`.begin()`, or `engine.connect()`/`.begin()`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in ("connect", "begin"):
            continue
        owner = node.func.value
        name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
        if name == "engine":
            found.append(node.lineno)
    return found


def test_routes_open_no_connection_of_their_own() -> None:
    opened = {
        path.name: lines
        for path in sorted(ROUTERS.glob("*.py"))
        if path.name not in OWN_CONNECTION
        and (lines := _engine_connections(path.read_text(encoding="utf-8")))
    }
    assert opened == {}, (
        "take ReadConn, WriteConn or ExportConn (or TransactionsDep for work that must be"
        " several transactions) from api/transactions.py instead"
    )


def test_the_check_finds_a_route_opening_its_own_connection() -> None:
    route = (
        "async def get(resources):\n"
        "    async with resources.engine.connect() as conn:\n"
        "        pass\n"
        "    async with engine.begin() as conn:\n"
        "        pass\n"
    )
    assert _engine_connections(route) == [2, 4]
    assert _engine_connections((ROUTERS / "health.py").read_text(encoding="utf-8"))
