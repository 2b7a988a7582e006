"""GET /api/agents[/{a}[/personas[/{p}]]]: shapes, 404 codes, 405, all in the envelope."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from personas.models import Agent, Persona

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def envelope_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def test_list_agents(client: APIClient, agent: Agent) -> None:
    Agent.objects.create(id="atlas", display_name="Atlas")

    response = client.get("/api/agents")

    assert response.status_code == 200
    body = response.json()
    assert [a["id"] for a in body["agents"]] == ["atlas", "hermes"]
    atlas, hermes = body["agents"]
    assert set(hermes) == {"id", "display_name", "active_persona", "created_at"}
    assert hermes["active_persona"] == "hermes"
    assert atlas["display_name"] == "Atlas"
    assert atlas["active_persona"] is None  # no personas on disk yet


def test_list_agents_when_there_are_none(client: APIClient) -> None:
    assert client.get("/api/agents").json() == {"agents": []}


def test_an_agent_key_lists_only_its_own_agent(
    agent: Agent, agent_client: Callable[[str], APIClient], settings: Any
) -> None:
    settings.HAL0_REQUIRE_API_KEY = True
    Agent.objects.create(id="atlas")

    body = agent_client("hermes").get("/api/agents").json()

    assert [a["id"] for a in body["agents"]] == ["hermes"]


def test_get_agent(client: APIClient, agent: Agent) -> None:
    response = client.get("/api/agents/hermes")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "hermes"
    assert body["active_persona"] == "hermes"
    assert body["personas"] == ["coder", "hermes"]


def test_list_personas_with_their_budget_blocks(
    client: APIClient, agent: Agent, make_persona: Callable[..., Persona]
) -> None:
    make_persona(persona_id="coder", budget_toml="daily_usd = 5\nper_call_max_usd = 0.1\n")

    response = client.get("/api/agents/hermes/personas")

    assert response.status_code == 200
    assert response.json() == {
        "agent_id": "hermes",
        "active": "hermes",
        "personas": [
            {
                "id": "coder",
                "display_name": "Coder",
                "summary": "A persona made by a test.",
                "active": False,
                "budget": {"daily_usd": 5.0, "per_call_max_usd": 0.1, "hard_cap": True},
                "load_error": None,
            },
            {
                "id": "hermes",
                "display_name": "Hermes",
                "summary": Persona.objects.get(slug="hermes").summary,
                "active": True,
                "budget": {"hard_cap": True},
                "load_error": None,
            },
        ],
    }


def test_a_persona_file_added_by_hand_shows_up_in_the_list(
    client: APIClient, agent: Agent, data_dir: Path
) -> None:
    (data_dir / "agents/hermes/personas/writer.toml").write_text(
        '[persona]\nid = "writer"\n[persona.budget]\nlifetime_usd = 100\n'
    )

    personas = client.get("/api/agents/hermes/personas").json()["personas"]

    writer = next(p for p in personas if p["id"] == "writer")
    assert writer["budget"] == {"lifetime_usd": 100.0, "hard_cap": True}
    assert writer["display_name"] == "writer"


def test_get_persona(client: APIClient, agent: Agent, make_persona: Callable[..., Persona]) -> None:
    make_persona(
        persona_id="coder",
        budget_toml='daily_usd = 0\nhard_cap = false\nwarn_at = 0.5\ntimezone = "Asia/Tokyo"\n',
    )

    response = client.get("/api/agents/hermes/personas/coder")

    assert response.status_code == 200
    assert response.json() == {
        "id": "coder",
        "agent_id": "hermes",
        "display_name": "Coder",
        "summary": "A persona made by a test.",
        "active": False,
        "budget": {"daily_usd": 0.0, "hard_cap": False, "warn_at": 0.5, "timezone": "Asia/Tokyo"},
        "load_error": None,
        "system_prompt": "",
        "preferred_upstream": "",
        "preferred_model": "",
    }


def test_the_active_persona_says_so(client: APIClient, agent: Agent, data_dir: Path) -> None:
    (data_dir / "agents/hermes/personas/active.txt").write_text("coder\n")

    coder = client.get("/api/agents/hermes/personas/coder").json()
    hermes = client.get("/api/agents/hermes/personas/hermes").json()

    assert (coder["active"], hermes["active"]) == (True, False)
    assert "Coder" in coder["system_prompt"]
    assert coder["preferred_upstream"] == "hal0"


def test_a_hand_edit_is_seen_by_the_next_read(
    client: APIClient, agent: Agent, data_dir: Path
) -> None:
    path = data_dir / "agents/hermes/personas/coder.toml"
    assert client.get("/api/agents/hermes/personas/coder").json()["budget"] == {"hard_cap": True}
    stat = path.stat()
    path.write_text(path.read_text().replace("hard_cap = true", "monthly_usd = 20"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    budget = client.get("/api/agents/hermes/personas/coder").json()["budget"]

    assert budget == {"monthly_usd": 20.0, "hard_cap": True}


def test_an_unchanged_file_is_not_parsed_again_for_each_read(
    client: APIClient, agent: Agent, data_dir: Path
) -> None:
    path = data_dir / "agents/hermes/personas/coder.toml"
    first = client.get("/api/agents/hermes/personas/coder").json()
    assert "You are Coder" in first["system_prompt"]
    stat = path.stat()
    # Same size, inode and mtime: the stat signature says "unchanged", so the prompt shown
    # is the one parsed before, not this text (which no read may parse).
    path.write_text(path.read_text().replace("You are Coder", "You are Zoder"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    again = client.get("/api/agents/hermes/personas/coder").json()

    assert again == first
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    edited = client.get("/api/agents/hermes/personas/coder").json()
    assert "You are Zoder" in edited["system_prompt"]


def test_a_malformed_persona_shows_the_error_and_the_caps_still_in_force(
    client: APIClient, make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    make_persona(persona_id="coder", budget_toml="daily_usd = 1\n")
    path = data_dir / "agents/hermes/personas/coder.toml"
    path.write_text('[persona]\nid = "coder"\n[persona.budget]\ndaily_usd = "lots"\n')

    body = client.get("/api/agents/hermes/personas/coder").json()

    assert body["load_error"] == "[persona.budget] daily_usd must be a number"
    assert body["budget"] == {"daily_usd": 1.0, "hard_cap": True}
    assert body["system_prompt"] is None
    assert str(data_dir) not in str(body)


def test_a_persona_whose_file_was_never_valid_shows_no_budget_rather_than_no_caps(
    client: APIClient, agent: Agent, data_dir: Path
) -> None:
    (data_dir / "agents/hermes/personas/writer.toml").write_text(
        '[persona]\nid = "writer"\n[persona.budget]\ndaily_usd = -1\n'
    )

    body = client.get("/api/agents/hermes/personas/writer").json()

    assert body["budget"] is None
    assert body["load_error"] == "[persona.budget] daily_usd must be >= 0"
    listed = client.get("/api/agents/hermes/personas").json()["personas"]
    assert next(p for p in listed if p["id"] == "writer")["budget"] is None


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/agents/ghost",
        "/api/agents/ghost/personas",
        "/api/agents/ghost/personas/coder",
        "/api/agents/HERMES/personas",
        "/api/agents/..",
        "/api/agents/%2e%2e/personas/coder",
        "/api/agents/" + "a" * 65,
    ],
)
def test_an_unknown_agent_is_404_agent_unknown(client: APIClient, agent: Agent, url: str) -> None:
    response = client.get(url)

    assert response.status_code == 404
    error = envelope_of(response)
    assert error["code"] == "agent.unknown"
    assert error["message"].startswith("unknown agent ")


def test_agent_unknown_details_name_the_agent(client: APIClient) -> None:
    response = client.get("/api/agents/ghost/personas/coder")

    assert response.json() == {
        "error": {
            "code": "agent.unknown",
            "message": "unknown agent 'ghost'",
            "details": {"agent_id": "ghost"},
        }
    }


@pytest.mark.parametrize("persona_id", ["writer", "Coder", "..", "%2e%2e", "a" * 65, "c.toml"])
def test_an_unknown_persona_is_404_persona_not_found(
    client: APIClient, agent: Agent, persona_id: str
) -> None:
    response = client.get(f"/api/agents/hermes/personas/{persona_id}")

    assert response.status_code == 404
    error = envelope_of(response)
    assert error["code"] == "persona.not_found"
    assert error["details"]["agent_id"] == "hermes"


def test_a_persona_whose_file_was_deleted_is_not_found(
    client: APIClient, agent: Agent, data_dir: Path
) -> None:
    (data_dir / "agents/hermes/personas/coder.toml").unlink()

    response = client.get("/api/agents/hermes/personas/coder")

    assert response.status_code == 404
    assert envelope_of(response)["code"] == "persona.not_found"
    listed = client.get("/api/agents/hermes/personas").json()["personas"]
    assert [p["id"] for p in listed] == ["hermes"]


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("post", "/api/agents"),
        ("delete", "/api/agents/hermes"),
        ("put", "/api/agents/hermes/personas"),
        ("patch", "/api/agents/hermes/personas/coder"),
        ("delete", "/api/agents/hermes/personas/coder"),
    ],
)
def test_other_methods_are_405_in_the_envelope(
    client: APIClient, agent: Agent, method: str, url: str
) -> None:
    response = getattr(client, method)(url, {}, format="json")

    assert response.status_code == 405
    assert envelope_of(response)["code"] == "request.method_not_allowed"
    # Nothing was changed on the way.
    assert Persona.objects.filter(agent=agent).count() == 2


def test_an_unknown_api_path_is_404_in_the_envelope(client: APIClient) -> None:
    response = client.get("/api/agents/a/b/c/d/e")

    assert response.status_code == 404
    assert envelope_of(response)["code"] == "not_found"
