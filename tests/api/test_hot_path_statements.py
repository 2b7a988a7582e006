"""The statements a check and a charge send to the database, in order.

Each one is a round trip on PostgreSQL (about 0.1-0.2 ms on a busy 2-core machine), so
the hot path keeps them few (docs/benchmarks.md). A statement added here should be a
conscious choice: these tests list them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from personas.models import Persona

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/agents/hermes/personas/coder/budget"


@pytest.fixture
def coder(make_persona: Callable[..., Persona]) -> Persona:
    return make_persona("hermes", "coder", "daily_usd = 10.0\nmonthly_usd = 20.0\n")


@pytest.fixture
def client(coder: Persona, agent_client: Callable[[str], APIClient]) -> APIClient:
    return agent_client("hermes")


def _kind(sql: str) -> str:
    """A statement by what it does: its verb, and the table it reads or writes first."""
    words = sql.replace('"', "").split()
    verb = words[0].upper()
    if verb in {"SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT"}:
        return verb
    table = next(
        (w for w in words if w.startswith(("budgets_", "personas_"))),
        "?",
    )
    return f"{verb} {table}"


def statements(call: Callable[[], Any]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code == 200, response.content
    # BEGIN/COMMIT are sent by the driver on PostgreSQL and by Django on SQLite; the
    # lists below are about the statements the code chooses to send.
    return [
        kind
        for kind in (_kind(q["sql"]) for q in captured.captured_queries)
        if kind not in {"BEGIN", "COMMIT"}
    ]


def charge(client: APIClient, request_id: str) -> Any:
    body = {"surface": "s", "model": "m", "cost_usd": 0.01, "request_id": request_id}
    return client.post(f"{URL}/charge", body, format="json")


def test_a_charge_uses_one_savepoint_for_its_idempotency_and_no_other(client: APIClient) -> None:
    charge(client, "warm-up")  # builds the window counters
    assert statements(lambda: charge(client, "r-1")) == [
        "SELECT budgets_apikey",
        "SELECT personas_persona",
        "SELECT personas_persona",  # the same row again, locked
        "SELECT budgets_spendcounter",
        "SAVEPOINT",
        "INSERT budgets_charge",
        "DELETE budgets_spendcounter",
        "UPDATE budgets_spendcounter",
        "UPDATE budgets_spendcounter",
        "UPDATE budgets_spendcounter",
        "RELEASE",
    ]


def test_a_replayed_charge_rolls_back_to_its_savepoint_and_answers_the_first_response(
    client: APIClient,
) -> None:
    first = charge(client, "r-1")
    kinds = statements(lambda: charge(client, "r-1"))
    assert kinds[:6] == [
        "SELECT budgets_apikey",
        "SELECT personas_persona",
        "SELECT personas_persona",
        "SELECT budgets_spendcounter",
        "SAVEPOINT",
        "INSERT budgets_charge",
    ]
    assert "ROLLBACK" in kinds
    assert charge(client, "r-1").content == first.content
