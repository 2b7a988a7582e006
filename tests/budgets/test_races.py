"""Concurrent clients against one hard-capped persona, with real threads and connections.

Runs on whichever database the suite runs on (SQLite file in CI's first pass,
PostgreSQL in the second), so the proof covers both locking schemes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import Sum

from budgets.models import Charge, Hold
from budgets.services import budget_charge, budget_check, budget_state
from budgets.services.counters import find_drift
from hal0.money import to_nanos, usd_number
from personas.models import Persona
from tests.budgets.race_support import run_clients

CLIENTS = 24
COST = to_nanos(0.1)
CAP = to_nanos(1.0)


def _run_clients(target: Callable[[int], None]) -> list[BaseException]:
    return run_clients(CLIENTS, target)


def _charged(persona: Persona) -> int:
    return int(Charge.objects.filter(persona=persona).aggregate(t=Sum("cost_nanos"))["t"] or 0)


@pytest.fixture
def capped(make_persona: Callable[..., Any]) -> Persona:
    persona: Persona = make_persona(persona_id="racer", budget_toml="daily_usd = 1.0\n")
    return persona


@pytest.mark.django_db(transaction=True)
def test_with_holds_24_clients_never_overspend_a_hard_cap(capped: Persona) -> None:
    allowed: list[int] = []

    def client(n: int) -> None:
        for attempt in range(2):
            persona = Persona.objects.get(pk=capped.pk)
            result = budget_check(persona=persona, estimate_nanos=COST, reserve=True)
            if not result["allowed"]:
                continue
            allowed.append(n)
            budget_charge(
                persona=persona,
                surface="race",
                model="m",
                cost_nanos=COST,
                request_id=f"c{n}-{attempt}",
                hold_id=result["hold"]["id"],
            )

    errors = _run_clients(client)

    assert errors == []
    # 48 attempts of 0.10 against 1.00: exactly ten fit, and no more were let through.
    assert len(allowed) == 10
    assert _charged(capped) == CAP
    assert not Hold.objects.filter(persona=capped, state=Hold.State.ACTIVE).exists()
    assert list(find_drift(persona=capped)) == []


@pytest.mark.django_db(transaction=True)
def test_with_holds_overspend_is_bounded_by_costs_above_estimates(capped: Persona) -> None:
    """Holds reserve the estimate; only actual cost above it can push past the cap."""
    overrun = to_nanos(0.02)

    def client(n: int) -> None:
        persona = Persona.objects.get(pk=capped.pk)
        result = budget_check(persona=persona, estimate_nanos=COST, reserve=True)
        if result["allowed"]:
            budget_charge(
                persona=persona,
                surface="race",
                model="m",
                cost_nanos=COST + overrun,
                request_id=f"c{n}",
                hold_id=result["hold"]["id"],
            )

    assert _run_clients(client) == []

    charges = Charge.objects.filter(persona=capped).count()
    assert charges >= 1
    assert _charged(capped) <= CAP + charges * overrun


@pytest.mark.django_db(transaction=True)
def test_without_holds_the_check_then_charge_race_is_the_only_slack(capped: Persona) -> None:
    """Without holds every client may pass its check before any charge lands: the
    overspend is at most one call per other concurrent client, never unbounded."""

    def client(n: int) -> None:
        persona = Persona.objects.get(pk=capped.pk)
        if budget_check(persona=persona, estimate_nanos=COST)["allowed"]:
            budget_charge(
                persona=persona, surface="race", model="m", cost_nanos=COST, request_id=f"c{n}"
            )

    assert _run_clients(client) == []

    assert CAP <= _charged(capped) <= CAP + (CLIENTS - 1) * COST
    assert list(find_drift(persona=capped)) == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_of_one_request_id_record_one_charge(capped: Persona) -> None:
    answers: list[dict[str, Any]] = []

    def client(n: int) -> None:
        persona = Persona.objects.get(pk=capped.pk)
        answers.append(
            budget_charge(
                persona=persona, surface="s", model="m", cost_nanos=COST, request_id="same"
            )
        )

    assert _run_clients(client) == []

    assert Charge.objects.filter(persona=capped).count() == 1
    assert len(answers) == CLIENTS
    assert all(answer == answers[0] for answer in answers)
    assert _charged(capped) == COST


@pytest.mark.django_db(transaction=True)
def test_a_hold_is_settled_by_exactly_one_of_many_racing_charges_and_all_are_recorded(
    capped: Persona,
) -> None:
    hold = budget_check(persona=capped, estimate_nanos=COST, reserve=True)["hold"]
    costs = [COST + n for n in range(CLIENTS)]  # all different, so the sum proves each one
    outcomes: dict[str, dict[str, Any]] = {}

    def client(n: int) -> None:
        persona = Persona.objects.get(pk=capped.pk)
        answer = budget_charge(
            persona=persona,
            surface="s",
            model="m",
            cost_nanos=costs[n],
            request_id=f"c{n}",
            hold_id=hold["id"],
        )
        outcomes[f"c{n}"] = answer["hold"]

    assert _run_clients(client) == []

    # Every charge is recorded (the money was spent); the hold resolves once.
    assert len(outcomes) == CLIENTS
    settled_by = [rid for rid, out in outcomes.items() if out["settled"]]
    assert len(settled_by) == 1
    assert all(out["state"] == "settled" for out in outcomes.values())
    assert all(out["id"] == hold["id"] for out in outcomes.values())
    assert Charge.objects.filter(persona=capped).count() == CLIENTS
    assert _charged(capped) == sum(costs)
    linked = Charge.objects.filter(persona=capped, hold__isnull=False)
    assert list(linked.values_list("request_id", flat=True)) == settled_by
    assert Hold.objects.get(pk=hold["id"]).state == Hold.State.SETTLED
    assert budget_state(persona=capped)["spend"]["lifetime_usd"] == usd_number(sum(costs))
    assert budget_state(persona=capped)["held_usd"] == 0.0
    assert list(find_drift(persona=capped)) == []
