"""The tenant and role matrix, generated from the app's route table.

A new endpoint is covered the day it is added: every `/api` route is called with no token, a bad
token, another business's token (404 for one task's routes), and every role below the one the
route needs (403).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import pytest

from api.app import create_app
from tests.conftest import Stack, israeli_numbers, start_broadcast

ROLES = ["viewer", "operator", "admin"]
# The least role each write needs; every other /api route is readable by a viewer.
NEEDED_ROLE = {
    ("POST", "/api/broadcasts"): "operator",
    ("POST", "/api/long_tasks/{task_id}/cancel"): "operator",
    ("DELETE", "/api/long_tasks/{task_id}"): "admin",
    ("POST", "/api/receipts/bulk_delete"): "operator",
    ("POST", "/api/receipts/sync"): "operator",
    ("PUT", "/api/policy"): "admin",
    ("POST", "/api/long_tasks/{task_id}/retry_failed"): "operator",
    ("POST", "/api/long_tasks/{task_id}/pause"): "operator",
    ("POST", "/api/long_tasks/{task_id}/resume"): "operator",
    ("POST", "/api/long_tasks/{task_id}/approve"): "admin",
    ("POST", "/api/long_tasks/{task_id}/reject"): "admin",
    ("POST", "/api/tokens/revoke"): "admin",
    ("GET", "/api/audit"): "admin",
    ("GET", "/api/audit.csv"): "admin",
}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/broadcasts"): {
        "name": "x",
        "message": {"text": "hi"},
        "recipients": ["052-3456789"],
    },
    ("POST", "/api/receipts/bulk_delete"): {"receipt_ids": [1]},
    ("POST", "/api/receipts/sync"): {},
    ("PUT", "/api/policy"): {},
    ("POST", "/api/tokens/revoke"): {"jti": "not-a-real-jti"},
    ("POST", "/api/tickets"): {"path": "/api/long_tasks/events"},
}


def api_routes(stack: Stack) -> list[tuple[str, str]]:
    """Every (method, path) under /api, from the app's own route table (via its OpenAPI)."""
    spec = create_app(stack.settings).openapi()
    return sorted(
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if path.startswith("/api/")
        for method in operations
    )


@pytest.fixture
async def owned_task(stack: Stack, new_business: Callable[[], Awaitable[int]]) -> tuple[int, int]:
    business_id = await new_business()
    async with stack.http(business_id, "operator") as http:
        start_at = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        started = await start_broadcast(http, israeli_numbers(2), start_at=start_at)
    return business_id, int(started["task"]["id"])


def concrete(path: str, task_id: int) -> str:
    return re.sub(r"\{task_id\}", str(task_id), path)


async def test_route_table_is_covered(stack: Stack) -> None:
    routes = api_routes(stack)
    assert ("GET", "/api/long_tasks") in routes
    assert ("POST", "/api/long_tasks/{task_id}/cancel") in routes
    assert ("DELETE", "/api/long_tasks/{task_id}") in routes
    assert ("GET", "/api/long_tasks/{task_id}/events") in routes


