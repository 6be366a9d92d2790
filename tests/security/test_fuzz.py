"""Schemathesis fuzzes the live OpenAPI spec of the real API over HTTP: generated valid and
invalid requests to every operation, with a fresh business's operator token and with none.
No request may get a 5xx, and every response must match the spec: a documented status code,
content type, body schema and headers (the errors every operation can answer are documented
by `api.schemas.ERROR_RESPONSES`).

The API under test is a dedicated instance on the stack (same Postgres, Temporal and worker)
with a low recipient cap and body limit, so a generated broadcast stays small.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import FaultReport, HostileRow, Stack
from tests.security.conftest import dedicated_api

EXAMPLES_PER_OPERATION = 30
# Endless streams while a task runs: fuzzed without a token only (they answer 401 at once);
# their hostile inputs are tested in test_hostile_params.
STREAMS = {("GET", "/api/long_tasks/events"), ("GET", "/api/long_tasks/{task_id}/events")}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@dataclass
class FuzzRun:
    sent: int = 0
    server_errors: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _one_operation(
    operation: schemathesis.APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    base_url: str,
    headers: dict[str, str],
    session: requests.Session,
    run: FuzzRun,
) -> None:
    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def one(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=20)
        run.sent += 1
        run.statuses[response.status_code] += 1
        run.by_operation[operation.label] = run.by_operation.get(operation.label, 0) + 1
        if response.status_code >= 500:
            run.server_errors += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    one()


def fuzz(base_url: str, token: str | None, skip: set[tuple[str, str]]) -> FuzzRun:
    """Blocking (requests, hypothesis): run it in a thread, the stack lives in the event loop."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=10)
    run = FuzzRun()
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if not isinstance(result, Ok):
                run.failures.append(f"invalid operation in the spec: {result.err()}")
                continue
            operation = result.ok()
            if (operation.method.upper(), operation.path) in skip:
                continue
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    _one_operation(operation, mode, base_url, headers, session, run)
                except Unsatisfiable:
                    # No parameters and no body: nothing to make invalid.
                    if mode is not GenerationMode.NEGATIVE:
                        raise
                except Exception as exc:
                    run.failures.append(f"{operation.label} ({mode.value}): {exc}")
    return run


async def _fuzz_as(
    stack: Stack, fault_report: FaultReport, who: str, token: str | None, skip: set[tuple[str, str]]
) -> None:
    async with dedicated_api(
        stack, max_recipients_per_broadcast=25, max_body_bytes=64 * 1024
    ) as base_url:
        started = time.monotonic()
        run = await asyncio.to_thread(fuzz, base_url, token, skip)
        elapsed = time.monotonic() - started
    statuses = " ".join(f"{code}×{n}" for code, n in sorted(run.statuses.items()))
    fault_report.add_hostile(
        HostileRow(
            scenario=f"schemathesis fuzz of every operation, {who}",
            requests=run.sent,
            server_errors=run.server_errors,
            outcome=(
                f"{len(run.by_operation)} operations, positive and negative cases,"
                f" {elapsed:.0f}s; statuses {statuses}; "
                + ("all responses match the spec" if not run.failures else "FAILED")
            ),
        )
    )
    assert run.sent > 0
    assert not run.failures, "\n\n".join(run.failures)
    assert run.server_errors == 0


async def test_fuzz_with_an_operator_token(
    stack: Stack, new_business: Callable[[], Awaitable[int]], fault_report: FaultReport
) -> None:
    business_id = await new_business()
    await _fuzz_as(
        stack, fault_report, "operator token", stack.token(business_id, "operator"), STREAMS
    )


async def test_fuzz_without_a_token(stack: Stack, fault_report: FaultReport) -> None:
    await _fuzz_as(stack, fault_report, "no token", None, set())
