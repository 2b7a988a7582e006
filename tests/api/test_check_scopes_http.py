"""The check over HTTP against the scopes above a persona: the stop switch of an agent
and of the platform, and a run's place in the order run, persona, agent, platform.

Real agent.toml / platform.toml files (hand edits, as an operator makes them), the real
database, the Django test client.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from budgets.events.models import Event
from budgets.models import Charge, Run
from tests.api.conftest import Clock

pytestmark = pytest.mark.django_db

MakePersona = Callable[..., Any]


def url(agent_id: str, persona_id: str, tail: str = "budget/check") -> str:
    return f"/api/agents/{agent_id}/personas/{persona_id}/{tail}"


def check(client: APIClient, agent_id: str, persona_id: str, **body: Any) -> dict[str, Any]:
    body.setdefault("estimated_cost_usd", 0.01)
    response = client.post(url(agent_id, persona_id), body, format="json")
    assert response.status_code == 200, response.content
    return dict(response.json())


def charge(
    client: APIClient, agent_id: str, persona_id: str, cost: float, rid: str, **extra: Any
) -> None:
    body = {"surface": "s", "model": "m", "cost_usd": cost, "request_id": rid, **extra}
    response = client.post(url(agent_id, persona_id, "budget/charge"), body, format="json")
    assert response.status_code == 200, response.content


def agent_toml(data_dir: Path, lines: str, agent_id: str = "hermes") -> None:
    (data_dir / "agents" / agent_id / "agent.toml").write_text(f"[agent.budget]\n{lines}")


def platform_toml(data_dir: Path, lines: str) -> None:
    (data_dir / "platform.toml").write_text(f"[platform.budget]\n{lines}")


@pytest.fixture
def fleet(make_persona: MakePersona) -> list[tuple[str, str]]:
    """Two agents, three personas; the personas' own caps are roomy."""
    ids = [("hermes", "coder"), ("hermes", "writer"), ("other", "x")]
    for agent_id, persona_id in ids:
        make_persona(agent_id, persona_id, "daily_usd = 100.0\n")
    return ids


# ---------------------------------------------------------------------------------------
# The stop switch above the persona


@pytest.mark.parametrize("hard_cap", ["true", "false"])
def test_a_paused_agent_refuses_every_check_of_every_persona_below_it(
    fleet: list[tuple[str, str]], data_dir: Path, hard_cap: str
) -> None:
    client = APIClient()
    agent_toml(data_dir, f"daily_usd = 50.0\nhard_cap = {hard_cap}\npaused = true\n")
    reason = "an operator paused the agent budget: no call is allowed until it is resumed"
    for persona_id in ("coder", "writer"):
        for estimate in (0, 0.01, 49.0):
            answer = check(client, "hermes", persona_id, estimated_cost_usd=estimate)
            assert answer["allowed"] is False
            assert answer["decision"] == "block"
            assert (answer["scope"], answer["limit"], answer["reason"]) == (
                "agent",
                "paused",
                reason,
            )
        reserved = check(client, "hermes", persona_id, reserve=True)
        assert reserved["allowed"] is False
        assert "hold" not in reserved
    # Another agent's persona is not below it.
    assert check(client, "other", "x")["allowed"] is True
    # Calls already made are still recorded.
    charge(client, "hermes", "coder", 0.2, "r1")
    assert Charge.objects.filter(request_id="r1").exists()


def test_a_paused_platform_refuses_every_check_of_every_agent(
    fleet: list[tuple[str, str]], data_dir: Path
) -> None:
    client = APIClient()
    platform_toml(data_dir, "paused = true\n")
    for agent_id, persona_id in fleet:
        answer = check(client, agent_id, persona_id, estimated_cost_usd=0)
        assert (answer["allowed"], answer["scope"], answer["limit"]) == (
            False,
            "platform",
            "paused",
        )
        assert answer["reason"] == (
            "an operator paused the platform budget: no call is allowed until it is resumed"
        )


