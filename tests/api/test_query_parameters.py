"""One rule for query strings on every endpoint that takes query parameters
(hal0/query.py, docs/api.md "Query parameters"): an unknown parameter is a 400 naming
it, an empty one is the same as one left out, ``format`` is taken everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from budgets.services import budget_charge
from hal0.money import to_nanos
from personas.models import Persona

pytestmark = pytest.mark.django_db

RUNS = "/api/agents/hermes/personas/coder/runs"
# endpoint, its bad-query code, the parameters it takes
ENDPOINTS = [
    ("/api/events", "events.invalid_query", ["after", "limit"]),
    (
        "/api/spend",
        "report.invalid",
        ["agent", "from", "group_by", "model", "persona", "surface", "to", "tz"],
    ),
    (RUNS, "run.invalid", ["after", "limit", "state"]),
    ("/api/prices", "request.invalid", ["model", "surface"]),
]


@pytest.fixture
def client(make_persona: Callable[..., Persona]) -> APIClient:
    make_persona("hermes", "coder", "daily_usd = 1.0\n")
    return APIClient()


@pytest.mark.parametrize(("url", "code", "known"), ENDPOINTS)
def test_an_unknown_parameter_is_a_400_naming_it(
    client: APIClient, url: str, code: str, known: list[str]
) -> None:
    response = client.get(url, {"limt": "5", "model": "gpt-4o"})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code
    assert error["details"] == {"key": "limt", "known": known}
    assert (
        error["message"]
        == f"unknown query parameter 'limt': this endpoint takes {', '.join(known)}"
    )


@pytest.mark.parametrize(("url", "code", "known"), ENDPOINTS)
def test_a_nameless_or_unprintable_parameter_is_refused_too(
    client: APIClient, url: str, code: str, known: list[str]
) -> None:
    for query in ("=null", "a%00b=1", "%ED%A0%80=1", "x" * 500 + "=1"):
        response = client.get(f"{url}?{query}&model=gpt-4o")
        assert response.status_code == 400, (query, response.content)
        error = response.json()["error"]
        assert error["code"] == code
        assert len(error["details"]["key"]) <= 64


def test_a_typo_no_longer_gives_the_default_page(client: APIClient) -> None:
    # Before the rule, ``?limt=1`` answered the default 100 events as if asked for them.
    assert client.get("/api/events", {"limit": "1"}).status_code == 200
    assert client.get("/api/events", {"limt": "1"}).status_code == 400


def test_format_is_taken_everywhere(client: APIClient) -> None:
    assert client.get("/api/events", {"format": "json"}).status_code == 200
    spend = client.get("/api/spend", {"format": "csv"})
    assert spend.status_code == 200
    assert spend["Content-Type"].startswith("text/csv")


@pytest.mark.parametrize(
    "query",
    [
        {"after": "", "limit": ""},  # events
        {"state": ""},  # runs
    ],
)
def test_an_empty_parameter_is_the_same_as_leaving_it_out(
    client: APIClient, query: dict[str, str]
) -> None:
    url = "/api/events" if "after" in query else RUNS
    assert client.get(url, query).json() == client.get(url).json()


def test_an_empty_state_lists_runs_in_every_state(client: APIClient, data_dir: Any) -> None:
    for run_id in ("a", "b"):
        assert client.post(RUNS, {"run_id": run_id}, format="json").status_code == 201
    assert client.post(f"{RUNS}/b/close").status_code == 200
    everything = client.get(RUNS, {"state": ""}).json()["runs"]
    assert sorted((r["id"], r["state"]) for r in everything) == [("a", "active"), ("b", "closed")]
    assert [r["id"] for r in client.get(RUNS, {"state": "closed"}).json()["runs"]] == ["b"]


def test_the_schema_says_an_empty_value_is_allowed(client: APIClient) -> None:
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    runs = schema["paths"]["/api/agents/{agent_id}/personas/{persona_id}/runs"]["get"]
    state = next(p for p in runs["parameters"] if p["name"] == "state")
    assert state["schema"]["enum"] == ["", "active", "closed", "needs_budget"]


def test_a_report_with_only_known_parameters_still_answers(client: APIClient) -> None:
    coder = Persona.objects.get(agent_id="hermes", slug="coder")
    budget_charge(persona=coder, surface="s", model="m", cost_nanos=to_nanos(0.25), request_id="r1")
    body = client.get("/api/spend", {"group_by": "model", "agent": "hermes", "tz": ""}).json()
    assert body["total"]["cost_usd"] == 0.25
