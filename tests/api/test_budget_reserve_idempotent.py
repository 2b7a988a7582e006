"""Idempotent reserve (extension): a check with ``reserve`` and ``request_id`` takes one hold.

A client that lost the answer to its reserve retries the same body: it must get the same
hold back and leave no second hold on the budget. Another body under the same id is 409
``hold.conflict``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections
from rest_framework.test import APIClient

from budgets.models import Hold
from budgets.services import budget_check
from budgets.services.reserve import reserve_key
from personas.models import Persona

pytestmark = pytest.mark.django_db

URL = "/api/agents/hermes/personas/coder/budget"
BODY = {"estimated_cost_usd": 0.6, "reserve": True, "request_id": "req_1"}


@pytest.fixture
def coder(make_persona: Callable[..., Persona]) -> Persona:
    """hermes/coder with a hard daily cap of 1 USD."""
    return make_persona("hermes", "coder", "daily_usd = 1.0\n")


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def post(client: APIClient, body: Any, url: str = URL) -> Any:
    return client.post(f"{url}/check", body, format="json")


def test_the_same_reserve_again_answers_the_same_hold_and_takes_no_other(
    client: APIClient, coder: Persona
) -> None:
    first = post(client, BODY)
    again = post(client, BODY)

    assert first.status_code == again.status_code == 200
    assert first.json()["allowed"] is True
    # Byte for byte: the stored first answer, not a new evaluation.
    assert again.content == first.content
    assert Hold.objects.filter(persona=coder).count() == 1
    held = client.get(URL).json()["held_usd"]
    assert held == 0.6


def test_a_repeat_is_answered_even_when_its_own_hold_leaves_no_headroom(
    client: APIClient, coder: Persona
) -> None:
    # 0.6 held of a 1.0 cap: a fresh 0.6 would be refused, the repeat is not.
    first = post(client, BODY)
    fresh = post(client, {**BODY, "request_id": "req_2"})
    again = post(client, BODY)

    assert fresh.json()["allowed"] is False
    assert again.content == first.content
    assert Hold.objects.filter(persona=coder).count() == 1


def test_another_body_with_the_same_request_id_is_a_conflict(
    client: APIClient, coder: Persona
) -> None:
    first = post(client, BODY)
    other = post(client, {**BODY, "estimated_cost_usd": 0.1})

    assert other.status_code == 409
    error = other.json()["error"]
    assert error["code"] == "hold.conflict"
    assert error["details"] == {"request_id": "req_1", "hold_id": first.json()["hold"]["id"]}
    assert Hold.objects.filter(persona=coder).count() == 1


def test_a_refused_body_under_a_taken_request_id_is_a_conflict_too(
    client: APIClient, coder: Persona
) -> None:
    post(client, BODY)
    other = post(client, {**BODY, "estimated_cost_usd": 5})

    assert other.status_code == 409
    assert other.json()["error"]["code"] == "hold.conflict"


def test_the_same_amount_written_differently_is_the_same_body(
    client: APIClient, coder: Persona
) -> None:
    first = post(client, BODY)
    again = client.post(
        f"{URL}/check",
        b'{"request_id": "req_1", "reserve": true, "estimated_cost_usd": 0.60}',
        content_type="application/json",
    )
    assert again.content == first.content


def test_a_refused_reserve_takes_nothing_and_keeps_the_id_free(
    client: APIClient, coder: Persona
) -> None:
    refused = post(client, {**BODY, "estimated_cost_usd": 2})
    assert refused.json()["allowed"] is False
    assert not Hold.objects.filter(persona=coder).exists()

    allowed = post(client, BODY)
    assert allowed.json()["allowed"] is True
    assert Hold.objects.filter(persona=coder, request_id="req_1").count() == 1


def test_a_repeat_after_the_hold_was_settled_answers_the_first_answer(
    client: APIClient, coder: Persona
) -> None:
    first = post(client, BODY)
    hold_id = first.json()["hold"]["id"]
    # The client's guard charges under the same request_id as its reserve.
    charge = client.post(
        f"{URL}/charge",
        {"surface": "s", "model": "m", "cost_usd": 0.5, "request_id": "req_1", "hold_id": hold_id},
        format="json",
    )
    assert charge.json()["hold"]["settled"] is True

    again = post(client, BODY)
    assert again.content == first.content
    assert Hold.objects.get(pk=hold_id).state == Hold.State.SETTLED
    assert Hold.objects.filter(persona=coder).count() == 1


def test_request_ids_are_per_persona(
    client: APIClient, coder: Persona, make_persona: Callable[..., Persona]
) -> None:
    other = make_persona("hermes", "hermes", "daily_usd = 1.0\n")
    a = post(client, BODY)
    b = post(client, BODY, url="/api/agents/hermes/personas/hermes/budget")

    assert a.json()["hold"]["id"] != b.json()["hold"]["id"]
    assert Hold.objects.filter(persona__in=[coder, other]).count() == 2


def test_without_reserve_the_request_id_is_ignored(client: APIClient, coder: Persona) -> None:
    for _ in range(2):
        answer = post(client, {"estimated_cost_usd": 0.6, "request_id": "req_1"})
        assert answer.status_code == 200
        assert "hold" not in answer.json()
    assert not Hold.objects.exists()


def test_reserves_without_request_id_each_take_a_hold(client: APIClient, coder: Persona) -> None:
    body = {"estimated_cost_usd": 0.1, "reserve": True}
    ids = {post(client, body).json()["hold"]["id"] for _ in range(3)}
    assert len(ids) == 3
    assert set(Hold.objects.values_list("request_id", flat=True)) == {""}


@pytest.mark.parametrize("bad", ["", "   ", 12, True, ["req"], "r" * 201])
def test_a_request_id_that_is_not_a_short_string_is_invalid(
    client: APIClient, coder: Persona, bad: Any
) -> None:
    answer = post(client, {**BODY, "request_id": bad})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "budget.invalid_hold"
    assert answer.json()["error"]["details"] == {"key": "request_id"}
    assert not Hold.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_of_one_reserve_take_one_hold(coder: Persona) -> None:
    """Real threads, each with its own connection, all sending the same reserve at once."""
    clients = 8
    body = {"estimated_cost_usd": 0.2, "reserve": True, "request_id": "req_race"}
    key = reserve_key(body, "req_race")
    answers: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(clients)

    def worker() -> None:
        try:
            start.wait()
            persona = Persona.objects.get(pk=coder.pk)
            answers.append(
                budget_check(persona=persona, estimate_nanos=200_000_000, reserve=True, key=key)
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert len(answers) == clients
    assert len({a["hold"]["id"] for a in answers}) == 1
    assert Hold.objects.filter(persona=coder).count() == 1
