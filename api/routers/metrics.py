"""`GET /metrics`: Prometheus text for the API (see api/metrics.py).

Open by default, like most scrape targets on a private network; with `METRICS_TOKEN` set it
wants `Authorization: Bearer <METRICS_TOKEN>`. It reveals counts only, never a business's data.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ResourcesDep
from api.errors import Unauthorized
from api.metrics import ApiMetrics
from api.transactions import OpsReadConn
from longtasks.db.repositories import tasks as task_repo

router = APIRouter(tags=["ops"])


def metrics_token(request: Request, resources: ResourcesDep) -> None:
    token = resources.settings.metrics_token
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("metrics need the METRICS_TOKEN bearer token")


@router.get("/metrics", include_in_schema=False)
async def metrics(
    request: Request,
    # Checked before the connection is taken: a refused scrape never costs one.
    _: Annotated[None, Depends(metrics_token)],
    conn: OpsReadConn,
) -> Response:
    api_metrics: ApiMetrics = request.app.state.metrics
    api_metrics.set_task_counts(list(await task_repo.count_by_status(conn)))
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
