"""Events of runs and stop switches, through the outbox (docs/alerts.md): ``run.exhausted``
once per exhaustion, ``run.extended`` per extension, ``budget.paused`` when a switch is
turned on at any scope; each written in the transaction of the change that caused it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from budgets.events.models import Event
from budgets.events.outbox import event_json
from personas.services.scopes import PLATFORM, agent_scope, write_scope_budget
from personas.toml_store import BudgetSpec

pytestmark = pytest.mark.django_db

BASE = "/api/agents/hermes/personas/coder"


@pytest.fixture
def client(make_persona: Callable[..., Any]) -> APIClient:
    make_persona(budget_toml="daily_usd = 10.0\n")
    return APIClient()


def events(kind: str) -> list[dict[str, Any]]:
    return [dict(event_json(e)) for e in Event.objects.filter(type=kind).order_by("id")]


def test_one_run_exhausted_event_names_the_source_and_what_is_left(client: APIClient) -> None:
    client.post(
        f"{BASE}/runs", {"run_id": "g", "budget_usd": 1, "budget_tokens": 500}, format="json"
    )
    body = {"surface": "s", "model": "m", "cost_usd": 0.75, "request_id": "r1", "run_id": "g"}
    client.post(f"{BASE}/budget/charge", {**body, "input_tokens": 100}, format="json")
    for _ in range(3):
        check = {"estimated_cost_usd": 0.5, "run_id": "g"}
        assert client.post(f"{BASE}/budget/check", check, format="json").json()["allowed"] is False

    [event] = events("run.exhausted")
    assert event["scope"] == {"kind": "run", "agent": "hermes", "persona": "coder"}
    assert event["message"] == (
        "run 'g' of hermes/coder ran out of its USD budget; checks naming it are refused "
        "until an operator extends it"
    )
    assert (event["cap_usd"], event["spent_usd"]) == (1.0, 0.75)
    assert event["data"]["source"] == "usd"
    assert event["data"]["limit"] == "run_usd"
    assert event["data"]["remaining"] == {"usd": 0.25, "tokens": 400, "seconds": None}
    assert event["data"]["run_id"] == "g"


def test_each_extension_writes_run_extended_with_the_actor(
    agent: Any, api_client: APIClient, make_persona: Callable[..., Any]
) -> None:
    make_persona(budget_toml="")
    api_client.post(f"{BASE}/runs", {"run_id": "g", "budget_usd": 1}, format="json")
    api_client.post(f"{BASE}/runs/g/extend", {"usd": 0.5}, format="json")
    api_client.post(f"{BASE}/runs/g/extend", {"tokens": 100}, format="json")
    extended = events("run.extended")
    assert len(extended) == 2
    first = extended[0]
    assert first["data"]["added"] == {"usd": 0.5, "tokens": None, "seconds": None}
    assert first["data"]["budget"]["usd"] == 1.5
    assert first["data"]["actor"].startswith("key:")
    assert first["cap_usd"] == 1.5


def test_a_refused_extension_writes_no_event(client: APIClient) -> None:
    client.post(f"{BASE}/runs", {"run_id": "g", "budget_usd": 1}, format="json")
    client.post(f"{BASE}/runs/g/extend", {"usd": 0}, format="json")
    assert events("run.extended") == []


def test_pausing_writes_budget_paused_once_and_resuming_none(client: APIClient) -> None:
    client.put(f"{BASE}/budget", {"daily_usd": 10, "paused": True}, format="json")
    client.put(f"{BASE}/budget", {"daily_usd": 10, "paused": True}, format="json")  # no change
    client.put(f"{BASE}/budget", {"daily_usd": 10}, format="json")  # resume
    [event] = events("budget.paused")
    assert event["scope"] == {"kind": "persona", "agent": "hermes", "persona": "coder"}
    assert event["message"].startswith("persona hermes/coder paused by anonymous")
    assert event["data"]["paused"] is True
    assert Event.objects.filter(type="budget.changed").count() == 2  # pause and resume


def test_pausing_an_agent_or_the_platform_writes_budget_paused(agent: Any) -> None:
    write_scope_budget(agent_scope("hermes"), BudgetSpec(paused=True), actor="ops", via="cli")
    write_scope_budget(PLATFORM, BudgetSpec(paused=True), actor="ops", via="cli")
    scopes = [(e["scope"]["kind"], e["scope"]["agent"]) for e in events("budget.paused")]
    assert scopes == [("agent", "hermes"), ("platform", None)]
    messages = [e["message"] for e in events("budget.paused")]
    assert messages[0].startswith("agent hermes paused by ops (via command line)")
    assert messages[1].startswith("the platform paused by ops")