def test_the_nearest_paused_scope_is_the_one_named(
    fleet: list[tuple[str, str]], data_dir: Path
) -> None:
    client = APIClient()
    agent_toml(data_dir, "paused = true\n")
    platform_toml(data_dir, "paused = true\n")
    assert check(client, "hermes", "coder")["scope"] == "agent"  # persona, agent, platform
    assert check(client, "other", "x")["scope"] == "platform"


def test_resuming_the_agent_by_hand_lifts_the_stop_at_once(
    fleet: list[tuple[str, str]], data_dir: Path
) -> None:
    client = APIClient()
    agent_toml(data_dir, "paused = true\n")
    assert check(client, "hermes", "coder")["allowed"] is False
    agent_toml(data_dir, "paused = false\n")
    answer = check(client, "hermes", "coder")
    assert (answer["allowed"], answer["scope"], answer["limit"]) == (True, None, None)


def test_pausing_by_hand_is_one_budget_paused_event_of_that_scope(
    fleet: list[tuple[str, str]], data_dir: Path
) -> None:
    client = APIClient()
    agent_toml(data_dir, "paused = true\n")
    platform_toml(data_dir, "paused = true\n")
    for agent_id, persona_id in fleet * 2:
        check(client, agent_id, persona_id)  # each check sees the files; one event each
    paused = client.get("/api/events").json()["events"]
    paused = [e for e in paused if e["type"] == "budget.paused"]
    assert [e["scope"] for e in paused] == [
        {"kind": "agent", "agent": "hermes", "persona": None},
        {"kind": "platform", "agent": None, "persona": None},
    ]
    assert paused[0]["message"].startswith("agent hermes paused by ")
    assert paused[0]["data"]["via"] == "file"
    # The refusals are one budget.blocked per scope and day, not one per check.
    blocked = Event.objects.filter(type="budget.blocked")
    assert sorted((e.scope_kind, e.agent_id, e.window) for e in blocked) == [
        ("agent", "hermes", "paused"),
        ("platform", "", "paused"),
    ]


# ---------------------------------------------------------------------------------------
# A run's place: run, persona, agent, platform


RUNS = url("hermes", "coder", "runs")


def start(client: APIClient, run_id: str = "g", **budget: Any) -> None:
    response = client.post(RUNS, {"run_id": run_id, **budget}, format="json")
    assert response.status_code == 201, response.content


@pytest.fixture
def client(fleet: list[tuple[str, str]], clock: Clock) -> APIClient:
    return APIClient()


def test_a_run_with_room_under_an_exhausted_agent_cap_is_refused_by_the_agent(
    client: APIClient, data_dir: Path
) -> None:
    agent_toml(data_dir, "daily_usd = 1.0\n")
    start(client, budget_usd=5)
    charge(client, "hermes", "writer", 1.0, "r1")  # another persona used up the agent's day
    answer = check(client, "hermes", "coder", run_id="g", estimated_cost_usd=0.1)
    assert (answer["allowed"], answer["scope"], answer["limit"]) == (False, "agent", "daily")
    assert answer["reason"] == (
        "estimate 0.1 USD exceeds the agent daily cap: 0.0 USD left of 1.0 USD"
    )
    # Not the run's limit: it stays active and writes no run.exhausted.
    assert answer["run"]["state"] == "active"
    assert Run.objects.get(run_id="g").state == "active"
    assert not Event.objects.filter(type="run.exhausted").exists()


def test_a_run_with_room_under_an_exhausted_platform_cap_is_refused_by_the_platform(
    client: APIClient, data_dir: Path
) -> None:
    platform_toml(data_dir, "monthly_usd = 2.0\n")
    start(client, budget_usd=5)
    charge(client, "other", "x", 2.0, "r1")
    answer = check(client, "hermes", "coder", run_id="g", estimated_cost_usd=0.1)
    assert (answer["allowed"], answer["scope"], answer["limit"]) == (False, "platform", "monthly")
    assert Run.objects.get(run_id="g").state == "active"


