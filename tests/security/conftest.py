"""Helpers for the hostile-input and access suite: a dedicated API instance with its own limits
(on its own port, sharing the stack's Postgres, Temporal and worker), and a counter of the
hostile requests sent and the 5xx seen, for the fault report."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from api.app import create_app
from api.deps import Resources
from tests.conftest import Stack, _free_port, serve_api


@contextlib.asynccontextmanager
async def dedicated_api(stack: Stack, **overrides: Any) -> AsyncIterator[str]:
    """`create_app` with the stack's settings changed by `overrides`, served over HTTP."""
    settings = stack.settings.model_copy(update=overrides)
    resources = Resources(settings=settings, engine=stack.app_engine, temporal=stack.client)
    port = _free_port()
    server, task = await serve_api(create_app(settings, resources), port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        if resources.events is not None:
            await resources.events.close()


@dataclass
class HostileTally:
    """Every hostile request goes through `send`, so the report's counts are the real ones."""

    http: httpx.AsyncClient
    sent: int = 0
    server_errors: list[str] = field(default_factory=list)

    async def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(method, url, **kwargs)
        self.sent += 1
        if response.status_code >= 500:
            self.server_errors.append(f"{method} {url} -> {response.status_code}: {response.text}")
        return response
