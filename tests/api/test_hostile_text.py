"""Hostile text and shapes in bodies and paths: NUL, control characters, lone surrogates,
deep nesting. Each is a 400 (or a 404 for a path) with the endpoint's code, the same on
SQLite and PostgreSQL, and nothing is written; a printable charge is always recorded.

Run on both databases (``DATABASE_URL=postgres://...``): PostgreSQL cannot store NUL in a
text column, which is why the rule (docs/api.md, "Text fields") refuses it everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from budgets.models import Charge, Hold
from personas.models import BudgetChange, Persona
from tests.api.test_budget_errors import URL, error_of, raw_post, raw_put

pytestmark = pytest.mark.django_db

CHARGE = {"surface": "openrouter", "model": "m", "cost_usd": 0.01, "request_id": "req-1"}
# JSON escapes, so the bytes on the wire are plain ASCII as a client would send them.
NUL = "\\u0000"
SURROGATE = "\\ud800"
UNPRINTABLE = [NUL, "\\u001b", "\\t", "\\n", "\\u007f", "\\u0085", SURROGATE, "\\udfff"]
TEXT_FIELDS = ["surface", "model", "request_id", "hold_id"]


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def coder(make_persona: Callable[..., Persona]) -> Persona:
    return make_persona("hermes", "coder", "daily_usd = 1.0\n")


def charge_body(field: str, escaped: str) -> bytes:
    """A charge whose ``field`` holds ``a<escaped>b``, written as raw JSON text."""
    parts = [f'"{k}": "{v}"' for k, v in CHARGE.items() if k != "cost_usd"]
    parts.append('"cost_usd": 0.01')
    parts = [p for p in parts if not p.startswith(f'"{field}"')]
    parts.append(f'"{field}": "a{escaped}b"')
    return ("{" + ", ".join(parts) + "}").encode()


@pytest.mark.parametrize("escaped", UNPRINTABLE)
@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_a_charge_string_with_a_control_character_or_a_lone_surrogate_is_refused(
    client: APIClient, coder: Persona, field: str, escaped: str
) -> None:
    response = raw_post(client, f"{URL}/charge", charge_body(field, escaped))

    error = error_of(response, 400, "budget.invalid_charge")
    assert error["details"] == {"key": field}
    assert "printable" in error["message"]
    assert not Charge.objects.exists()


def test_the_same_request_id_made_printable_is_recorded_afterwards(
    client: APIClient, coder: Persona
) -> None:
    refused = raw_post(client, f"{URL}/charge", charge_body("request_id", NUL))
    retried = client.post(f"{URL}/charge", {**CHARGE, "request_id": "ab"}, format="json")

    assert refused.status_code == 400
    assert retried.status_code == 200, retried.content
    assert list(Charge.objects.values_list("request_id", flat=True)) == ["ab"]


def test_printable_unicode_is_recorded_as_sent(client: APIClient, coder: Persona) -> None:
    body = {**CHARGE, "model": "modèle-ß/日本語 🚀", "request_id": "req\u00a0é"}

    response = client.post(f"{URL}/charge", body, format="json")

    assert response.status_code == 200, response.content
    row = Charge.objects.get()
    assert (row.model, row.request_id) == (body["model"], body["request_id"])


@pytest.mark.parametrize("escaped", ["%00", "h%00x", "%1b", "%7f", "%c2%85", "%ed%a0%80"])
def test_a_release_url_with_an_unprintable_hold_id_is_hold_not_found(
    client: APIClient, coder: Persona, escaped: str
) -> None:
    hold = client.post(
        f"{URL}/check", {"estimated_cost_usd": 0.1, "reserve": True}, format="json"
    ).json()["hold"]["id"]

    response = client.post(f"{URL}/holds/{escaped}/release")

    error_of(response, 404, "hold.not_found")
    assert Hold.objects.get(pk=hold).state == Hold.State.ACTIVE


def test_a_lone_surrogate_in_an_unknown_put_key_is_budget_invalid_and_echoed_escaped(
    client: APIClient, coder: Persona
) -> None:
    response = raw_put(client, URL, b'{"\\ud800": 1}')

    error = error_of(response, 400, "budget.invalid")
    assert error["details"] == {"key": "\\ud800"}
    assert not BudgetChange.objects.exists()


@pytest.mark.parametrize("escaped", [NUL, SURROGATE, "\\u001b"])
def test_an_unprintable_timezone_is_budget_invalid(
    client: APIClient, coder: Persona, escaped: str
) -> None:
    response = raw_put(client, URL, f'{{"timezone": "Europe/Berlin{escaped}"}}'.encode())

    error_of(response, 400, "budget.invalid")
    assert not BudgetChange.objects.exists()


@pytest.mark.parametrize("escaped", [NUL, SURROGATE])
def test_unknown_keys_of_a_check_may_hold_anything(
    client: APIClient, coder: Persona, escaped: str
) -> None:
    body = f'{{"estimated_cost_usd": 0.1, "note{escaped}": "x{escaped}"}}'.encode()

    response = raw_post(client, f"{URL}/check", body)

    assert response.status_code == 200, response.content


# --- deep nesting -------------------------------------------------------------------------

DEEP: list[tuple[str, Callable[[int], bytes]]] = [
    ("array", lambda n: b"[" * n + b"]" * n),
    ("object", lambda n: b'{"":' * n + b"1" + b"}" * n),
    ("in a key", lambda n: b'{"estimated_cost_usd": 0.1, "x": ' + b"[" * n + b"]" * n + b"}"),
    ("unclosed", lambda n: b"[" * n),
]


# All under the 64 KiB body limit, as in the report: 10,000 levels is 50 KiB of objects.
@pytest.mark.parametrize("depth", [33, 900, 6_000, 10_000])
@pytest.mark.parametrize(("shape", "make"), DEEP, ids=[d[0] for d in DEEP])
@pytest.mark.parametrize("method", ["check", "charge", "put"])
def test_deeply_nested_json_is_budget_invalid_body(
    client: APIClient, coder: Persona, method: str, shape: str, make: Any, depth: int
) -> None:
    body = make(depth)
    if method == "put":
        response = raw_put(client, URL, body)
    else:
        response = raw_post(client, f"{URL}/{method}", body)

    error = error_of(response, 400, "budget.invalid_body")
    assert "nests deeper than 32 levels" in error["message"]


def test_brackets_inside_strings_do_not_count_as_nesting(client: APIClient, coder: Persona) -> None:
    tricky = "[{" * 500 + '\\"' + "]}" * 10 + "\\\\"
    body = {**CHARGE, "model": tricky[:200]}

    response = client.post(f"{URL}/charge", body, format="json")

    assert response.status_code == 200, response.content
    assert Charge.objects.get().model == tricky[:200]


def test_a_body_nested_32_deep_is_parsed(client: APIClient, coder: Persona) -> None:
    body = b'{"estimated_cost_usd": 0.1, "x": ' + b"[" * 31 + b"]" * 31 + b"}"

    response = raw_post(client, f"{URL}/check", body)

    assert response.status_code == 200, response.content


@pytest.mark.parametrize("escaped", [NUL, SURROGATE, "\\u001b"])
def test_an_unprintable_request_id_of_a_reserving_check_is_budget_invalid_hold(
    client: APIClient, coder: Persona, escaped: str
) -> None:
    body = f'{{"estimated_cost_usd": 0.1, "reserve": true, "request_id": "r{escaped}"}}'

    response = raw_post(client, f"{URL}/check", body.encode())

    error = error_of(response, 400, "budget.invalid_hold")
    assert error["details"] == {"key": "request_id"}
    assert not Hold.objects.exists()
