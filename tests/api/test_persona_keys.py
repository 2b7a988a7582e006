"""Persona-scoped API keys: an agent key narrowed to one persona sees no other.

Real keys (``apikey create --agent hermes --persona coder``), real requests through the
whole API, the real database and persona files.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from budgets.apikeys import create_key
from budgets.events.outbox import record_event
from budgets.models import Charge, Hold
from budgets.services import budget_check
from hal0.money import to_nanos
from personas.models import Persona

pytestmark = pytest.mark.django_db

MakePersona = Callable[..., Persona]
CODER = "/api/agents/hermes/personas/coder"
WRITER = "/api/agents/hermes/personas/writer"


@pytest.fixture(autouse=True)
def keys_on(settings: Any) -> None:
    settings.HAL0_REQUIRE_API_KEY = True


@pytest.fixture
def coder(make_persona: MakePersona) -> Persona:
    return make_persona("hermes", "coder", "daily_usd = 1.0\n")


@pytest.fixture
def writer(make_persona: MakePersona) -> Persona:
    return make_persona("hermes", "writer", "")


@pytest.fixture
def coder_key(coder: Persona, writer: Persona) -> APIClient:
    """A key for hermes/coder only, made the way an operator makes one."""
    out = io.StringIO()
    call_command("apikey", "create", "--agent", "hermes", "--persona", "coder", stdout=out)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {out.getvalue().split()[-1]}")
    return client


def post(client: APIClient, url: str, body: Any) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json")


def not_found(response: Any, persona_id: str = "writer") -> None:
    assert response.status_code == 404, response.content
    assert response.json() == {
        "error": {
            "code": "persona.not_found",
            "message": f"persona {persona_id!r} not found",
            "details": {"agent_id": "hermes", "persona_id": persona_id},
        }
    }


def test_another_persona_reads_as_not_found_on_every_persona_route(
    coder_key: APIClient, writer: Persona
) -> None:
    for url in (WRITER, f"{WRITER}/budget", f"{WRITER}/runs", f"{WRITER}/runs/goal-1"):
        not_found(coder_key.get(url))
    # Word for word what a persona that does not exist answers.
    ghost = coder_key.get("/api/agents/hermes/personas/ghost/budget")
    not_found(ghost, "ghost")


def test_it_cannot_check_or_charge_another_persona(coder_key: APIClient, writer: Persona) -> None:
    not_found(post(coder_key, f"{WRITER}/budget/check", {"estimated_cost_usd": 0.01}))
    not_found(
        post(
            coder_key,
            f"{WRITER}/budget/check",
            {"estimated_cost_usd": 0.01, "reserve": True},
        )
    )
    # Scope before body, as for another agent: a malformed body changes nothing.
    not_found(post(coder_key, f"{WRITER}/budget/check", "nonsense"))
    charge = {"surface": "s", "model": "m", "cost_usd": 0.5, "request_id": "r1"}
    not_found(post(coder_key, f"{WRITER}/budget/charge", charge))
    not_found(post(coder_key, f"{WRITER}/runs", {"run_id": "goal-1"}))
    assert not Charge.objects.exists()
    assert not Hold.objects.exists()


def test_it_cannot_release_another_personas_hold(coder_key: APIClient, writer: Persona) -> None:
    hold = budget_check(persona=writer, estimate_nanos=to_nanos(1), reserve=True)["hold"]
    not_found(post(coder_key, f"{WRITER}/budget/holds/{hold['id']}/release", {}))
    # Nor through its own URL: the hold is not its persona's.
    response = post(coder_key, f"{CODER}/budget/holds/{hold['id']}/release", {})
    assert response.json()["error"]["code"] == "hold.not_found"
    assert Hold.objects.get(pk=hold["id"]).state == Hold.State.ACTIVE


def test_its_own_persona_works_as_with_an_agent_key(coder_key: APIClient) -> None:
    assert coder_key.get(f"{CODER}/budget").status_code == 200
    checked = post(coder_key, f"{CODER}/budget/check", {"estimated_cost_usd": 0.2, "reserve": True})
    assert checked.status_code == 200, checked.content
    hold_id = checked.json()["hold"]["id"]
    released = post(coder_key, f"{CODER}/budget/holds/{hold_id}/release", {})
    assert released.json()["hold"]["state"] == "released"
    charged = post(
        coder_key,
        f"{CODER}/budget/charge",
        {"surface": "s", "model": "m", "cost_usd": 0.25, "request_id": "r1"},
    )
    assert charged.json()["spend"]["today_usd"] == 0.25
    # Still an agent key: no budget changes.
    assert coder_key.put(f"{CODER}/budget", {}, format="json").status_code == 403


def test_lists_show_only_its_persona_and_agent_routes_stay_open(
    coder_key: APIClient, coder: Persona, settings: Any
) -> None:
    listed = coder_key.get("/api/agents/hermes/personas").json()
    assert [p["id"] for p in listed["personas"]] == ["coder"]
    assert coder_key.get("/api/agents/hermes").json()["personas"] == ["coder"]
    assert coder_key.get("/api/agents/hermes/budget").status_code == 200
    assert coder_key.get("/api/agents/zeus/budget").json()["error"]["code"] == "agent.unknown"
    # When another persona is the active one, this key is not told its id.
    (settings.HAL0_DATA_DIR / "agents/hermes/personas/active.txt").write_text("writer\n")
    assert coder_key.get("/api/agents/hermes/personas").json()["active"] is None
    assert coder_key.get("/api/agents").json()["agents"][0]["active_persona"] is None
    (settings.HAL0_DATA_DIR / "agents/hermes/personas/active.txt").write_text("coder\n")
    assert coder_key.get("/api/agents/hermes/personas").json()["active"] == "coder"


def test_events_and_spend_reports_are_narrowed_to_its_persona(
    coder_key: APIClient, coder: Persona, writer: Persona
) -> None:
    for persona_id in ("coder", "writer", ""):
        record_event(
            type="budget.changed",
            scope_kind="persona" if persona_id else "agent",
            agent_id="hermes",
            persona_id=persona_id,
            message="test",
        )
    events = coder_key.get("/api/events").json()["events"]
    assert sorted(e["scope"]["persona"] or "" for e in events) == ["", "coder"]
    report = coder_key.get("/api/spend?from=2026-01-01&to=2026-01-31&persona=writer")
    assert report.json()["error"]["code"] == "persona.not_found"
    assert coder_key.get("/api/spend?from=2026-01-01&to=2026-01-31").status_code == 200


def test_an_agent_key_without_a_persona_still_sees_every_persona(
    agent_client: Callable[[str], APIClient], coder: Persona, writer: Persona
) -> None:
    client = agent_client("hermes")
    assert client.get(f"{WRITER}/budget").status_code == 200
    listed = client.get("/api/agents/hermes/personas").json()
    assert [p["id"] for p in listed["personas"]] == ["coder", "writer"]


def test_the_key_records_its_persona(coder: Persona) -> None:
    key, _ = create_key(scope="agent", agent_id="hermes", persona_id="coder")
    assert (key.agent_id, key.persona_slug, key.name) == ("hermes", "coder", "persona hermes/coder")


def test_an_agent_keys_persona_get_leaves_the_platform_out_of_scopes(
    coder_key: APIClient,
    agent_client: Callable[[str], APIClient],
    api_client: APIClient,
    settings: Any,
) -> None:
    (settings.HAL0_DATA_DIR / "platform.toml").write_text("[platform.budget]\nmonthly_usd = 9\n")
    for client in (coder_key, agent_client("hermes")):
        scopes = client.get(f"{CODER}/budget").json()["scopes"]
        assert set(scopes) == {"persona", "agent"}
    operator = api_client.get(f"{CODER}/budget").json()["scopes"]
    assert operator["platform"]["budget"] == {"monthly_usd": 9.0, "hard_cap": True}
