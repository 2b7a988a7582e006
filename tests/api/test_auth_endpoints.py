"""Agent-key isolation on the real API endpoints: another agent is indistinguishable from
an agent that does not exist, and nothing of it leaks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from budgets.apikeys import create_key

pytestmark = pytest.mark.django_db

READ_URLS = [
    "/api/agents/{a}",
    "/api/agents/{a}/personas",
    "/api/agents/{a}/personas/coder",
]


@pytest.fixture(autouse=True)
def keys_required(settings: Any) -> None:
    settings.HAL0_REQUIRE_API_KEY = True


@pytest.fixture
def two_agents(agent: Any, make_persona: Callable[..., Any]) -> None:
    """hermes (provisioned) and other, each with a coder persona."""
    make_persona("other", "coder", "daily_usd = 3.0\n")


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.mark.parametrize("url", READ_URLS)
def test_an_agent_key_reads_its_own_agent(two_agents: None, url: str) -> None:
    _, raw = create_key(scope="agent", agent_id="hermes")

    assert bearer(raw).get(url.format(a="hermes")).status_code == 200


@pytest.mark.parametrize("url", READ_URLS)
def test_another_agent_answers_exactly_like_an_agent_that_does_not_exist(
    two_agents: None, url: str, api_client: APIClient
) -> None:
    _, raw = create_key(scope="agent", agent_id="hermes")

    foreign = bearer(raw).get(url.format(a="other"))
    # What the service itself answers (operator key) for an agent that is not there.
    missing = api_client.get(url.format(a="ghost"))

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["error"]["code"] == "agent.unknown"
    assert foreign.content.replace(b"other", b"X") == missing.content.replace(b"ghost", b"X")


def test_an_agent_key_lists_only_its_own_agent(two_agents: None, api_client: APIClient) -> None:
    _, raw = create_key(scope="agent", agent_id="hermes")

    mine = bearer(raw).get("/api/agents").json()["agents"]
    everyone = api_client.get("/api/agents").json()["agents"]

    assert [a["id"] for a in mine] == ["hermes"]
    assert [a["id"] for a in everyone] == ["hermes", "other"]


@pytest.mark.parametrize("url", ["/api/agents", *READ_URLS])
def test_the_read_api_needs_a_key(two_agents: None, url: str) -> None:
    response = APIClient().get(url.format(a="hermes"))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.missing"


# --- the budget API -----------------------------------------------------------------------


def budget_url(agent_id: str, tail: str = "") -> str:
    return f"/api/agents/{agent_id}/personas/coder/budget{tail}"


CHARGE = {"surface": "openrouter", "model": "m", "cost_usd": 0.01, "request_id": "req-1"}


def test_an_agent_key_reads_checks_holds_charges_and_releases_on_its_own_agent(
    two_agents: None,
) -> None:
    _, raw = create_key(scope="agent", agent_id="hermes")
    client = bearer(raw)

    assert client.get(budget_url("hermes")).status_code == 200
    check = client.post(
        budget_url("hermes", "/check"), {"estimated_cost_usd": 0.05, "reserve": True}, format="json"
    )
    assert check.status_code == 200
    hold_id = check.json()["hold"]["id"]
    release = client.post(budget_url("hermes", f"/holds/{hold_id}/release"))
    assert release.status_code == 200
    charge = client.post(budget_url("hermes", "/charge"), CHARGE, format="json")
    assert charge.status_code == 200
    assert charge.json()["recorded"] is True


def test_an_agent_key_may_not_put_a_budget_and_the_file_stays_as_it_was(
    two_agents: None, data_dir: Any
) -> None:
    _, raw = create_key(scope="agent", agent_id="hermes")
    toml = data_dir / "agents" / "hermes" / "personas" / "coder.toml"
    before = toml.read_bytes()

    response = bearer(raw).put(budget_url("hermes"), {"daily_usd": 1000.0}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "auth.forbidden"
    assert toml.read_bytes() == before


def test_an_operator_key_may_put_a_budget(two_agents: None, api_client: APIClient) -> None:
    response = api_client.put(budget_url("other"), {"daily_usd": 2.5}, format="json")

    assert response.status_code == 200
    assert response.json()["budget"] == {"daily_usd": 2.5, "hard_cap": True}


@pytest.mark.parametrize(
    ("method", "tail", "body"),
    [
        ("get", "", None),
        ("put", "", {"daily_usd": 1000.0}),
        ("post", "/check", {"estimated_cost_usd": 0.05, "reserve": True}),
        ("post", "/charge", CHARGE),
        ("post", "/holds/h_anything/release", None),
    ],
)
def test_an_agent_key_gets_nothing_of_another_agents_budget(
    two_agents: None, api_client: APIClient, method: str, tail: str, body: Any
) -> None:
    from budgets.models import Charge, Hold

    _, raw = create_key(scope="agent", agent_id="hermes")

    foreign = getattr(bearer(raw), method)(budget_url("other", tail), body, format="json")
    missing = getattr(api_client, method)(budget_url("ghost", tail), body, format="json")

    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "agent.unknown"
    assert foreign.content.replace(b"other", b"X") == missing.content.replace(b"ghost", b"X")
    assert not Charge.objects.exists()
    assert not Hold.objects.exists()


def test_a_missing_key_is_401_before_the_body_is_validated(two_agents: None) -> None:
    response = APIClient().post(
        budget_url("hermes", "/check"), "{not json", content_type="application/json"
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "auth.missing"
