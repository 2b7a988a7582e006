"""The request schemas say exactly what the service accepts: each limit the schema states
is checked against a real request on both sides of it.

Schemathesis (test_schemathesis.py) then holds the service to the schema at random; these
tests pin the limits that a random run might not reach.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient

from personas.models import Persona

pytestmark = pytest.mark.django_db

URL = "/api/agents/hermes/personas/coder/budget"
CHARGE = {"surface": "openrouter", "model": "m", "cost_usd": 0.01, "request_id": "req-1"}
CHECK = {"estimated_cost_usd": 0.01}
_ids = itertools.count()


@pytest.fixture
def schema(client: Client) -> dict[str, Any]:
    data: dict[str, Any] = client.get("/api/schema/", {"format": "json"}).json()
    return data


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def coder(make_persona: Callable[..., Persona]) -> Persona:
    return make_persona("hermes", "coder", "")


def prop(schema: dict[str, Any], component: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["components"]["schemas"][component]["properties"][name]
    return found


MONEY = [
    ("CheckRequest", "estimated_cost_usd"),
    ("ChargeRequest", "cost_usd"),
    *[
        ("BudgetPutRequest", key)
        for key in ("daily_usd", "monthly_usd", "lifetime_usd", "per_call_max_usd")
    ],
]
TEXT = [
    ("ChargeRequest", "surface"),
    ("ChargeRequest", "model"),
    ("ChargeRequest", "request_id"),
    ("ChargeRequest", "hold_id"),
    ("CheckRequest", "request_id"),
]
NULLABLE = [
    ("ChargeRequest", "hold_id"),
    ("ChargeRequest", "input_tokens"),
    ("ChargeRequest", "output_tokens"),
    ("CheckRequest", "hold_ttl_s"),
    ("CheckRequest", "request_id"),
    *[
        ("BudgetPutRequest", key)
        for key in ("daily_usd", "monthly_usd", "lifetime_usd", "per_call_max_usd")
    ],
    ("BudgetPutRequest", "warn_at"),
    ("BudgetPutRequest", "timezone"),
]


def send(api: APIClient, component: str, name: str, value: Any) -> Any:
    """A request that is valid except, perhaps, for ``name``."""
    if component == "CheckRequest":
        body = {**CHECK, "reserve": name == "request_id", name: value}
        return api.post(f"{URL}/check", body, format="json")
    if component == "ChargeRequest":
        fresh = {**CHARGE, "request_id": f"req-{next(_ids)}"}
        return api.post(f"{URL}/charge", {**fresh, name: value}, format="json")
    return api.put(URL, {name: value}, format="json")


@pytest.mark.parametrize(("component", "name"), MONEY)
def test_money_is_0_to_1e9_in_the_schema_and_in_the_service(
    schema: dict[str, Any], api: APIClient, coder: Persona, component: str, name: str
) -> None:
    field = prop(schema, component, name)

    assert (field["minimum"], field["maximum"]) == (0, 1e9)
    assert send(api, component, name, 1e9).status_code == 200
    assert send(api, component, name, 1000000000.000001).status_code == 400
    assert send(api, component, name, -0.000001).status_code == 400


@pytest.mark.parametrize(("component", "name"), TEXT)
def test_text_is_1_to_200_printable_characters_in_the_schema_and_in_the_service(
    schema: dict[str, Any], api: APIClient, coder: Persona, component: str, name: str
) -> None:
    field = prop(schema, component, name)
    pattern = re.compile(field["pattern"])
    samples = {
        "x" * 200: True,
        "x" * 201: False,
        "": False,
        "   ": False,
        "a\u00a0b": True,
        "modèle 日本 🚀": True,
        "a\x00b": False,
        "a\tb": False,
        "a\x85b": False,
    }

    assert (field["minLength"], field["maxLength"]) == (1, 200)
    for value, accepted in samples.items():
        in_schema = len(value) <= 200 and pattern.fullmatch(value) is not None
        status = send(api, component, name, value).status_code
        assert in_schema is accepted, value
        assert (status == 200) is accepted, (value, status)


@pytest.mark.parametrize(("component", "name"), NULLABLE)
def test_null_is_accepted_where_the_schema_says_nullable(
    schema: dict[str, Any], api: APIClient, coder: Persona, component: str, name: str
) -> None:
    assert prop(schema, component, name)["nullable"] is True
    assert send(api, component, name, None).status_code == 200


def test_warn_at_is_above_0_and_at_most_1(
    schema: dict[str, Any], api: APIClient, coder: Persona
) -> None:
    field = prop(schema, "BudgetPutRequest", "warn_at")

    assert (field["minimum"], field["exclusiveMinimum"], field["maximum"]) == (0, True, 1)
    assert send(api, "BudgetPutRequest", "warn_at", 0).status_code == 400
    assert send(api, "BudgetPutRequest", "warn_at", 0.0001).status_code == 200
    assert send(api, "BudgetPutRequest", "warn_at", 1).status_code == 200
    assert send(api, "BudgetPutRequest", "warn_at", 1.0001).status_code == 400


def test_timezone_is_never_empty(schema: dict[str, Any], api: APIClient, coder: Persona) -> None:
    field = prop(schema, "BudgetPutRequest", "timezone")

    assert (field["minLength"], field["maxLength"]) == (1, 64)
    assert send(api, "BudgetPutRequest", "timezone", "").status_code == 400


def test_counts_and_ttls_state_their_ranges(
    schema: dict[str, Any], api: APIClient, coder: Persona
) -> None:
    top = settings.HAL0_HOLD_TTL_MAX_S
    ttl = prop(schema, "CheckRequest", "hold_ttl_s")
    tokens = prop(schema, "ChargeRequest", "input_tokens")

    assert (ttl["minimum"], ttl["maximum"]) == (1, top)
    assert (tokens["minimum"], tokens["maximum"]) == (0, 2**31 - 1)
    assert send(api, "CheckRequest", "hold_ttl_s", top).status_code == 200
    assert send(api, "CheckRequest", "hold_ttl_s", top + 1).status_code == 400
    assert send(api, "ChargeRequest", "input_tokens", 2**31 - 1).status_code == 200
    assert send(api, "ChargeRequest", "input_tokens", 2**31).status_code == 400
