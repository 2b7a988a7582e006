"""Runs over HTTP (extension, DESIGN.md section 11): create, read, list, extend, close,
and the charge counting against its run.

The ``clock`` fixture fixes ``django.utils.timezone.now`` (where the services read the
time when the views pass none), so wall-clock seconds are tested by moving the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from budgets.models import Charge, Run, RunCheckpoint
from tests.api.conftest import Clock

pytestmark = pytest.mark.django_db

BASE = "/api/agents/hermes/personas/coder"
RUNS = f"{BASE}/runs"


@pytest.fixture
def client(agent: Any) -> APIClient:
    return APIClient()


def create(client: APIClient, **body: Any) -> Any:
    return client.post(RUNS, body, format="json")


def charge(client: APIClient, cost: float, request_id: str, **extra: Any) -> Any:
    body = {"surface": "openrouter", "model": "m", "cost_usd": cost, "request_id": request_id}
    return client.post(f"{BASE}/budget/charge", {**body, **extra}, format="json")


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


# ---------------------------------------------------------------------------------------
# create


def test_create_answers_201_with_budget_spent_and_remaining(
    client: APIClient, clock: Clock
) -> None:
    response = create(
        client, run_id="goal-1", label="fix the test", budget_usd=2, budget_tokens=1000
    )
    assert response.status_code == 201
    run = response.json()["run"]
    assert run["id"] == "goal-1"
    assert run["label"] == "fix the test"
    assert run["state"] == "active"
    assert run["hard_cap"] is True
    assert run["budget"] == {"usd": 2.0, "tokens": 1000, "seconds": None}
    assert run["spent"] == {"usd": 0.0, "tokens": 0, "seconds": 0}
    assert run["remaining"] == {"usd": 2.0, "tokens": 1000, "seconds": None}
    assert run["created_at"] == "2026-05-12T09:30:00+00:00"
    assert run["closed_at"] is None


def test_create_without_run_id_generates_one(client: APIClient) -> None:
    first = create(client, budget_usd=1).json()["run"]["id"]
    second = create(client, budget_usd=1).json()["run"]["id"]
    assert first.startswith("run_")
    assert first != second
    assert Run.objects.count() == 2


def test_create_again_with_the_same_body_answers_200_with_the_same_run(client: APIClient) -> None:
    body = {"run_id": "goal-1", "label": "x", "budget_usd": 2, "budget_seconds": 600}
    first = create(client, **body)
    charge(client, 0.5, "r1", run_id="goal-1")
    again = create(client, **body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["run"]["id"] == "goal-1"
    assert again.json()["run"]["spent"]["usd"] == 0.5  # the run as it is now
    assert Run.objects.count() == 1
    assert RunCheckpoint.objects.filter(kind="created").count() == 1


def test_create_again_with_another_body_is_409(client: APIClient) -> None:
    create(client, run_id="goal-1", budget_usd=2)
    response = create(client, run_id="goal-1", budget_usd=3)
    assert response.status_code == 409
    assert error_code(response) == "run.conflict"
    assert Run.objects.get().budget_nanos == 2_000_000_000


def test_the_same_run_id_under_two_personas_is_two_runs(
    client: APIClient, make_persona: Callable[..., Any]
) -> None:
    make_persona(persona_id="writer")
    assert create(client, run_id="goal-1", budget_usd=2).status_code == 201
    other = client.post(
        "/api/agents/hermes/personas/writer/runs", {"run_id": "goal-1"}, format="json"
    )
    assert other.status_code == 201


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"budget_usd": -1}, "budget_usd"),
        ({"budget_usd": "2"}, "budget_usd"),
        ({"budget_usd": True}, "budget_usd"),
        ({"budget_tokens": 1.5}, "budget_tokens"),
        ({"budget_tokens": -1}, "budget_tokens"),
        ({"budget_seconds": "60"}, "budget_seconds"),
        ({"run_id": "has space"}, "run_id"),
        ({"run_id": ""}, "run_id"),
        ({"run_id": "x" * 65}, "run_id"),
        ({"run_id": 12}, "run_id"),
        ({"label": 3}, "label"),
        ({"hard_cap": "yes"}, "hard_cap"),
        ({"budget_dollars": 2}, "budget_dollars"),
    ],
)
def test_create_refuses_a_bad_body(client: APIClient, body: dict[str, Any], key: str) -> None:
    response = create(client, **body)
    assert response.status_code == 400
    assert error_code(response) == "run.invalid"
    assert response.json()["error"]["details"] == {"key": key}
    assert not Run.objects.exists()


def test_create_refuses_non_finite_numbers(client: APIClient) -> None:
    response = client.post(RUNS, b'{"budget_usd": NaN}', content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == "run.invalid"


def test_create_for_an_unknown_persona_is_404(client: APIClient) -> None:
    response = client.post("/api/agents/hermes/personas/nobody/runs", {}, format="json")
    assert response.status_code == 404
    assert error_code(response) == "persona.not_found"


def test_a_60_0_second_budget_is_60_seconds(client: APIClient) -> None:
    response = client.post(RUNS, b'{"budget_seconds": 60.0}', content_type="application/json")
    assert response.json()["run"]["budget"]["seconds"] == 60


# ---------------------------------------------------------------------------------------
# read and list


def test_get_reports_spend_time_and_checkpoints(client: APIClient, clock: Clock) -> None:
    create(client, run_id="goal-1", budget_usd=2, budget_tokens=100, budget_seconds=600)
    clock.advance(90)
    charge(client, 0.25, "r1", run_id="goal-1", input_tokens=30, output_tokens=10)
    run = client.get(f"{RUNS}/goal-1").json()["run"]
    assert run["spent"] == {"usd": 0.25, "tokens": 40, "seconds": 90}
    assert run["remaining"] == {"usd": 1.75, "tokens": 60, "seconds": 510}
    assert run["charges"] == 1
    assert [c["kind"] for c in run["checkpoints"]] == ["created"]
    assert run["checkpoints"][0]["budget"] == {"usd": 2.0, "tokens": 100, "seconds": 600}


def test_an_unknown_run_is_404(client: APIClient) -> None:
    for path in ("nope", "nope/close"):
        method = client.get if path == "nope" else client.post
        response = method(f"{RUNS}/{path}")
        assert response.status_code == 404
        assert error_code(response) == "run.not_found"


def test_another_personas_run_reads_as_not_found(
    client: APIClient, make_persona: Callable[..., Any]
) -> None:
    make_persona(persona_id="writer")
    client.post("/api/agents/hermes/personas/writer/runs", {"run_id": "theirs"}, format="json")
    for response in (
        client.get(f"{RUNS}/theirs"),
        client.post(f"{RUNS}/theirs/close"),
        client.post(f"{RUNS}/theirs/extend", {"usd": 1}, format="json"),
    ):
        assert response.status_code == 404
        assert error_code(response) == "run.not_found"
    assert Run.objects.get(run_id="theirs").state == "active"


def test_list_filters_by_state_and_pages_newest_first(client: APIClient) -> None:
    for n in range(5):
        create(client, run_id=f"r{n}")
    client.post(f"{RUNS}/r1/close")
    client.post(f"{RUNS}/r3/close")
    page = client.get(RUNS, {"limit": 2}).json()
    assert [r["id"] for r in page["runs"]] == ["r4", "r3"]
    page2 = client.get(RUNS, {"limit": 2, "after": page["next"]}).json()
    assert [r["id"] for r in page2["runs"]] == ["r2", "r1"]
    page3 = client.get(RUNS, {"limit": 2, "after": page2["next"]}).json()
    assert [r["id"] for r in page3["runs"]] == ["r0"]
    assert page3["next"] is None
    closed = client.get(RUNS, {"state": "closed"}).json()
    assert [r["id"] for r in closed["runs"]] == ["r3", "r1"]
    active = client.get(RUNS, {"state": "active"}).json()
    assert [r["id"] for r in active["runs"]] == ["r4", "r2", "r0"]


@pytest.mark.parametrize(
    "query", [{"state": "sleeping"}, {"limit": "0"}, {"limit": "201"}, {"after": "x"}]
)
def test_list_refuses_a_bad_query(client: APIClient, query: dict[str, str]) -> None:
    response = client.get(RUNS, query)
    assert response.status_code == 400
    assert error_code(response) == "run.invalid"


# ---------------------------------------------------------------------------------------
# extend


def extend(client: APIClient, run_id: str, **body: Any) -> Any:
    return client.post(f"{RUNS}/{run_id}/extend", body, format="json")


def test_extend_adds_to_the_budget(client: APIClient) -> None:
    create(client, run_id="g", budget_usd=2, budget_tokens=100, budget_seconds=60)
    charge(client, 0.5, "r1", run_id="g", input_tokens=10)
    run = extend(client, "g", usd=1, tokens=50, seconds=30).json()["run"]
    assert run["budget"] == {"usd": 3.0, "tokens": 150, "seconds": 90}
    assert run["remaining"]["usd"] == 2.5


def test_extending_after_an_overspend_never_hands_the_overspend_back(client: APIClient) -> None:
    # max(budget, used) + added: 2.0 budget, 2.75 used, +1 -> 3.75, so 1.0 is left.
    create(client, run_id="g", budget_usd=2, budget_tokens=100)
    charge(client, 2.75, "r1", run_id="g", input_tokens=130)
    run = extend(client, "g", usd=1, tokens=20).json()["run"]
    assert run["budget"] == {"usd": 3.75, "tokens": 150, "seconds": None}
    assert run["remaining"] == {"usd": 1.0, "tokens": 20, "seconds": None}


def test_extending_elapsed_time_counts_from_the_time_used(client: APIClient, clock: Clock) -> None:
    create(client, run_id="g", budget_seconds=60)
    clock.advance(100.2)  # 40.2 s past its budget; used counts as 101 whole seconds
    run = extend(client, "g", seconds=30).json()["run"]
    assert run["budget"]["seconds"] == 131
    assert run["remaining"]["seconds"] == 30.8


def test_extending_a_kind_without_a_limit_starts_one_from_what_was_used(
    client: APIClient,
) -> None:
    create(client, run_id="g", budget_usd=2)
    charge(client, 0.1, "r1", run_id="g", input_tokens=70)
    run = extend(client, "g", tokens=30).json()["run"]
    assert run["budget"] == {"usd": 2.0, "tokens": 100, "seconds": None}


def test_extend_reactivates_a_run_that_needs_budget_and_is_audited(client: APIClient) -> None:
    create(client, run_id="g", budget_usd=1)
    Run.objects.filter(run_id="g").update(state="needs_budget", exhausted_limit="run_usd")
    run = extend(client, "g", usd=1).json()["run"]
    assert run["state"] == "active"
    assert run["exhausted_limit"] is None
    step = run["checkpoints"][-1]
    assert step["kind"] == "extended"
    assert step["actor"] == "anonymous (HAL0_REQUIRE_API_KEY off)"
    assert step["details"] == {
        "added": {"usd": 1.0, "tokens": None, "seconds": None},
        "before": {"usd": 1.0, "tokens": None, "seconds": None},
        "reactivated": True,
    }
    assert step["budget"]["usd"] == 2.0


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (b'{"usd": 0}', "usd"),
        (b'{"usd": -1}', "usd"),
        (b'{"usd": NaN}', "usd"),
        (b'{"usd": Infinity}', "usd"),
        (b'{"tokens": 0}', "tokens"),
        (b'{"tokens": -5}', "tokens"),
        (b'{"seconds": 0}', "seconds"),
        (b'{"seconds": 1.5}', "seconds"),
        (b'{"usd": "1"}', "usd"),
        (b'{"dollars": 1}', "dollars"),
        (b"{}", None),
    ],
)
def test_extend_refuses_zero_negative_and_non_finite_additions(
    client: APIClient, raw: bytes, key: str | None
) -> None:
    create(client, run_id="g", budget_usd=1)
    response = client.post(f"{RUNS}/g/extend", raw, content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == "run.invalid_extension"
    assert response.json()["error"]["details"] == ({"key": key} if key else {})
    assert Run.objects.get().budget_nanos == 1_000_000_000
    assert not RunCheckpoint.objects.filter(kind="extended").exists()


def test_an_agent_key_may_not_extend_its_own_run(
    agent: Any, agent_client: Callable[[str], APIClient]
) -> None:
    own = agent_client("hermes")
    assert own.post(RUNS, {"run_id": "g", "budget_usd": 1}, format="json").status_code == 201
    response = own.post(f"{RUNS}/g/extend", {"usd": 5}, format="json")
    assert response.status_code == 403
    assert error_code(response) == "auth.forbidden"
    assert own.post(f"{RUNS}/g/close").status_code == 200


def test_an_operator_extension_names_the_key(agent: Any, api_client: APIClient) -> None:
    api_client.post(RUNS, {"run_id": "g", "budget_usd": 1}, format="json")
    step = api_client.post(f"{RUNS}/g/extend", {"usd": 1}, format="json").json()["run"]
    assert step["checkpoints"][-1]["actor"].startswith("key:")


# ---------------------------------------------------------------------------------------
# close


def test_close_closes_once_and_stops_the_clock(client: APIClient, clock: Clock) -> None:
    create(client, run_id="g", budget_seconds=600)
    clock.advance(30)
    run = client.post(f"{RUNS}/g/close").json()["run"]
    assert run["state"] == "closed"
    assert run["closed_at"] == "2026-05-12T09:30:30+00:00"
    clock.advance(100)
    again = client.post(f"{RUNS}/g/close").json()["run"]
    assert again["closed_at"] == "2026-05-12T09:30:30+00:00"
    assert again["spent"]["seconds"] == 30
    assert [c["kind"] for c in again["checkpoints"]] == ["created", "closed"]


def test_a_closed_run_cannot_be_extended(client: APIClient) -> None:
    create(client, run_id="g", budget_usd=1)
    client.post(f"{RUNS}/g/close")
    response = extend(client, "g", usd=1)
    assert response.status_code == 409
    assert error_code(response) == "run.closed"


# ---------------------------------------------------------------------------------------
# charges


def test_a_charge_with_run_id_counts_against_the_run_once(client: APIClient, clock: Clock) -> None:
    create(client, run_id="g", budget_usd=1)
    first = charge(client, 0.3, "r1", run_id="g", input_tokens=5, output_tokens=7).json()
    replay = charge(client, 0.3, "r1", run_id="g", input_tokens=5, output_tokens=7).json()
    assert first == replay
    assert first["run"] == {
        "id": "g",
        "state": "active",
        "counted": True,
        "spent": {"usd": 0.3, "tokens": 12, "seconds": 0},
        "remaining": {"usd": 0.7, "tokens": None, "seconds": None},
    }
    run = Run.objects.get()
    assert (run.spent_nanos, run.spent_tokens, run.charge_count) == (300_000_000, 12, 1)
    assert Charge.objects.get().run == run


def test_the_same_request_id_with_another_run_is_a_conflict(client: APIClient) -> None:
    create(client, run_id="g")
    create(client, run_id="h")
    charge(client, 0.3, "r1", run_id="g")
    response = charge(client, 0.3, "r1", run_id="h")
    assert response.status_code == 409
    assert error_code(response) == "charge.conflict"


def test_a_charge_for_a_closed_run_is_recorded_and_counted(client: APIClient) -> None:
    create(client, run_id="g", budget_usd=1)
    client.post(f"{RUNS}/g/close")
    response = charge(client, 0.4, "r1", run_id="g")
    assert response.status_code == 200
    assert response.json()["recorded"] is True
    assert response.json()["run"]["state"] == "closed"
    assert Run.objects.get().spent_nanos == 400_000_000


def test_a_charge_naming_an_unknown_run_is_still_recorded(client: APIClient) -> None:
    response = charge(client, 0.4, "r1", run_id="nope")
    assert response.status_code == 200
    assert response.json()["run"] == {"id": "nope", "state": "not_found", "counted": False}
    assert Charge.objects.get().run is None


def test_a_charge_with_a_bad_run_id_is_400(client: APIClient) -> None:
    response = charge(client, 0.4, "r1", run_id="")
    assert response.status_code == 400
    assert error_code(response) == "budget.invalid_charge"
    assert not Charge.objects.exists()
