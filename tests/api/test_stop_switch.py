"""The stop switch over HTTP: ``paused`` in a PUT body or the file refuses every check.

A paused scope blocks whatever the estimate (zero included) and whatever ``hard_cap``
says; charges for calls already made are still recorded; resuming lifts it at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from budgets.models import Charge
from personas.models import BudgetChange

pytestmark = pytest.mark.django_db

BUDGET = "/api/agents/hermes/personas/coder/budget"
PAUSED_REASON = "an operator paused the persona budget: no call is allowed until it is resumed"


@pytest.fixture
def client(make_persona: Callable[..., Any]) -> APIClient:
    make_persona(budget_toml="daily_usd = 5.0\n")
    return APIClient()


def check(client: APIClient, estimate: float = 0.01) -> dict[str, Any]:
    response = client.post(f"{BUDGET}/check", {"estimated_cost_usd": estimate}, format="json")
    assert response.status_code == 200
    return dict(response.json())


@pytest.mark.parametrize("hard_cap", [True, False])
def test_a_paused_persona_refuses_every_check_whatever_the_estimate(
    client: APIClient, hard_cap: bool
) -> None:
    put = client.put(BUDGET, {"daily_usd": 5, "hard_cap": hard_cap, "paused": True}, format="json")
    assert put.status_code == 200
    assert put.json()["budget"]["paused"] is True
    for estimate in (0, 0.01, 4.99):
        answer = check(client, estimate)
        assert answer["allowed"] is False
        assert answer["decision"] == "block"
        assert answer["limit"] == "paused"
        assert answer["reason"] == PAUSED_REASON
    reserved = client.post(
        f"{BUDGET}/check", {"estimated_cost_usd": 0.01, "reserve": True}, format="json"
    ).json()
    assert reserved["allowed"] is False
    assert "hold" not in reserved


def test_a_paused_persona_still_records_charges(client: APIClient) -> None:
    client.put(BUDGET, {"daily_usd": 5, "paused": True}, format="json")
    body = {"surface": "s", "model": "m", "cost_usd": 0.2, "request_id": "r1"}
    response = client.post(f"{BUDGET}/charge", body, format="json")
    assert response.status_code == 200
    assert response.json()["recorded"] is True
    assert Charge.objects.count() == 1


def test_resuming_lifts_the_stop_at_once_and_both_are_audited(client: APIClient) -> None:
    client.put(BUDGET, {"daily_usd": 5, "paused": True}, format="json")
    resumed = client.put(BUDGET, {"daily_usd": 5}, format="json").json()
    assert "paused" not in resumed["budget"]
    assert check(client)["allowed"] is True
    changes = BudgetChange.objects.order_by("id")
    assert [((c.before or {}).get("paused"), c.after.get("paused")) for c in changes] == [
        (None, True),
        (True, None),
    ]


def test_a_get_shows_the_switch(client: APIClient) -> None:
    assert "paused" not in client.get(BUDGET).json()["budget"]
    client.put(BUDGET, {"daily_usd": 5, "paused": True}, format="json")
    assert client.get(BUDGET).json()["budget"]["paused"] is True


def test_paused_must_be_a_boolean(client: APIClient) -> None:
    response = client.put(BUDGET, {"paused": "yes"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "budget.invalid"
    assert response.json()["error"]["details"] == {"key": "paused"}
