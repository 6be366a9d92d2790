"""The FastAPI app factory. Resources are made in the lifespan (or handed in by tests)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.auth import Authenticate
from api.deps import Resources
from api.errors import AppError, app_error_handler, task_service_error_handler
from api.metrics import ApiMetrics, RequestMetrics
from api.middleware import BodySizeLimit
from api.routers import (
    audit,
    bulk,
    controls,
    events,
    health,
    metrics,
    notifications,
    policy,
    receipts,
    tasks,
    tickets,
    tokens,
    whatsapp_webhooks,
)
from api.schemas import ERROR_RESPONSES, TASK_TYPE_SCHEMA
from longtasks.db.engine import create_engine
from longtasks.db.tenancy import require_walled_role
from longtasks.observability.logs import RequestLogContext
from longtasks.observability.tracing import RequestSpans
from longtasks.settings import Environment, Settings
from longtasks.tasks import (
    CancelNotDelivered,
    ControlRefused,
    SignalNotDelivered,
    TaskNotStarted,
)
from task_types import BUILTIN, Registry

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = logging.getLogger("longtasks.api")


async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database error on %s: %s", request.url.path, exc)
    return JSONResponse(
        {"detail": "the database is unavailable right now; retry shortly"},
        status_code=503,
        headers={"Retry-After": "2"},
    )


async def invalid_value(request: Request, exc: Exception) -> JSONResponse:
    """A value Postgres refuses (out of range, NUL in text) is the client's error, not an outage."""
    log.warning("value refused by the database on %s: %s", request.url.path, exc)
    return JSONResponse({"detail": "a value is out of range or not valid text"}, status_code=400)


def _printable(part: Any) -> Any:
    return part if isinstance(part, int) else str(part).encode("utf-8", "backslashreplace").decode()


async def validation_failed(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 with the reasons, except that an echoed input JSON cannot carry (a lone
    surrogate, 1e999 read as infinity, nesting too deep) is left out instead of failing (500)."""
    assert isinstance(exc, RequestValidationError)
    detail = []
    for error in exc.errors():
        try:
            item = jsonable_encoder(error)
            json.dumps(item, ensure_ascii=False, allow_nan=False).encode()
        except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
            item = {
                "type": error.get("type"),
                "loc": [_printable(part) for part in error.get("loc", ())],
                "msg": _printable(error.get("msg", "")),
            }
        detail.append(item)
    return JSONResponse({"detail": detail}, status_code=422)


def openapi_with_task_types(app: FastAPI, registry: Registry) -> dict[str, Any]:
    """FastAPI's spec, every task-type field referring to one `TaskType` schema that lists the
    task types of this app's registry (they are registered, not a fixed list)."""
    if app.openapi_schema is None:
        spec = FastAPI.openapi(app)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas[TASK_TYPE_SCHEMA] = {
            "type": "string",
            "enum": registry.type_names,
            "title": TASK_TYPE_SCHEMA,
            "description": "a task type this API serves",
        }
        _refer_to_task_type(spec["paths"])
        for name, schema in schemas.items():
            if name != TASK_TYPE_SCHEMA:
                _refer_to_task_type(schema)
    return app.openapi_schema or {}


def _refer_to_task_type(node: Any) -> Any:
    """Replace each inlined copy of the built-in `TaskType` enum (pydantic inlines the schema
    of `api.schemas.TaskTypeName`) with a reference to the registry's."""
    if isinstance(node, dict):
        if node.get("title") == TASK_TYPE_SCHEMA and "enum" in node:
            return {"$ref": f"#/components/schemas/{TASK_TYPE_SCHEMA}"}
        for key, value in node.items():
            node[key] = _refer_to_task_type(value)
    elif isinstance(node, list):
        node[:] = [_refer_to_task_type(value) for value in node]
    return node


def create_app(
    settings: Settings, resources: Resources | None = None, *, registry: Registry = BUILTIN
) -> FastAPI:
    """The API serving the registry's task types: the shared task routes, and each type's own
    intake routes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if resources is not None:
            await registry.ensure_in_database(resources.engine)
            resources.sending_task_types = registry.sending_type_names
            app.state.resources = resources
            yield
            return
        engine = create_engine(settings.require_database_url(), pool_size=settings.db_pool_size)
        await require_walled_role(engine, refuse=settings.environment is Environment.production)
        await registry.ensure_in_database(engine)
        app.state.resources = Resources(
            settings=settings, engine=engine, sending_task_types=registry.sending_type_names
        )
        try:
            yield
        finally:
            if app.state.resources.events is not None:
                await app.state.resources.events.close()
            await engine.dispose()

    app = FastAPI(
        title="longtasks",
        version="0.1.0",
        description="Durable, user-visible long-running tasks: WhatsApp broadcasts, receipt"
        " deletion and Gmail receipt sync, each a Temporal workflow.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.add_exception_handler(AppError, app_error_handler)
    for refusal in (TaskNotStarted, CancelNotDelivered, SignalNotDelivered, ControlRefused):
        app.add_exception_handler(refusal, task_service_error_handler)
    for exc_type in (OperationalError, DBAPIError, PoolTimeout, OSError):
        app.add_exception_handler(exc_type, database_unavailable)
    app.add_exception_handler(DataError, invalid_value)
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.include_router(health.router)
    # Before the tasks router: `/api/long_tasks/events` must not be read as a task id.
    app.include_router(events.router)
    # Also before it: `POST /api/long_tasks/bulk_cancel` is not a task id either.
    app.include_router(bulk.router)
    app.include_router(tasks.router)
    app.include_router(controls.router)
    app.include_router(notifications.router)
    app.include_router(policy.router)
    app.include_router(metrics.router)
    app.state.metrics = ApiMetrics()
    app.include_router(receipts.router)
    for router in registry.routers():
        app.include_router(router)
    # Meta's status webhooks: the provider's edge, not a task type's intake.
    app.include_router(whatsapp_webhooks.router)
    app.state.task_types = frozenset(registry.type_names)
    app.openapi = lambda: openapi_with_task_types(app, registry)  # type: ignore[method-assign]
    app.include_router(tickets.router)
    app.include_router(tokens.router)
    app.include_router(audit.router)

    index_html = (STATIC_DIR / "index.html") if (STATIC_DIR / "index.html").exists() else None

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        if index_html is None:
            return HTMLResponse("<h1>longtasks</h1><p>See <a href='/docs'>/docs</a>.</p>")
        page = index_html.read_text(encoding="utf-8").replace(
            'content="30" data-setting="stall"', f'content="{settings.stall_after_s}"'
        )
        return HTMLResponse(page)

    if STATIC_DIR.exists():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # Who is calling, decided once before routing, with their request budget (429 over it).
    app.add_middleware(
        Authenticate,
        rate_per_s=settings.api_rate_limit_per_s,
        burst=settings.api_rate_limit_burst,
    )
    # Outermost first: limits apply before any work is done.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        # The CSV upload streams into the database: its own cap (the intake enforces it too,
        # with a reason; a multipart form's own bytes fit in the margin).
        path_limits={"/api/audiences": settings.max_audience_bytes + 64 * 1024},
    )
    if settings.cors_origins:  # closed unless origins are named
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # Added last, so outermost: 413s and 429s are timed, traced and logged too.
    app.add_middleware(RequestLogContext)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    if settings.otel_exporter_otlp_endpoint:
        app.add_middleware(RequestSpans)
    return app
