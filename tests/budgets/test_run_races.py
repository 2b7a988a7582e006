"""Many threads in one run, each with its own connection: the run's USD budget holds.

Runs on whichever database the suite runs on (SQLite in CI's first pass, PostgreSQL in
the second), so the proof covers both locking schemes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import Sum

from budgets.events.models import Event
from budgets.models import Charge, Hold, Run, RunCheckpoint
from budgets.runs.services import RunBudget, run_create
from budgets.services import budget_charge, budget_check
from hal0.money import to_nanos
from personas.models import Persona
from tests.budgets.race_support import run_clients

CLIENTS = 24
COST = to_nanos(0.1)
BUDGET = to_nanos(1.0)


@pytest.fixture
def run(make_persona: Callable[..., Any]) -> Run:
    # The persona itself is uncapped: only the run's budget can stop these clients.
    persona: Persona = make_persona(persona_id="racer", budget_toml="")
    run_create(persona=persona, run_id="loop", budget=RunBudget(usd_nanos=BUDGET))
    return Run.objects.get(run_id="loop")


@pytest.mark.django_db(transaction=True)
def test_24_clients_reserving_in_one_run_never_exceed_its_budget(run: Run) -> None:
    allowed: list[int] = []
    refused: list[dict[str, Any]] = []

    def client(n: int) -> None:
        for attempt in range(2):
            persona = Persona.objects.get(pk=run.persona_id)
            result = budget_check(persona=persona, estimate_nanos=COST, reserve=True, run_id="loop")
            if not result["allowed"]:
                refused.append(result)
                continue
            allowed.append(n)
            budget_charge(
                persona=persona,
                surface="race",
                model="m",
                cost_nanos=COST,
                request_id=f"c{n}-{attempt}",
                hold_id=result["hold"]["id"],
                run_id="loop",
            )

    assert run_clients(CLIENTS, client) == []

    # 48 attempts of 0.10 against 1.00: exactly ten fit, and no more were let through.
    assert len(allowed) == 10
    charged = Charge.objects.filter(run=run).aggregate(total=Sum("cost_nanos"))["total"]
    assert charged == BUDGET
    run.refresh_from_db()
    assert (run.spent_nanos, run.charge_count) == (BUDGET, 10)
    assert run.state == Run.State.NEEDS_BUDGET
    assert len(refused) == 2 * CLIENTS - 10
    assert {(r["scope"], r["limit"]) for r in refused} == {("run", "run_usd")}
    # However many checks were refused at once, the run ran out exactly once.
    assert RunCheckpoint.objects.filter(run=run, kind="exhausted").count() == 1
    assert Event.objects.filter(type="run.exhausted").count() == 1
    assert not Hold.objects.filter(run=run, state=Hold.State.ACTIVE).exists()


@pytest.mark.django_db(transaction=True)
def test_24_read_only_checks_refused_at_once_exhaust_the_run_once(run: Run) -> None:
    Run.objects.filter(pk=run.pk).update(spent_nanos=BUDGET)

    def client(n: int) -> None:
        persona = Persona.objects.get(pk=run.persona_id)
        result = budget_check(persona=persona, estimate_nanos=COST, run_id="loop")
        assert result["allowed"] is False

    assert run_clients(CLIENTS, client) == []
    assert RunCheckpoint.objects.filter(run=run, kind="exhausted").count() == 1
    assert Event.objects.filter(type="run.exhausted").count() == 1
    assert Run.objects.get(pk=run.pk).state == Run.State.NEEDS_BUDGET


@pytest.mark.django_db(transaction=True)
def test_24_clients_reserving_tokens_in_one_run_never_exceed_its_token_budget(
    make_persona: Callable[..., Any],
) -> None:
    persona: Persona = make_persona(persona_id="racer", budget_toml="")
    run_create(persona=persona, run_id="tokens", budget=RunBudget(tokens=1000))
    allowed: list[int] = []

    def client(n: int) -> None:
        for attempt in range(2):
            me = Persona.objects.get(pk=persona.pk)
            result = budget_check(
                persona=me, estimate_nanos=0, estimate_tokens=100, reserve=True, run_id="tokens"
            )
            if not result["allowed"]:
                assert (result["scope"], result["limit"]) == ("run", "run_tokens")
                continue
            allowed.append(n)
            budget_charge(
                persona=me,
                surface="race",
                model="m",
                cost_nanos=0,
                request_id=f"t{n}-{attempt}",
                hold_id=result["hold"]["id"],
                input_tokens=60,
                output_tokens=40,
                run_id="tokens",
            )

    assert run_clients(CLIENTS, client) == []

    # 48 reservations of 100 tokens against 1,000: exactly ten fit (holds count).
    assert len(allowed) == 10
    run = Run.objects.get(run_id="tokens")
    assert run.spent_tokens == 1000
    assert RunCheckpoint.objects.filter(run=run, kind="exhausted").count() == 1
