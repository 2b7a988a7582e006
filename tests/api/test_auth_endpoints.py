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
