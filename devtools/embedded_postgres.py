"""Where Postgres is: `DATABASE_URL` when set, else an embedded PostgreSQL 16 (pgserver).

The embedded server keeps its data under `DATA_DIR/pgdata`, so state survives a restart.
pgserver reference-counts the processes using a data directory and stops the server when the
last one exits.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from longtasks.settings import Settings


def start_embedded_postgres(data_dir: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless here.
        warnings.simplefilter("ignore")
        import pgserver

    pgdata = (data_dir / "pgdata").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]


def resolve_database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    server = start_embedded_postgres(settings.data_dir)
    return str(server.get_uri())


APP_ROLE = "longtasks_app"


def app_url(owner_url: str) -> str:
    """The same database as the application's role (created by `longtasks migrate`)."""
    from sqlalchemy.engine import make_url

    url = make_url(owner_url).set(username=APP_ROLE, password=None)
    return url.render_as_string(hide_password=False)
