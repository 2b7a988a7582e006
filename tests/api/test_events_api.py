"""GET /api/events: oldest first, paginated by id; agent keys see their own agent only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from budgets.events import record_event


@pytest.fixture
def events(db: None) -> list[int]:
    ids = []
    for n, agent in enumerate(["hermes", "other", "hermes", "hermes", "other"]):
        event_id = record_event(
            type="budget.changed",
            scope_kind="persona",
            agent_id=agent,
            persona_id="coder",
            message=f"change {n}",
            data={"n": n},
        )
        assert event_id is not None
        ids.append(event_id)
    return ids


def test_operator_pages_through_every_event_oldest_first(
    api_client: APIClient, events: list[int]
) -> None:
    first = api_client.get("/api/events?limit=2").json()
    assert [e["id"] for e in first["events"]] == events[:2]
    assert first["next"] == events[1]
    second = api_client.get(f"/api/events?after={first['next']}&limit=2").json()
    assert [e["id"] for e in second["events"]] == events[2:4]
    last = api_client.get(f"/api/events?after={second['next']}&limit=2").json()
    assert [e["id"] for e in last["events"]] == events[4:]
    assert last["next"] is None
    assert api_client.get(f"/api/events?after={events[-1]}").json() == {"events": [], "next": None}


def test_the_payload_has_the_documented_shape(api_client: APIClient, events: list[int]) -> None:
    event = api_client.get("/api/events?limit=1").json()["events"][0]
    assert event == {
        "id": events[0],
        "type": "budget.changed",
        "occurred_at": event["occurred_at"],
        "scope": {"kind": "persona", "agent": "hermes", "persona": "coder"},
        "window": None,
        "cap_usd": None,
        "spent_usd": None,
        "resets_at": None,
        "message": "change 0",
        "data": {"n": 0},
    }
    assert event["occurred_at"].endswith("+00:00")


def test_an_agent_key_sees_only_its_own_agent(
    agent_client: Callable[[str], APIClient], events: list[int], make_persona: Any
) -> None:
    make_persona(agent_id="other", persona_id="coder")
    body = agent_client("other").get("/api/events").json()
    assert [e["id"] for e in body["events"]] == [events[1], events[4]]


@pytest.mark.parametrize(
    ("query", "key"),
    [("after=-1", "after"), ("after=x", "after"), ("limit=0", "limit"), ("limit=1001", "limit")],
)
def test_a_bad_cursor_or_limit_is_400_events_invalid_query(
    api_client: APIClient, query: str, key: str
) -> None:
    response = api_client.get(f"/api/events?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "events.invalid_query"
    assert response.json()["error"]["details"] == {"key": key}


def test_without_a_key_it_is_401(db: None, settings: Any) -> None:
    settings.HAL0_REQUIRE_API_KEY = True
    assert APIClient().get("/api/events").status_code == 401
