"""Checks naming a run (DESIGN.md section 11): the run is the first scope evaluated.

Its limits are USD, tokens and wall-clock seconds since it was created; a check refused by
one of them parks the run in needs_budget (once) until an operator extends it. The clock
is moved by the ``clock`` fixture (``django.utils.timezone.now``), never by sleeping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from budgets.models import Charge, Hold, Run, RunCheckpoint
from tests.api.conftest import T0, Clock

pytestmark = pytest.mark.django_db

BASE = "/api/agents/hermes/personas/coder"
RUNS = f"{BASE}/runs"


@pytest.fixture
def client(make_persona: Callable[..., Any], clock: Clock) -> APIClient:
    make_persona(budget_toml="daily_usd = 10.0\n")
    return APIClient()


def start(client: APIClient, run_id: str = "g", **budget: Any) -> None:
    response = client.post(RUNS, {"run_id": run_id, **budget}, format="json")
    assert response.status_code == 201, response.json()


def check(client: APIClient, estimate: float, run_id: str | None = "g", **extra: Any) -> Any:
    body: dict[str, Any] = {"estimated_cost_usd": estimate, **extra}
    if run_id is not None:
        body["run_id"] = run_id
    return client.post(f"{BASE}/budget/check", body, format="json")


def charge(client: APIClient, cost: float, request_id: str, **extra: Any) -> Any:
    body = {"surface": "s", "model": "m", "cost_usd": cost, "request_id": request_id}
    return client.post(f"{BASE}/budget/charge", {**body, **extra}, format="json")


def state_of(run_id: str = "g") -> str:
    return str(Run.objects.get(run_id=run_id).state)


# ---------------------------------------------------------------------------------------
# the three limits


def test_a_run_is_refused_past_its_usd_budget_and_parks_in_needs_budget(
    client: APIClient,
) -> None:
    start(client, budget_usd=1)
    first = check(client, 0.6).json()
    assert first["allowed"] is True
    assert first["scope"] is None
    assert first["run"] == {
        "id": "g",
        "state": "active",
        "remaining": {"usd": 1.0, "tokens": None, "seconds": None},
    }
    charge(client, 0.6, "r1", run_id="g")
    assert check(client, 0.4).json()["allowed"] is True  # equal to what is left: fits

    refused = check(client, 0.41).json()
    assert refused["allowed"] is False
    assert refused["decision"] == "block"
    assert (refused["scope"], refused["limit"]) == ("run", "run_usd")
    assert refused["reason"] == (
        "estimate 0.41 USD exceeds the run's USD budget: 0.4 USD left of 1.0 USD"
    )
    assert refused["run"]["state"] == "needs_budget"
    assert refused["remaining_usd"] == {"daily": 9.4}  # the persona's windows, untouched
    assert state_of() == "needs_budget"

    # Parked: even a call that would fit is refused until an operator extends the run.
    parked = check(client, 0.01).json()
    assert (parked["allowed"], parked["limit"], parked["scope"]) == (False, "run_usd", "run")
    assert parked["reason"] == (
        "the run needs more budget: its USD budget ran out; no call is allowed until an "
        "operator extends it"
    )


def test_a_run_is_refused_past_its_token_budget(client: APIClient) -> None:
    start(client, budget_tokens=1000)
    charge(client, 0.01, "r1", run_id="g", input_tokens=600, output_tokens=399)
    assert check(client, 0.01).json()["allowed"] is True  # 1 token left; a check asks for 1
    charge(client, 0.01, "r2", run_id="g", input_tokens=1)
    refused = check(client, 0.01).json()
    assert (refused["allowed"], refused["scope"], refused["limit"]) == (False, "run", "run_tokens")
    assert refused["reason"] == (
        "estimate 1 tokens exceeds the run's token budget: 0 tokens left of 1000 tokens"
    )
    assert refused["run"]["remaining"]["tokens"] == 0
    assert state_of() == "needs_budget"


def test_a_run_is_refused_once_its_wall_clock_budget_has_passed(
    client: APIClient, clock: Clock
) -> None:
    start(client, budget_seconds=60)
    clock.advance(60)
    at_the_second = check(client, 0.01).json()
    assert at_the_second["allowed"] is True
    assert at_the_second["run"]["remaining"]["seconds"] == 0
    clock.advance(0.5)
    refused = check(client, 0.0).json()
    assert (refused["allowed"], refused["scope"], refused["limit"]) == (
        False,
        "run",
        "run_seconds",
    )
    assert refused["reason"] == "the run's time budget of 60 s is used up (60 s since it began)"
    assert state_of() == "needs_budget"


def test_the_clock_can_also_be_passed_to_the_service(make_persona: Callable[..., Any]) -> None:
    from budgets.runs.services import RunBudget, run_create
    from budgets.services import budget_check

    persona = make_persona(budget_toml="")
    run_create(persona=persona, run_id="g", budget=RunBudget(seconds=30), now=T0)
    later = T0 + dt.timedelta(seconds=31)
    answer = budget_check(persona=persona, estimate_nanos=0, run_id="g", now=later)
    assert answer["limit"] == "run_seconds"


# ---------------------------------------------------------------------------------------
# exhaustion, extension


def test_exhaustion_is_one_checkpoint_naming_the_source_and_what_is_left(
    client: APIClient,
) -> None:
    start(client, budget_usd=1, budget_tokens=500)
    charge(client, 0.75, "r1", run_id="g", input_tokens=100)
    for _ in range(3):
        assert check(client, 0.5).json()["allowed"] is False
    steps = RunCheckpoint.objects.filter(kind="exhausted")
    assert steps.count() == 1
    step = steps.get()
    assert step.details == {
        "limit": "run_usd",
        "source": "usd",
        "remaining": {"usd": 0.25, "tokens": 400, "seconds": None},
    }
    assert step.spent == {"usd": 0.75, "tokens": 100, "seconds": 0}


def test_an_extension_lets_the_run_go_on(client: APIClient) -> None:
    start(client, budget_usd=1)
    charge(client, 0.9, "r1", run_id="g")
    assert check(client, 0.2).json()["allowed"] is False
    extended = client.post(f"{RUNS}/g/extend", {"usd": 0.5}, format="json").json()["run"]
    assert extended["state"] == "active"
    answer = check(client, 0.2).json()
    assert answer["allowed"] is True
    assert answer["run"]["remaining"]["usd"] == 0.6
    kinds = [c["kind"] for c in client.get(f"{RUNS}/g").json()["run"]["checkpoints"]]
    assert kinds == ["created", "exhausted", "extended"]


def test_a_warn_only_run_never_blocks_and_never_parks(client: APIClient) -> None:
    start(client, budget_usd=1, hard_cap=False)
    charge(client, 1.5, "r1", run_id="g")
    answer = check(client, 0.5).json()
    assert answer["allowed"] is True
    assert (answer["decision"], answer["scope"], answer["limit"]) == ("warn", "run", "run_usd")
    assert state_of() == "active"


# ---------------------------------------------------------------------------------------
# precedence


def test_the_run_is_evaluated_before_the_persona(
    client: APIClient, make_persona: Callable[..., Any]
) -> None:
    make_persona(budget_toml="daily_usd = 1.0\n")
    start(client, budget_usd=0.5)
    charge(client, 0.45, "r1", run_id="g")
    both = check(client, 0.6).json()  # over the run's 0.05 left and the persona's 0.55
    assert (both["scope"], both["limit"]) == ("run", "run_usd")


def test_a_persona_cap_still_refuses_within_the_run_and_leaves_the_run_active(
    client: APIClient, make_persona: Callable[..., Any]
) -> None:
    make_persona(budget_toml="daily_usd = 1.0\n")
    start(client, budget_usd=5)
    charge(client, 0.9, "r1", run_id="g")
    answer = check(client, 0.2).json()
    assert (answer["allowed"], answer["scope"], answer["limit"]) == (False, "persona", "daily")
    assert answer["reason"] == "estimate 0.2 USD exceeds the daily cap: 0.1 USD left of 1.0 USD"
    assert state_of() == "active"
    assert not RunCheckpoint.objects.filter(kind="exhausted").exists()


def test_a_paused_persona_stops_its_runs(client: APIClient) -> None:
    start(client, budget_usd=5)
    client.put(f"{BASE}/budget", {"daily_usd": 10, "paused": True}, format="json")
    answer = check(client, 0.01).json()
    assert (answer["allowed"], answer["scope"], answer["limit"]) == (False, "persona", "paused")
    assert state_of() == "active"  # the operator's stop, not the run's budget


# ---------------------------------------------------------------------------------------
# holds


def test_a_hold_reserves_against_the_run(client: APIClient) -> None:
    start(client, budget_usd=1)
    first = check(client, 0.6, reserve=True).json()
    assert first["allowed"] is True
    assert Hold.objects.get(pk=first["hold"]["id"]).run == Run.objects.get()
    assert client.get(f"{RUNS}/g").json()["run"]["held_usd"] == 0.6
    second = check(client, 0.6, reserve=True).json()
    assert (second["allowed"], second["limit"]) == (False, "run_usd")
    assert second["reason"] == (
        "estimate 0.6 USD exceeds the run's USD budget: 0.4 USD left of 1.0 USD"
    )
    # The charge settling the hold counts against the run even without run_id.
    charged = charge(client, 0.55, "r1", hold_id=first["hold"]["id"]).json()
    assert charged["run"]["spent"]["usd"] == 0.55
    assert Run.objects.get().spent_nanos == 550_000_000


def test_a_released_hold_gives_the_run_its_room_back(client: APIClient) -> None:
    start(client, budget_usd=1)
    hold = check(client, 0.6, reserve=True).json()["hold"]["id"]
    client.post(f"{BASE}/budget/holds/{hold}/release")
    assert check(client, 1.0, reserve=True).json()["allowed"] is True


# ---------------------------------------------------------------------------------------
# refusals


def test_a_closed_run_is_409_while_its_charges_are_still_recorded(client: APIClient) -> None:
    start(client, budget_usd=1)
    client.post(f"{RUNS}/g/close")
    response = check(client, 0.01)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "run.closed"
    recorded = charge(client, 0.3, "late", run_id="g")
    assert recorded.status_code == 200
    assert Charge.objects.get().run == Run.objects.get()
    assert Run.objects.get().spent_nanos == 300_000_000


def test_an_exhausted_runs_charges_are_still_recorded(client: APIClient) -> None:
    start(client, budget_usd=1)
    charge(client, 0.9, "r1", run_id="g")
    check(client, 0.5)
    assert state_of() == "needs_budget"
    assert charge(client, 0.3, "r2", run_id="g").status_code == 200
    assert Run.objects.get().spent_nanos == 1_200_000_000


def test_an_unknown_run_or_another_personas_is_404(
    client: APIClient, make_persona: Callable[..., Any]
) -> None:
    make_persona(persona_id="writer")
    client.post("/api/agents/hermes/personas/writer/runs", {"run_id": "theirs"}, format="json")
    for run_id in ("nope", "theirs"):
        response = check(client, 0.01, run_id=run_id)
        assert response.status_code == 404
        assert response.json()["error"] == {
            "code": "run.not_found",
            "message": f"no run {run_id!r} for this persona",
            "details": {"run_id": run_id},
        }


def test_a_bad_run_id_in_a_check_is_400(client: APIClient) -> None:
    response = check(client, 0.01, run_id="")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "run.invalid"


def test_a_check_without_run_id_answers_as_before(client: APIClient) -> None:
    start(client, budget_usd=0)
    answer = check(client, 0.5, run_id=None).json()
    assert answer["allowed"] is True
    assert "run" not in answer
    # Every check names the scope that decided (DESIGN.md section 6): none here.
    assert answer["scope"] is None
