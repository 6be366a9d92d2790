"""The REST client's details: the event-stream parser and errors that show the server's word."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cli.rest import SseParser, api_error, describe_detail


def test_sse_parser() -> None:
    parser = SseParser()
    lines = [
        "retry: 2000",
        "",
        ": keep-alive",
        "",
        "id: 3",
        "event: task",
        'data: {"a":',
        "data: 1}",
        "",
        "data:x",
        "",
    ]
    events = [e for e in (parser.feed(line) for line in lines) if e is not None]
    assert [(e.event, e.data, e.id) for e in events] == [
        ("task", '{"a":\n1}', "3"),
        ("message", "x", "3"),
    ]


def test_validation_details_are_readable() -> None:
    detail = [
        {"type": "missing", "loc": ["body", "name"], "msg": "Field required"},
        {"type": "value_error", "loc": ["body", "start_at"], "msg": "needs a time zone"},
        {"loc": [], "msg": "whole body"},
    ]
    assert describe_detail(detail) == (
        "name: Field required; start_at: needs a time zone; whole body"
    )
    assert describe_detail("plain") == "plain"
    assert describe_detail(None) == ""


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"detail": "token expired"}, "not authenticated (HTTP 401): token expired"),
        (
            403,
            {"detail": "this action needs the operator role"},
            "permission denied (HTTP 403): this action needs the operator role",
        ),
        (404, {"detail": "task 9 not found"}, "not found (HTTP 404): task 9 not found"),
        (
            422,
            {"detail": [{"loc": ["body", "recipients"], "msg": "too short"}]},
            "invalid request (HTTP 422): recipients: too short",
        ),
        (502, None, "bad gateway (HTTP 502): <html>oops</html>"),
    ],
)
def test_api_errors_show_the_servers_detail(
    status: int, body: dict[str, Any] | None, expected: str
) -> None:
    if body is None:
        response = httpx.Response(status, text="<html>oops</html>")
    else:
        response = httpx.Response(status, json=body)
    error = api_error(response)
    assert error.status_code == status
    assert error.message.startswith(expected)
    if status in (401, 403):
        assert "LONGTASKS_TOKEN" in error.message


def test_a_refusal_that_is_not_about_the_role_does_not_blame_the_role() -> None:
    detail = "the person who created a task cannot approve it"
    error = api_error(httpx.Response(403, json={"detail": detail}))
    assert error.message == f"permission denied (HTTP 403): {detail}"
