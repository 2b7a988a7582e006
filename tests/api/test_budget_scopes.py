"""Check and charge across scopes: persona, agent, platform; USD and token caps.

Real files for agent.toml / platform.toml, the real database, the services at a fixed
instant, and the HTTP check where the body matters (token estimates).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from budgets.services import budget_charge, budget_check
from budgets.services.counters import invalidate
from hal0.money import to_nanos
from personas.models import Persona

pytestmark = pytest.mark.django_db

NOON = dt.datetime(2026, 5, 29, 12, 0, tzinfo=dt.UTC)
MakePersona = Callable[..., Persona]
_ids = itertools.count(1)


def usd(text: str) -> int:
    return to_nanos(Decimal(text))


def agent_caps(data_dir: Path, lines: str, agent_id: str = "hermes") -> None:
    (data_dir / "agents" / agent_id / "agent.toml").write_text(f"[agent.budget]\n{lines}")


def platform_caps(data_dir: Path, lines: str) -> None:
    (data_dir / "platform.toml").write_text(f"[platform.budget]\n{lines}")


def charge(
    persona: Persona, cost: str, *, at: dt.datetime = NOON, tokens: int | None = None
) -> dict[str, Any]:
    return budget_charge(
        persona=persona,
        surface="openrouter",
        model="m",
        cost_nanos=usd(cost),
        request_id=f"r{next(_ids)}",
        input_tokens=tokens,
        output_tokens=0 if tokens is not None else None,
        now=at,
    )


def check(
    persona: Persona, estimate: str, *, tokens: int = 1, at: dt.datetime = NOON
) -> dict[str, Any]:
    return budget_check(
        persona=persona, estimate_nanos=usd(estimate), estimate_tokens=tokens, now=at
    )


def test_a_warn_only_persona_under_a_hard_agent_cap_blocks_at_the_agent_cap(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "daily_usd = 0.5\nhard_cap = false\n")
    agent_caps(data_dir, "daily_usd = 1.0\n")
    charge(coder, "0.7")
    result = check(coder, "0.4")
    assert (result["allowed"], result["decision"], result["scope"], result["limit"]) == (
        False,
        "block",
        "agent",
        "daily",
    )
    assert result["reason"] == (
        "estimate 0.4 USD exceeds the agent daily cap: 0.3 USD left of 1.0 USD"
    )
    # Below the agent cap the warn-only persona still only warns.
    warned = check(coder, "0.2")
    assert (warned["allowed"], warned["decision"], warned["scope"]) == (True, "warn", "persona")
    # remaining_usd is the persona's effective headroom: the smaller of its own and the agent's.
    assert warned["remaining_usd"] == {"daily": 0.0}


def test_a_hard_persona_under_a_warn_only_agent_cap_blocks_at_the_persona_cap(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "daily_usd = 1.0\n")
    agent_caps(data_dir, "daily_usd = 0.5\nhard_cap = false\n")
    charge(coder, "0.4")
    # Breaks the agent's (warn-only) first, but only the persona's cap can block.
    result = check(coder, "0.7")
    assert (result["allowed"], result["scope"], result["limit"]) == (False, "persona", "daily")
    warned = check(coder, "0.2")
    assert (warned["allowed"], warned["decision"], warned["scope"]) == (True, "warn", "agent")
    assert "agent daily cap" in warned["reason"]


def test_the_agent_cap_counts_every_persona_of_the_agent_and_no_other_agent(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "")
    other = make_persona("hermes", "writer", "")
    stranger = make_persona("zeus", "coder", "")
    agent_caps(data_dir, "monthly_usd = 2.0\n")
    charge(coder, "0.5")
    charge(other, "0.75")
    charge(stranger, "5")
    assert check(coder, "0.75")["allowed"] is True
    blocked = check(coder, "0.750000001")
    assert (blocked["scope"], blocked["limit"]) == ("agent", "monthly")
    assert check(stranger, "100")["allowed"] is True  # zeus has no agent caps


def test_the_platform_cap_counts_every_agent_and_holds_count_as_spent(
    make_persona: MakePersona, data_dir: Path
) -> None:
    a = make_persona("hermes", "coder", "")
    b = make_persona("zeus", "coder", "")
    platform_caps(data_dir, "lifetime_usd = 1.0\n")
    charge(a, "0.3")
    held = budget_check(persona=b, estimate_nanos=usd("0.5"), reserve=True, now=NOON)
    assert held["allowed"] is True
    result = check(a, "0.3")
    assert (result["allowed"], result["scope"], result["limit"]) == (False, "platform", "lifetime")
    assert result["reason"] == (
        "estimate 0.3 USD exceeds the platform lifetime cap: 0.2 USD left of 1.0 USD"
    )
    assert result["remaining_usd"] == {"lifetime": 0.2}


@pytest.mark.parametrize("platform_zone", ["UTC", "Asia/Tokyo"])
def test_agent_and_platform_caps_together_count_each_scopes_spend_holds_and_tokens(
    make_persona: MakePersona, data_dir: Path, platform_zone: str
) -> None:
    """Both scopes capped: in one zone they are read in one pass over the counters (the
    agent's picked out by its id), in two zones in a pass each; the figures are the same."""
    coder = make_persona("hermes", "coder", "")
    writer = make_persona("hermes", "writer", "")
    idle = make_persona("hermes", "idle", "")  # never charged: no counters
    stranger = make_persona("zeus", "coder", "")
    agent_caps(data_dir, 'daily_usd = 2.0\ndaily_tokens = 1000\ntimezone = "UTC"\n')
    platform_caps(data_dir, f'daily_usd = 3.0\ndaily_tokens = 5000\ntimezone = "{platform_zone}"\n')
    charge(coder, "0.5", tokens=100)
    charge(writer, "0.25", tokens=200)
    charge(stranger, "1", tokens=3000)
    held = budget_check(
        persona=stranger, estimate_nanos=usd("0.5"), estimate_tokens=500, reserve=True, now=NOON
    )
    assert held["allowed"] is True
    # Agent: 0.75 of 2.0 spent, 300 of 1000 tokens. Platform: 1.75 spent + 0.5 held of
    # 3.0, 3300 + 500 held of 5000 tokens.
    result = check(idle, "0", tokens=0)
    assert result["remaining_usd"] == {"daily": 0.75}
    assert check(idle, "0.75", tokens=1)["allowed"] is True
    blocked = check(idle, "0.750000001", tokens=1)
    assert (blocked["scope"], blocked["limit"]) == ("platform", "daily")
    assert check(idle, "0.1", tokens=700)["allowed"] is True
    by_tokens = check(idle, "0.1", tokens=701)
    assert (by_tokens["scope"], by_tokens["limit"]) == ("agent", "daily_tokens")


def test_a_per_call_token_cap_uses_the_checks_token_estimate(
    make_persona: MakePersona, data_dir: Path, api_client: APIClient
) -> None:
    make_persona("hermes", "coder", "per_call_max_tokens = 2000\n")
    url = "/api/agents/hermes/personas/coder/budget/check"

    def post(body: dict[str, Any]) -> dict[str, Any]:
        response = api_client.post(url, json.dumps(body), content_type="application/json")
        assert response.status_code == 200, response.content
        answer: dict[str, Any] = response.json()
        return answer

    fits = post({"estimated_cost_usd": 0.01, "input_tokens": 1200, "max_output_tokens": 800})
    assert (fits["allowed"], fits["limit"]) == (True, None)
    over = post({"estimated_cost_usd": 0.01, "input_tokens": 1201, "max_output_tokens": 800})
    assert (over["allowed"], over["limit"], over["scope"]) == (False, "per_call_tokens", "persona")
    assert over["reason"] == ("estimate 2001 tokens exceeds the per-call token cap of 2000 tokens")
    # Without a token estimate the call counts as one token.
    assert post({"estimated_cost_usd": 0.01})["allowed"] is True
    bad = api_client.post(
        url,
        json.dumps({"estimated_cost_usd": 0.01, "input_tokens": 1.5}),
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "budget.invalid_estimate"


def test_windowed_token_caps_count_the_charges_tokens_with_and_without_an_estimate(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "")
    agent_caps(data_dir, "daily_tokens = 1000\n")
    charge(coder, "0.01", tokens=900)
    charge(coder, "0.01")  # no token counts: adds none
    assert check(coder, "0", tokens=100)["allowed"] is True
    over = check(coder, "0", tokens=101)
    assert (over["allowed"], over["scope"], over["limit"]) == (False, "agent", "daily_tokens")
    assert over["remaining_tokens"] == {"daily": 100}
    assert "agent daily token cap: 100 tokens left of 1000 tokens" in over["reason"]
    # No token estimate: one token, which fits until the cap is reached.
    assert check(coder, "0")["allowed"] is True
    charge(coder, "0", tokens=100)
    stopped = check(coder, "0")
    assert (stopped["allowed"], stopped["limit"]) == (False, "daily_tokens")
    # Tomorrow the daily token window starts again.
    assert check(coder, "0", tokens=1000, at=NOON + dt.timedelta(days=1))["allowed"] is True


def test_a_hold_reserves_tokens_against_every_scope(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "")
    writer = make_persona("hermes", "writer", "")
    platform_caps(data_dir, "monthly_tokens = 5000\n")
    held = budget_check(
        persona=coder, estimate_nanos=0, estimate_tokens=4000, reserve=True, now=NOON
    )
    assert held["allowed"] is True
    assert check(writer, "0", tokens=1000)["allowed"] is True
    assert check(writer, "0", tokens=1001)["limit"] == "monthly_tokens"


def test_an_agent_day_is_cut_in_the_agents_timezone(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "daily_usd = 10.0\n")  # UTC days
    agent_caps(data_dir, 'daily_usd = 1.0\ntimezone = "Asia/Tokyo"\n')
    # 14:00 UTC is 23:00 in Tokyo (the 29th); 16:00 UTC is 01:00 on the 30th there.
    charge(coder, "0.6", at=NOON.replace(hour=14))
    charge(coder, "0.3", at=NOON.replace(hour=16))
    later = NOON.replace(hour=17)
    # The agent's Tokyo day holds 0.3 only; the persona's UTC day holds 0.9.
    result = check(coder, "0.7", at=later)
    assert result["allowed"] is True
    assert result["remaining_usd"] == {"daily": 0.7}
    assert check(coder, "0.700000001", at=later)["scope"] == "agent"


def test_missing_counters_never_make_a_scope_look_cheaper(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "")
    writer = make_persona("hermes", "writer", "")
    agent_caps(data_dir, "daily_usd = 1.0\nlifetime_usd = 2.0\n")
    charge(coder, "0.5")
    charge(writer, "0.25", at=NOON - dt.timedelta(days=3))
    invalidate(coder)  # as an import does
    invalidate(writer)
    result = check(coder, "0")
    assert result["remaining_usd"] == {"daily": 0.5, "lifetime": 1.25}


def test_without_caps_above_the_persona_the_answer_is_hal0s(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "daily_usd = 1.0\n")
    agent_caps(data_dir, "")
    result = check(coder, "2")
    assert result == {
        "allowed": False,
        "reason": "estimate 2.0 USD exceeds the daily cap: 1.0 USD left of 1.0 USD",
        "remaining_usd": {"daily": 1.0},
        "hard_cap": True,
        "decision": "block",
        "limit": "daily",
        "scope": "persona",
    }


def test_a_paused_agent_blocks_every_check_of_its_personas(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "")
    agent_caps(data_dir, "paused = true\nhard_cap = false\n")
    result = check(coder, "0")
    assert (result["allowed"], result["limit"], result["scope"]) == (False, "paused", "agent")