def test_an_exhausted_run_under_roomy_caps_is_refused_by_the_run(
    client: APIClient, data_dir: Path
) -> None:
    agent_toml(data_dir, "daily_usd = 50.0\n")
    platform_toml(data_dir, "daily_usd = 500.0\n")
    start(client, budget_usd=0.5)
    charge(client, "hermes", "coder", 0.5, "r1", run_id="g")
    answer = check(client, "hermes", "coder", run_id="g", estimated_cost_usd=0.1)
    assert (answer["allowed"], answer["scope"], answer["limit"]) == (False, "run", "run_usd")
    assert answer["run"]["state"] == "needs_budget"


def test_when_every_scope_would_refuse_the_run_is_named_first_then_persona_agent_platform(
    client: APIClient, data_dir: Path, make_persona: MakePersona
) -> None:
    make_persona("hermes", "coder", "daily_usd = 1.0\n")
    agent_toml(data_dir, "daily_usd = 1.0\n")
    platform_toml(data_dir, "daily_usd = 1.0\n")
    start(client, budget_usd=1)
    charge(client, "hermes", "coder", 0.95, "r1", run_id="g")
    everyone = dict(run_id="g", estimated_cost_usd=0.5)  # over all four headrooms of 0.05
    assert check(client, "hermes", "coder", **everyone)["scope"] == "run"
    # Without the run: persona; with a roomy persona: agent; then the platform.
    assert check(client, "hermes", "coder", estimated_cost_usd=0.5)["scope"] == "persona"
    make_persona("hermes", "coder", "daily_usd = 100.0\n")
    assert check(client, "hermes", "coder", estimated_cost_usd=0.5)["scope"] == "agent"
    agent_toml(data_dir, "daily_usd = 100.0\n")
    assert check(client, "hermes", "coder", estimated_cost_usd=0.5)["scope"] == "platform"
    platform_toml(data_dir, "daily_usd = 100.0\n")
    assert check(client, "hermes", "coder", estimated_cost_usd=0.5)["allowed"] is True


def test_a_paused_agent_stops_a_run_that_has_room_and_leaves_it_active(
    client: APIClient, data_dir: Path
) -> None:
    start(client, budget_usd=5)
    agent_toml(data_dir, "paused = true\n")
    answer = check(client, "hermes", "coder", run_id="g")
    assert (answer["allowed"], answer["scope"], answer["limit"]) == (False, "agent", "paused")
    assert answer["run"]["state"] == "active"


# ---------------------------------------------------------------------------------------
# A check's token estimate against the run's token budget


def test_a_checks_tokens_count_against_the_runs_token_budget(client: APIClient) -> None:
    start(client, budget_tokens=1000)
    fits = check(client, "hermes", "coder", run_id="g", input_tokens=600, max_output_tokens=400)
    assert fits["allowed"] is True  # 1,000 tokens of 1,000: equal to the room, fits
    assert fits["run"]["remaining"]["tokens"] == 1000
    over = check(client, "hermes", "coder", run_id="g", input_tokens=600, max_output_tokens=401)
    assert (over["allowed"], over["scope"], over["limit"]) == (False, "run", "run_tokens")
    assert over["reason"] == (
        "estimate 1001 tokens exceeds the run's token budget: 1000 tokens left of 1000 tokens"
    )


def test_a_reserve_holds_its_token_estimate_against_the_run(client: APIClient) -> None:
    start(client, budget_tokens=1000)
    first = check(
        client, "hermes", "coder", run_id="g", input_tokens=500, max_output_tokens=200, reserve=True
    )
    assert first["allowed"] is True
    assert first["run"]["remaining"]["tokens"] == 1000  # before this call's hold
    second = check(client, "hermes", "coder", run_id="g", input_tokens=200, max_output_tokens=101)
    assert (second["allowed"], second["limit"]) == (False, "run_tokens")
    assert second["reason"].endswith("300 tokens left of 1000 tokens")
    # A refusal by the run's own limit parks it, as by its USD budget.
    assert second["run"]["state"] == "needs_budget"
