"""The most one persona's ledger can add up to: 9 billion USD.

Spend counters and sums are 64-bit integers of nano-USD (at most about 9.22 billion USD).
Each amount is at most a billion USD, but ten of them used to overflow: a 500 and a lost
charge on PostgreSQL, a float counter on SQLite, and every later read of that persona
failing. Past the limit a charge, a reservation or an imported line is refused instead,
with the envelope's 400 codes, and the persona keeps working.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from budgets.ledger import importer
from budgets.models import Charge, Hold
from budgets.services.counters import find_drift
from hal0.money import LEDGER_MAX_NANOS, NANOS_PER_USD
from personas.models import Persona

pytestmark = pytest.mark.django_db

URL = "/api/agents/hermes/personas/coder/budget"
BILLION = 1_000_000_000
# Nine charges of a billion USD reach the limit exactly.
FITTING = LEDGER_MAX_NANOS // (BILLION * NANOS_PER_USD)


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def uncapped(make_persona: Callable[..., Persona]) -> Persona:
    # No caps: nothing but the ledger limit stops an amount.
    return make_persona("hermes", "coder", "")


def charge(client: APIClient, request_id: str) -> Any:
    body = {"surface": "s", "model": "m", "cost_usd": BILLION, "request_id": request_id}
    return client.post(f"{URL}/charge", body, format="json")


def reserve(client: APIClient) -> Any:
    body = {"estimated_cost_usd": BILLION, "reserve": True}
    return client.post(f"{URL}/check", body, format="json")


def test_the_limit_is_nine_billion_usd_below_the_64_bit_counters() -> None:
    assert LEDGER_MAX_NANOS == 9 * BILLION * NANOS_PER_USD
    assert LEDGER_MAX_NANOS < 2**63 - 1
    assert FITTING == 9


def test_charges_up_to_the_limit_are_recorded_and_the_next_one_is_400(
    client: APIClient, uncapped: Persona
) -> None:
    for n in range(FITTING):
        assert charge(client, f"c{n}").status_code == 200

    response = charge(client, "one-too-many")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "budget.invalid_charge"
    assert error["details"] == {"key": "cost_usd"}
    assert "9000000000 USD" in error["message"]
    assert Charge.objects.filter(persona=uncapped).count() == FITTING
    # The persona still answers, with exact integer counters that match the charges.
    state = client.get(URL).json()
    assert state["spend"]["lifetime_usd"] == 9_000_000_000.0
    assert list(find_drift(persona=uncapped)) == []
    call_command("counters", "reconcile")  # raises on drift or on an overflowing sum


def test_a_retry_of_a_recorded_charge_at_the_limit_still_gets_its_first_answer(
    client: APIClient, uncapped: Persona
) -> None:
    answers = [charge(client, f"c{n}") for n in range(FITTING)]

    replay = charge(client, f"c{FITTING - 1}")

    assert replay.status_code == 200, replay.content
    assert replay.content == answers[-1].content
    assert Charge.objects.filter(persona=uncapped).count() == FITTING


def test_a_reservation_past_the_limit_is_400_and_takes_no_hold(
    client: APIClient, uncapped: Persona
) -> None:
    for _ in range(FITTING):
        response = reserve(client)
        assert response.status_code == 200, response.content
        assert "hold" in response.json()

    response = reserve(client)

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "budget.invalid_estimate"
    assert error["details"] == {"key": "estimated_cost_usd"}
    assert Hold.objects.filter(persona=uncapped).count() == FITTING
    # Reading the persona sums its holds: still a 200 with the exact amount.
    state = client.get(URL)
    assert state.status_code == 200, state.content
    assert state.json()["held_usd"] == 9_000_000_000.0
    # A plain check takes nothing and is still answered.
    check = client.post(f"{URL}/check", {"estimated_cost_usd": BILLION}, format="json")
    assert check.status_code == 200, check.content


def test_an_import_skips_the_lines_past_the_limit_as_malformed(
    uncapped: Persona, tmp_path: Path
) -> None:
    path = tmp_path / "spend.jsonl"
    lines = [
        f'{{"ts":"2025-03-01T12:00:0{n}Z","surface":"s","model":"m",'
        f'"cost_usd":{BILLION},"request_id":"r{n}"}}'
        for n in range(FITTING + 1)
    ]
    path.write_text("\n".join(lines) + "\n")

    result = importer.import_file(path, persona=uncapped)

    assert (result.imported, result.malformed) == (FITTING, 1)
    number, reason = result.problems[0]
    assert number == FITTING + 1
    assert "9000000000 USD" in reason
    assert list(find_drift(persona=uncapped)) == []
    # Importing again adds nothing and still refuses the last line.
    again = importer.import_file(path, persona=uncapped)
    assert (again.imported, again.skipped, again.malformed) == (0, FITTING, 1)