async def test_no_token_and_bad_tokens_are_401_everywhere(
    stack: Stack, owned_task: tuple[int, int]
) -> None:
    business_id, task_id = owned_task
    now = int(dt.datetime.now(dt.UTC).timestamp())
    secret = stack.settings.jwt_secret

    def claims(**changes: Any) -> dict[str, Any]:
        """A valid token's claims with one thing changed (None: left out)."""
        base = {
            "business_id": business_id,
            "role": "admin",
            "sub": "someone",
            "jti": f"jti-{now}",
            "iss": stack.settings.jwt_issuer,
            "aud": stack.settings.jwt_audience,
            "iat": now,
            "exp": now + 60,
        }
        base.update(changes)
        return {k: v for k, v in base.items() if v is not None}

    bad_tokens = {
        "garbage": "not-a-jwt",
        "wrong secret": jwt.encode(claims(), "another-secret-0123456789abcdef0123"),
        "expired": jwt.encode(claims(iat=now - 600, exp=now - 300), secret),
        "not yet valid": jwt.encode(claims(nbf=now + 600, exp=now + 900), secret),
        "alg none": jwt.encode(claims(), "", algorithm="none"),
        "no business": jwt.encode(claims(business_id=None), secret),
        "no role": jwt.encode(claims(role=None), secret),
        "unknown role": jwt.encode(claims(role="root"), secret),
        "no exp": jwt.encode(claims(exp=None), secret),
        "no jti": jwt.encode(claims(jti=None), secret),
        "no subject": jwt.encode(claims(sub=None), secret),
        "wrong audience": jwt.encode(claims(aud="another-service"), secret),
        "wrong issuer": jwt.encode(claims(iss="someone-else"), secret),
    }
    async with stack.http() as http:
        for method, path in api_routes(stack):
            url = concrete(path, task_id)
            body = BODIES.get((method, path))
            response = await http.request(method, url, json=body)
            assert response.status_code == 401, (method, path, response.text)
            for label, token in bad_tokens.items():
                response = await http.request(
                    method, url, json=body, headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code == 401, (label, method, path, response.text)


async def test_another_business_gets_404_on_task_routes(
    stack: Stack, owned_task: tuple[int, int], new_business: Callable[[], Awaitable[int]]
) -> None:
    _, task_id = owned_task
    intruder = await new_business()
    async with stack.http(intruder, "admin") as http:
        for method, path in api_routes(stack):
            if "{task_id}" not in path:
                continue
            response = await http.request(
                method, concrete(path, task_id), json=BODIES.get((method, path))
            )
            assert response.status_code == 404, (method, path, response.text)
        listing = (await http.get("/api/long_tasks")).json()
        assert all(t["id"] != task_id for t in listing["items"])


async def test_roles_below_the_needed_one_get_403(
    stack: Stack, owned_task: tuple[int, int]
) -> None:
    business_id, task_id = owned_task
    for method, path in api_routes(stack):
        needed = NEEDED_ROLE.get((method, path), "viewer")
        for role in ROLES[: ROLES.index(needed)]:
            async with stack.http(business_id, role) as http:
                response = await http.request(
                    method, concrete(path, task_id), json=BODIES.get((method, path))
                )
            assert response.status_code == 403, (role, method, path, response.text)


async def test_validation_errors_are_422_with_reasons(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "operator") as http:
        cases = [
            {"name": "x", "message": {"text": "hi"}, "recipients": []},
            {"name": "x", "message": {}, "recipients": ["052-3456789"]},
            {
                "name": "x",
                "message": {"text": "hi", "template": {"name": "t", "language": "he"}},
                "recipients": ["052-3456789"],
            },
            {"message": {"text": "hi"}, "recipients": ["052-3456789"]},
            {
                "name": "x",
                "message": {"text": "hi"},
                "recipients": ["052-3456789"],
                "start_at": "2030-01-01T00:00:00",
            },
            {
                "name": "x",
                "message": {"text": "hi"},
                "recipients": ["052-3456789"],
                "priority": "urgent",
            },
        ]
        for body in cases:
            response = await http.post("/api/broadcasts", json=body)
            assert response.status_code == 422, (body, response.text)
            assert response.json()["detail"], body
        for params in (
            {"limit": 0},
            {"limit": 501},
            {"status": "bogus"},
            {"task_type": "x' OR 1=1 --"},
        ):
            response = await http.get("/api/long_tasks", params=params)
            assert response.status_code == 422, params
        assert (await http.get("/api/long_tasks", params={"cursor": "!!"})).status_code == 400


async def test_limits_oversized_body_and_recipient_cap(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "operator") as http:
        huge = "x" * (stack.settings.max_body_bytes + 1)
        response = await http.post(
            "/api/broadcasts", content=huge, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 413
        too_many = israeli_numbers(stack.settings.max_recipients_per_broadcast + 1)
        response = await http.post(
            "/api/broadcasts", json={"name": "x", "message": {"text": "hi"}, "recipients": too_many}
        )
        assert response.status_code == 413
        assert "at most" in response.json()["detail"]
