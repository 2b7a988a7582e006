"""``GET/PUT /api/agents/{a}/budget`` and ``GET/PUT /api/platform/budget``, and the
``scopes`` object of a persona's GET.

Real agent.toml / platform.toml files under the test's data folder, the real database,
real keys; the clock is fixed where the windows matter.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from budgets.events.models import Event
from budgets.services import budget_charge, budget_check
from hal0.money import to_nanos
from personas.models import BudgetChange, Persona
from tests.api.conftest import Clock
from tests.conftest import DataDisk

pytestmark = pytest.mark.django_db

AGENT_URL = "/api/agents/hermes/budget"
PLATFORM_URL = "/api/platform/budget"
MakePersona = Callable[..., Persona]
_ids = itertools.count(1)


def usd(text: str) -> int:
    return to_nanos(Decimal(text))


def charge(persona: Persona, cost: str, *, tokens: int | None = None) -> None:
    budget_charge(
        persona=persona,
        surface="openrouter",
        model="m",
        cost_nanos=usd(cost),
        request_id=f"r{next(_ids)}",
        input_tokens=tokens,
        output_tokens=0 if tokens is not None else None,
    )


def put(client: APIClient, url: str, body: Any) -> Any:
    return client.put(url, json.dumps(body), content_type="application/json")


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def personas(make_persona: MakePersona, clock: Clock) -> tuple[Persona, Persona, Persona]:
    """hermes/coder and hermes/writer, and zeus/coder (another agent), no persona caps."""
    return (
        make_persona("hermes", "coder", ""),
        make_persona("hermes", "writer", ""),
        make_persona("zeus", "coder", ""),
    )


# ---------------------------------------------------------------------------------------
# GET


def test_an_agent_without_agent_toml_has_no_caps_and_its_personas_spend_summed(
    api_client: APIClient, personas: tuple[Persona, Persona, Persona]
) -> None:
    coder, writer, stranger = personas
    charge(coder, "0.25", tokens=100)
    charge(writer, "0.5", tokens=50)
    charge(stranger, "7")  # another agent: not in hermes' spend

    body = ok(api_client.get(AGENT_URL))

    assert body["budget"] == {"hard_cap": True}
    assert body["spend"] == {
        "today_usd": 0.75,
        "mtd_usd": 0.75,
        "lifetime_usd": 0.75,
        "today_tokens": 150,
        "mtd_tokens": 150,
        "lifetime_tokens": 150,
    }
    assert body["remaining"] == {}
    assert body["status"] == "none"
    assert body["held_usd"] == 0.0
    assert body["unpriced_charges"] == {"today": 0, "month": 0, "lifetime": 0}
    assert body["resets_at"] == {
        "daily": "2026-05-13T00:00:00+00:00",
        "monthly": "2026-06-01T00:00:00+00:00",
    }


def test_the_agent_get_reads_the_caps_of_agent_toml_with_the_statuses_of_the_rules(
    api_client: APIClient, personas: tuple[Persona, Persona, Persona], data_dir: Path
) -> None:
    coder, writer, _ = personas
    (data_dir / "agents/hermes/agent.toml").write_text(
        "[agent.budget]\ndaily_usd = 1.0\nmonthly_usd = 10\ndaily_tokens = 1000\n"
    )
    charge(coder, "0.5", tokens=900)
    charge(writer, "0.35")
    budget_check(persona=coder, estimate_nanos=usd("0.1"), reserve=True)

    body = ok(api_client.get(AGENT_URL))

    assert body["budget"] == {
        "daily_usd": 1.0,
        "monthly_usd": 10.0,
        "daily_tokens": 1000,
        "hard_cap": True,
    }
    # Holds are shown beside the spend, not subtracted from `remaining` (as for a persona).
    assert body["remaining"] == {"daily_usd": 0.15, "monthly_usd": 9.15, "daily_tokens": 100}
    assert body["held_usd"] == 0.1
    assert body["held_tokens"] == 1
    # 0.85 of the daily cap and 0.9 of the token cap: past the default warn line of 0.8.
    assert body["status"] == "warn"


def test_the_platform_get_sums_every_agent_in_its_own_timezone(
    api_client: APIClient, personas: tuple[Persona, Persona, Persona], data_dir: Path, clock: Clock
) -> None:
    coder, _, stranger = personas
    charge(coder, "1")
    charge(stranger, "2")
    (data_dir / "platform.toml").write_text(
        '[platform.budget]\ndaily_usd = 3.0\ntimezone = "Asia/Tokyo"\n'
    )
    # 09:30 UTC is 18:30 in Tokyo: the same local day; its midnight is 15:00 UTC.
    body = ok(api_client.get(PLATFORM_URL))
    assert body["spend"]["today_usd"] == 3.0
    assert body["remaining"] == {"daily_usd": 0.0}
    assert body["status"] == "exceeded"
    assert body["resets_at"]["daily"] == "2026-05-12T15:00:00+00:00"

    clock.advance(6 * 3600)  # 15:30 UTC: the next day in Tokyo
    body = ok(api_client.get(PLATFORM_URL))
    assert body["spend"]["today_usd"] == 0.0
    assert body["spend"]["lifetime_usd"] == 3.0
    assert body["status"] == "ok"


def test_unpriced_charges_of_the_scope_are_counted_not_priced(
    api_client: APIClient, personas: tuple[Persona, Persona, Persona]
) -> None:
    coder, writer, stranger = personas
    for persona in (coder, writer, stranger):
        budget_charge(
            persona=persona,
            surface="local",
            model="nobody-prices-this",
            cost_nanos=None,
            request_id=f"u{next(_ids)}",
            input_tokens=10,
            output_tokens=5,
            cost_source="unpriced",
        )
    agent = ok(api_client.get(AGENT_URL))
    assert agent["unpriced_charges"] == {"today": 2, "month": 2, "lifetime": 2}
    assert agent["spend"]["lifetime_usd"] == 0.0
    assert agent["spend"]["lifetime_tokens"] == 30
    platform = ok(api_client.get(PLATFORM_URL))
    assert platform["unpriced_charges"] == {"today": 3, "month": 3, "lifetime": 3}


def test_an_unknown_agent_is_404_agent_unknown(api_client: APIClient) -> None:
    error(api_client.get("/api/agents/ghost/budget"), 404, "agent.unknown")
    error(api_client.get("/api/agents/Hermes/budget"), 404, "agent.unknown")
    error(put(api_client, "/api/agents/ghost/budget", "not an object"), 404, "agent.unknown")


def test_a_malformed_agent_toml_is_400_budget_malformed_and_its_caps_stay(
    api_client: APIClient, personas: tuple[Persona, Persona, Persona], data_dir: Path
) -> None:
    coder = personas[0]
    path = data_dir / "agents/hermes/agent.toml"
    path.write_text("[agent.budget]\ndaily_usd = 0.5\n")
    ok(api_client.get(AGENT_URL))
    path.write_text("[agent.budget]\ndaily_usd = 'lots'\n")
    broken = path.read_text()

    err = error(api_client.get(AGENT_URL), 400, "budget.malformed")
    assert "agents/hermes/agent.toml" in err["message"]
    assert str(data_dir) not in err["message"]
    err = error(put(api_client, AGENT_URL, {"daily_usd": 5}), 400, "budget.malformed")
    assert path.read_text() == broken  # nothing written over the operator's file
    # The last good cap is still in force for checks.
    blocked = budget_check(persona=coder, estimate_nanos=usd("0.6"))
    assert (blocked["allowed"], blocked["scope"]) == (False, "agent")


# ---------------------------------------------------------------------------------------
# PUT


def test_put_writes_agent_toml_keeps_comments_audits_and_the_check_uses_it(
    api_client: APIClient, personas: tuple[Persona, Persona, Persona], data_dir: Path
) -> None:
    coder = personas[0]
    path = data_dir / "agents/hermes/agent.toml"
    path.write_text(
        '# hermes: the team\'s assistant\n[agent]\nid = "hermes"\n'
        '[agent.budget]\nhard_cap = true  # keep it hard\n[notes]\nowner = "ops"\n'
    )
    charge(coder, "0.3")
    body = ok(put(api_client, AGENT_URL, {"daily_usd": 1.0, "per_call_max_tokens": 4000}))

    assert body["budget"] == {"daily_usd": 1.0, "per_call_max_tokens": 4000, "hard_cap": True}
    assert body["remaining"] == {"daily_usd": 0.7}
    text = path.read_text()
    assert "# hermes: the team's assistant" in text
    assert '[notes]\nowner = "ops"' in text
    assert "daily_usd = 1.0" in text
    change = BudgetChange.objects.get(scope="agent")
    assert change.agent_id == "hermes"
    assert change.via == "api"
    assert change.actor.startswith("key:")
    assert (change.before, change.after) == (
        {"hard_cap": True},
        {"daily_usd": 1.0, "per_call_max_tokens": 4000, "hard_cap": True},
    )
    event = Event.objects.get(type="budget.changed")
    assert (event.scope_kind, event.agent_id, event.persona_id) == ("agent", "hermes", "")
    # The check of a persona of hermes now stops at the agent's cap.
    check = api_client.post(
        "/api/agents/hermes/personas/coder/budget/check",
        json.dumps({"estimated_cost_usd": 0.8}),
        content_type="application/json",
    )
    answer = ok(check)
    assert (answer["allowed"], answer["scope"], answer["limit"]) == (False, "agent", "daily")


def test_put_creates_a_missing_file_and_the_same_put_again_changes_nothing(
    api_client: APIClient, personas: tuple[Persona, Persona, Persona], data_dir: Path
) -> None:
    assert not (data_dir / "platform.toml").exists()
    body = ok(put(api_client, PLATFORM_URL, {"monthly_usd": 500, "hard_cap": False}))
    assert body["budget"] == {"monthly_usd": 500.0, "hard_cap": False}
    assert "monthly_usd = 500" in (data_dir / "platform.toml").read_text()
    ok(put(api_client, PLATFORM_URL, {"monthly_usd": 500, "hard_cap": False}))
    assert BudgetChange.objects.filter(scope="platform").count() == 1
    # The whole block is replaced: an empty body lifts every cap.
    assert ok(put(api_client, PLATFORM_URL, {}))["budget"] == {"hard_cap": True}
    assert BudgetChange.objects.filter(scope="platform").count() == 2
    assert Event.objects.filter(type="budget.changed", scope_kind="platform").count() == 2


@pytest.mark.parametrize("url", [AGENT_URL, PLATFORM_URL])
@pytest.mark.parametrize(
    ("body", "code", "key"),
    [
        ("", "budget.invalid_body", None),
        ("null", "budget.invalid_body", None),
        ("[1]", "budget.invalid_body", None),
        ("{not json", "budget.invalid_body", None),
        ('{"daily_usd": -1}', "budget.invalid", "daily_usd"),
        ('{"daily_usd": "1"}', "budget.invalid", "daily_usd"),
        ('{"daily_usd": true}', "budget.invalid", "daily_usd"),
        ('{"daily_usd": NaN}', "budget.invalid", "daily_usd"),
        ('{"daily_tokens": 1.5}', "budget.invalid", "daily_tokens"),
        ('{"daily_cap": 1}', "budget.invalid", "daily_cap"),
        ('{"timezone": "Mars/Base"}', "budget.invalid", "timezone"),
    ],
)
def test_a_bad_put_body_is_400_and_writes_nothing(
    api_client: APIClient,
    personas: tuple[Persona, Persona, Persona],
    data_dir: Path,
    url: str,
    body: str,
    code: str,
    key: str | None,
) -> None:
    response = api_client.put(url, body, content_type="application/json")
    err = error(response, 400, code)
    if key is not None:
        assert err["details"]["key"] == key
    assert not (data_dir / "platform.toml").exists()
    assert not (data_dir / "agents/hermes/agent.toml").exists()
    assert not BudgetChange.objects.exists()


def test_a_put_on_a_full_disk_is_503_and_changes_nothing(
    api_client: APIClient, data_disk: DataDisk, data_dir: Path
) -> None:
    ok(put(api_client, PLATFORM_URL, {"daily_usd": 1}))
    before = (data_dir / "platform.toml").read_text()
    data_disk.fill()
    err = error(put(api_client, PLATFORM_URL, {"daily_usd": 2}), 503, "budget.write_failed")
    assert err["details"] == {"file": "platform.toml"}
    assert str(data_dir) not in err["message"]
    data_disk.free()
    assert (data_dir / "platform.toml").read_text() == before
    assert BudgetChange.objects.filter(scope="platform").count() == 1
    assert ok(api_client.get(PLATFORM_URL))["budget"] == {"daily_usd": 1.0, "hard_cap": True}


# ---------------------------------------------------------------------------------------
# Keys


@override_settings(HAL0_REQUIRE_API_KEY=True)
def test_an_agent_key_reads_its_own_agent_budget_and_nothing_more(
    agent_client: Callable[[str], APIClient],
    personas: tuple[Persona, Persona, Persona],
    data_dir: Path,
) -> None:
    client = agent_client("hermes")
    assert ok(client.get(AGENT_URL))["budget"] == {"hard_cap": True}
    error(client.get("/api/agents/zeus/budget"), 404, "agent.unknown")
    error(put(client, AGENT_URL, {"daily_usd": 100}), 403, "auth.forbidden")
    error(client.get(PLATFORM_URL), 403, "auth.forbidden")
    error(put(client, PLATFORM_URL, {}), 403, "auth.forbidden")
    assert not (data_dir / "agents/hermes/agent.toml").exists()
    assert not (data_dir / "platform.toml").exists()
    assert not BudgetChange.objects.exists()


@override_settings(HAL0_REQUIRE_API_KEY=True)
def test_without_a_key_the_scope_budgets_are_401(personas: Any) -> None:
    for url in (AGENT_URL, PLATFORM_URL):
        error(APIClient().get(url), 401, "auth.missing")


# ---------------------------------------------------------------------------------------
# The persona GET's scopes


def test_the_persona_get_shows_each_scopes_caps_spend_and_status(
    api_client: APIClient,
    make_persona: MakePersona,
    data_dir: Path,
    clock: Clock,
) -> None:
    coder = make_persona("hermes", "coder", "daily_usd = 10.0\n")
    writer = make_persona("hermes", "writer", "")
    (data_dir / "agents/hermes/agent.toml").write_text("[agent.budget]\ndaily_usd = 1.0\n")
    (data_dir / "platform.toml").write_text("[platform.budget]\nlifetime_tokens = 100\n")
    charge(coder, "0.5", tokens=20)
    charge(writer, "0.5", tokens=20)

    body = ok(api_client.get("/api/agents/hermes/personas/coder/budget"))

    # hal0's keys as before...
    assert body["budget"] == {"daily_usd": 10.0, "hard_cap": True}
    assert body["spend"] == {"today_usd": 0.5, "mtd_usd": 0.5, "lifetime_usd": 0.5}
    assert body["remaining"] == {"daily_usd": 9.5}
    assert body["status"] == "ok"
    # ...and whose cap bites: the agent has spent its day.
    scopes = body["scopes"]
    assert set(scopes) == {"persona", "agent", "platform"}
    assert scopes["persona"] == {
        "budget": {"daily_usd": 10.0, "hard_cap": True},
        "spend": {
            "today_usd": 0.5,
            "mtd_usd": 0.5,
            "lifetime_usd": 0.5,
            "today_tokens": 20,
            "mtd_tokens": 20,
            "lifetime_tokens": 20,
        },
        "status": "ok",
    }
    assert scopes["agent"]["spend"]["today_usd"] == 1.0
    assert scopes["agent"]["status"] == "exceeded"
    assert scopes["platform"]["budget"] == {"lifetime_tokens": 100, "hard_cap": True}
    assert scopes["platform"]["spend"]["lifetime_tokens"] == 40
    assert scopes["platform"]["status"] == "ok"
    # The persona PUT answers the same shape.
    answer = ok(put(api_client, "/api/agents/hermes/personas/coder/budget", {"daily_usd": 2}))
    assert answer["scopes"]["agent"]["status"] == "exceeded"
    assert answer["remaining"] == {"daily_usd": 1.5}


def test_the_persona_get_keeps_showing_the_last_good_agent_caps_while_the_file_is_broken(
    api_client: APIClient, make_persona: MakePersona, data_dir: Path
) -> None:
    make_persona("hermes", "coder", "")
    path = data_dir / "agents/hermes/agent.toml"
    path.write_text("[agent.budget]\nmonthly_usd = 3\n")
    ok(api_client.get(AGENT_URL))
    path.write_text("[agent.budget\n")
    body = ok(api_client.get("/api/agents/hermes/personas/coder/budget"))
    assert body["scopes"]["agent"]["budget"] == {"monthly_usd": 3.0, "hard_cap": True}
    error(api_client.get(AGENT_URL), 400, "budget.malformed")


def test_an_unreadable_platform_toml_is_malformed_never_a_500(
    api_client: APIClient, data_dir: Path
) -> None:
    (data_dir / "platform.toml").mkdir()  # a folder where the file should be
    err = error(api_client.get(PLATFORM_URL), 400, "budget.malformed")
    assert str(data_dir) not in err["message"]
    error(put(api_client, PLATFORM_URL, {"daily_usd": 1}), 400, "budget.malformed")
    assert (data_dir / "platform.toml").is_dir()
    assert not BudgetChange.objects.exists()


def test_unpriced_charges_are_counted_in_a_zone_no_counter_was_kept_in(
    api_client: APIClient, personas: tuple[Persona, Persona, Persona], data_dir: Path, clock: Clock
) -> None:
    coder, _, stranger = personas
    for persona in (coder, stranger):
        budget_charge(
            persona=persona,
            surface="local",
            model="nobody-prices-this",
            cost_nanos=None,
            request_id=f"u{next(_ids)}",
            input_tokens=1,
            output_tokens=1,
            cost_source="unpriced",
        )
    charge(coder, "0.5")
    # The charges kept UTC counters only; the platform's day is Tokyo's (18:30 there).
    (data_dir / "platform.toml").write_text('[platform.budget]\ntimezone = "Asia/Tokyo"\n')
    body = ok(api_client.get(PLATFORM_URL))
    assert body["unpriced_charges"] == {"today": 2, "month": 2, "lifetime": 2}
    assert body["spend"]["today_usd"] == 0.5
    clock.advance(6 * 3600)  # the next day in Tokyo
    body = ok(api_client.get(PLATFORM_URL))
    assert body["unpriced_charges"] == {"today": 0, "month": 2, "lifetime": 2}


def test_pausing_the_platform_over_the_api_stops_every_agent_until_resumed(
    api_client: APIClient, personas: tuple[Persona, Persona, Persona]
) -> None:
    def check(agent_id: str) -> dict[str, Any]:
        return ok(
            api_client.post(
                f"/api/agents/{agent_id}/personas/coder/budget/check",
                json.dumps({"estimated_cost_usd": 0}),
                content_type="application/json",
            )
        )

    assert ok(put(api_client, PLATFORM_URL, {"paused": True}))["budget"]["paused"] is True
    for agent_id in ("hermes", "zeus"):
        stopped = check(agent_id)
        assert (stopped["allowed"], stopped["scope"], stopped["limit"]) == (
            False,
            "platform",
            "paused",
        )
    ok(put(api_client, PLATFORM_URL, {}))
    assert check("zeus")["allowed"] is True
