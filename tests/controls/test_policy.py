"""`/api/policy`: defaults, partial changes, who may change it, and what it refuses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tests.conftest import Stack


async def test_defaults_then_partial_changes_keep_the_other_fields(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "viewer") as http:
        policy = (await http.get("/api/policy")).json()
    assert policy == {
        "approval_required_above": None,
        "daily_send_cap": None,
        "auto_pause_failure_share": 0.5,
        "auto_pause_window": 200,
        "updated_by": None,
        "updated_at": None,
    }
    async with stack.http(business_id, "admin", user="dana") as http:
        first = await http.put("/api/policy", json={"approval_required_above": 1000})
        assert first.status_code == 200, first.text
        second = await http.put("/api/policy", json={"daily_send_cap": 5000})
        assert second.status_code == 200, second.text
        policy = (await http.get("/api/policy")).json()
        assert policy["approval_required_above"] == 1000
        assert policy["daily_send_cap"] == 5000
        assert policy["auto_pause_failure_share"] == 0.5
        assert policy["updated_by"] == "dana"
        # null turns a control off; a field left out is unchanged.
        off = await http.put(
            "/api/policy", json={"approval_required_above": None, "auto_pause_failure_share": None}
        )
        assert off.json()["approval_required_above"] is None
        assert off.json()["auto_pause_failure_share"] is None
        assert off.json()["daily_send_cap"] == 5000


async def test_refuses_values_that_make_no_sense(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id = await new_business()
    async with stack.http(business_id, "admin") as http:
        for body in (
            {"approval_required_above": -1},
            {"daily_send_cap": -5},
            {"auto_pause_failure_share": 0},
            {"auto_pause_failure_share": 1.5},
            {"auto_pause_window": 0},
            {"auto_pause_window": None},
            {"approval_required_above": "many"},
            {"surprise": 1},
        ):
            response = await http.put("/api/policy", json=body)
            assert response.status_code == 422, (body, response.text)
        assert (await http.get("/api/policy")).json()["updated_at"] is None


async def test_only_admins_change_it_and_each_business_has_its_own(
    stack: Stack, new_business: Callable[[], Awaitable[int]]
) -> None:
    business_id, other = await new_business(), await new_business()
    async with stack.http(business_id, "operator") as http:
        response = await http.put("/api/policy", json={"daily_send_cap": 1})
        assert response.status_code == 403
    async with stack.http(business_id, "admin") as http:
        assert (await http.put("/api/policy", json={"daily_send_cap": 7})).status_code == 200
    async with stack.http(other, "admin") as http:
        assert (await http.get("/api/policy")).json()["daily_send_cap"] is None
