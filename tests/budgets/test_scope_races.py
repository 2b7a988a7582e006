"""Concurrent clients against agent and platform caps, with real threads and connections.

The personas have no caps of their own: only the scope above them can refuse. Runs on
whichever database the suite runs on (SQLite, then PostgreSQL in CI's second pass).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Sum

from budgets.models import Charge, Hold
from budgets.services import budget_charge, budget_check
from budgets.services.counters import find_drift
from hal0.money import to_nanos
from personas.models import Persona
from tests.budgets.test_races import CLIENTS, _run_clients

COST = to_nanos(0.1)
CAP = to_nanos(1.0)


def _total(personas: list[Persona]) -> int:
    charges = Charge.objects.filter(persona__in=personas)
    return int(charges.aggregate(t=Sum("cost_nanos"))["t"] or 0)


def _reserve_and_charge(personas: list[Persona], allowed: list[int]) -> Callable[[int], None]:
    def client(n: int) -> None:
        target = personas[n % len(personas)]
        for attempt in range(2):
            persona = Persona.objects.get(pk=target.pk)
            result = budget_check(persona=persona, estimate_nanos=COST, reserve=True)
            if not result["allowed"]:
                assert result["scope"] in ("agent", "platform")
                continue
            allowed.append(n)
            budget_charge(
                persona=persona,
                surface="race",
                model="m",
                cost_nanos=COST,
                request_id=f"c{n}-{attempt}",
                hold_id=result["hold"]["id"],
                input_tokens=10,
                output_tokens=5,
            )

    return client


@pytest.mark.django_db(transaction=True)
def test_24_clients_on_3_personas_never_overspend_their_agents_daily_cap(
    make_persona: Callable[..., Any], data_dir: Path
) -> None:
    personas = [make_persona("fleet", f"p{i}", budget_toml="") for i in range(3)]
    (data_dir / "agents" / "fleet" / "agent.toml").write_text("[agent.budget]\ndaily_usd = 1.0\n")
    allowed: list[int] = []

    errors = _run_clients(_reserve_and_charge(personas, allowed))

    assert errors == []
    # 48 attempts of 0.10 against the agent's 1.00: exactly ten fit, no more went through.
    assert len(allowed) == 10
    assert _total(personas) == CAP
    assert not Hold.objects.filter(persona__in=personas, state=Hold.State.ACTIVE).exists()
    for persona in personas:
        assert list(find_drift(persona=persona)) == []
    assert CLIENTS == 24


@pytest.mark.django_db(transaction=True)
def test_24_clients_on_2_agents_never_overspend_the_platforms_daily_cap(
    make_persona: Callable[..., Any], data_dir: Path
) -> None:
    personas = [
        make_persona(agent, persona, budget_toml="")
        for agent in ("alpha", "beta")
        for persona in ("p0", "p1")
    ]
    (data_dir / "platform.toml").write_text("[platform.budget]\ndaily_usd = 1.0\n")
    allowed: list[int] = []

    errors = _run_clients(_reserve_and_charge(personas, allowed))

    assert errors == []
    assert len(allowed) == 10
    assert _total(personas) == CAP
    assert {p.agent_id for p in Persona.objects.filter(charges__isnull=False)} <= {
        "alpha",
        "beta",
    }


@pytest.mark.django_db(transaction=True)
def test_checks_building_missing_counters_race_charges_without_deadlock_or_drift(
    make_persona: Callable[..., Any], data_dir: Path
) -> None:
    """Half the clients check (no reserve) while the other half charge, on personas whose
    counters were dropped and one never charged. Each check of the agent names the
    personas lacking a counter and builds it (``scopes.fill_lacking``), in a transaction
    of its own, while charges of those personas hold their lock and create the same
    counters: nobody deadlocks, nothing is counted twice or lost."""
    from budgets.services.counters import invalidate

    personas = [make_persona("fleet", f"p{i}", budget_toml="") for i in range(3)]
    idle = make_persona("fleet", "idle", budget_toml="")
    (data_dir / "agents" / "fleet" / "agent.toml").write_text(
        "[agent.budget]\ndaily_usd = 100.0\nmonthly_tokens = 1000000\n"
    )
    for n, persona in enumerate(personas):
        budget_charge(
            persona=persona, surface="race", model="m", cost_nanos=COST, request_id=f"seed{n}"
        )
        invalidate(persona)
    answers: list[dict[str, Any]] = []

    def client(n: int) -> None:
        persona = Persona.objects.get(pk=personas[n % len(personas)].pk)
        for attempt in range(3):
            if n % 2:
                answers.append(budget_check(persona=persona, estimate_nanos=COST))
            else:
                budget_charge(
                    persona=persona,
                    surface="race",
                    model="m",
                    cost_nanos=COST,
                    request_id=f"c{n}-{attempt}",
                    input_tokens=10,
                    output_tokens=5,
                )

    assert _run_clients(client) == []
    assert len(answers) == 36
    assert all(a["allowed"] for a in answers)
    # 3 seed charges and 12 clients x 3 charges of 0.10 each.
    assert _total(personas) == 39 * COST
    for persona in [*personas, idle]:
        assert list(find_drift(persona=persona)) == []
    after = budget_check(persona=Persona.objects.get(pk=idle.pk), estimate_nanos=0)
    assert after["remaining_usd"] == {"daily": 100.0 - 3.9}
