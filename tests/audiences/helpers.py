"""Uploading customer lists through the API and waiting for their import."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable, Sequence
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


def csv_bytes(
    rows: Iterable[Sequence[str]],
    header: Sequence[str] = ("phone", "name"),
    *,
    delimiter: str = ",",
    bom: bool = False,
    newline: str = "\n",
) -> bytes:
    import csv

    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig" if bom else "utf-8")


async def upload(
    http: httpx.AsyncClient,
    data: bytes,
    *,
    content_type: str = "text/csv",
    params: dict[str, str] | None = None,
) -> httpx.Response:
    return await http.post(
        "/api/audiences", content=data, headers={"Content-Type": content_type}, params=params
    )


async def upload_ok(http: httpx.AsyncClient, data: bytes, **kwargs: Any) -> dict[str, Any]:
    response = await upload(http, data, **kwargs)
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    assert body["audience"]["status"] == "importing"
    return body


async def wait_audience(
    http: httpx.AsyncClient, audience_id: int, statuses: set[str], timeout_s: float = 120
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await http.get(f"/api/audiences/{audience_id}")
        assert response.status_code == 200, response.text
        audience: dict[str, Any] = response.json()
        if audience["status"] in statuses:
            return audience
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"audience {audience_id} still {audience['status']}: {audience}")
        await asyncio.sleep(0.1)


async def import_ready(http: httpx.AsyncClient, data: bytes, **kwargs: Any) -> dict[str, Any]:
    started = await upload_ok(http, data, **kwargs)
    return await wait_audience(http, started["audience"]["id"], {"ready", "failed"})


async def members(engine: AsyncEngine, audience_id: int) -> list[tuple[int, int, str, list[str]]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT seq, line, phone, vars FROM audience_members WHERE audience_id = :a"
                " ORDER BY seq"
            ),
            {"a": audience_id},
        )
        return [(r[0], r[1], r[2], list(r[3])) for r in rows]


async def kept_for(engine: AsyncEngine, business_id: int) -> dict[str, int]:
    """What a business has stored of uploads: audiences, staged chunks, import tasks."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM audiences WHERE business_id = :b),"
                    " (SELECT count(*) FROM audience_upload_chunks AS c"
                    "   JOIN audiences AS a ON a.id = c.audience_id WHERE a.business_id = :b),"
                    " (SELECT count(*) FROM long_running_tasks WHERE business_id = :b"
                    "   AND task_type = 'audience_import')"
                ),
                {"b": business_id},
            )
        ).one()
    return {"audiences": int(row[0]), "chunks": int(row[1]), "tasks": int(row[2])}
