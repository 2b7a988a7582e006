"""Pricing over HTTP: check with tokens, charge with usage, GET /api/prices.

Real files (prices.toml in the test's data folder), the real bundled catalogue, the
real database (SQLite, or PostgreSQL when DATABASE_URL points at it).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from decimal import ROUND_CEILING
from pathlib import Path
from typing import Any

import genai_prices
import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from budgets.ledger import mirror
from budgets.models import Charge
from personas.models import Persona

pytestmark = pytest.mark.django_db

URL = "/api/agents/hermes/personas/coder/budget"
LOCAL = """
[[price]]
model = "llama-3.3-70b"
surface = "local"
input_per_mtok_usd = 0
output_per_mtok_usd = 0
"""
GPT_OVERRIDE = """
[[price]]
model = "gpt-4o"
surface = "azure"
input_per_mtok_usd = 1
output_per_mtok_usd = 4
"""

Committing = Callable[..., AbstractContextManager[Any]]


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def coder(make_persona: Callable[..., Persona]) -> Persona:
    return make_persona("hermes", "coder", "daily_usd = 10.0\n")


@pytest.fixture
def prices_toml(data_dir: Path) -> Callable[[str], None]:
    def write(text: str) -> None:
        (data_dir / "prices.toml").write_text(text)

    return write


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


def check(client: APIClient, **body: Any) -> Any:
    return client.post(f"{URL}/check", body, format="json")


def charge(client: APIClient, **body: Any) -> Any:
    body.setdefault("surface", "openai")
    body.setdefault("model", "gpt-4o")
    body.setdefault("request_id", "req_1")
    return client.post(f"{URL}/charge", body, format="json")


def genai_usd(model: str, provider: str, **usage: int) -> float:
    """genai-prices' own price, rounded up at the nano-USD, as the JSON number we answer."""
    calc = genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id=provider)
    nanos = (calc.total_price * 10**9).to_integral_value(rounding=ROUND_CEILING)
    return float(nanos / 10**9)


# --- GET /api/prices ---------------------------------------------------------------------


def test_get_prices_answers_the_catalogue_price_with_its_version(client: APIClient) -> None:
    body = ok(client.get("/api/prices", {"model": "gpt-4o", "surface": "openai"}))

    assert body == {
        "model": "gpt-4o",
        "surface": "openai",
        "input_per_mtok_usd": 2.5,
        "output_per_mtok_usd": 10.0,
        "cache_read_per_mtok_usd": 1.25,
        "cache_write_per_mtok_usd": None,
        "source": "catalogue",
        "catalogue_version": f"genai-prices {genai_prices.__version__}",
        "catalogue_provider": "openai",
        "catalogue_model": "gpt-4o",
    }


def test_get_prices_shows_the_override_not_the_catalogue(
    client: APIClient, prices_toml: Callable[[str], None]
) -> None:
    prices_toml(GPT_OVERRIDE)

    azure = ok(client.get("/api/prices", {"model": "gpt-4o", "surface": "azure"}))
    openai = ok(client.get("/api/prices", {"model": "gpt-4o", "surface": "openai"}))

    assert (azure["source"], azure["input_per_mtok_usd"], azure["output_per_mtok_usd"]) == (
        "override",
        1.0,
        4.0,
    )
    assert "catalogue_provider" not in azure
    assert (openai["source"], openai["output_per_mtok_usd"]) == ("catalogue", 10.0)


def test_get_prices_shows_the_catalogue_tiers(client: APIClient) -> None:
    body = ok(client.get("/api/prices", {"model": "gemini-2.5-pro", "surface": "google"}))

    assert body["tiers"]["input"] == [{"above_input_tokens": 200_000, "per_mtok_usd": 2.5}]


def test_get_prices_of_an_unknown_model_is_404_price_unknown(client: APIClient) -> None:
    error = error_of(client.get("/api/prices", {"model": "my-model", "surface": "local"}), 404)

    assert error["code"] == "price.unknown"
    assert error["details"] == {"model": "my-model", "surface": "local"}
    assert "prices.toml" in error["message"]


def test_get_prices_without_a_model_is_400(client: APIClient) -> None:
    error = error_of(client.get("/api/prices"), 400)

    assert error["code"] == "request.invalid"
    assert error["details"] == {"key": "model"}


def test_an_agent_key_may_read_prices(
    settings: Any, agent: Any, agent_client: Callable[[str], APIClient]
) -> None:
    settings.HAL0_REQUIRE_API_KEY = True

    assert ok(agent_client("hermes").get("/api/prices", {"model": "gpt-4o"}))["source"]
    assert APIClient().get("/api/prices", {"model": "gpt-4o"}).status_code == 401


# --- check with tokens ---------------------------------------------------------------------


def test_a_check_with_tokens_estimates_the_worst_case_from_the_catalogue(
    client: APIClient, coder: Persona
) -> None:
    body = ok(
        check(client, model="gpt-4o", surface="openai", input_tokens=1200, max_output_tokens=800)
    )

    # 1,200 input at $2.50 and 800 output at $10 per million.
    assert body["estimate"] == {"usd": 0.011, "source": "catalogue"}
    assert body["allowed"] is True
    assert body["remaining_usd"] == {"daily": 10.0}


def test_the_worst_case_takes_the_dearest_input_rate(client: APIClient, coder: Persona) -> None:
    body = ok(
        check(
            client,
            model="claude-3-7-sonnet-latest",
            surface="anthropic",
            input_tokens=10_000,
            max_output_tokens=1_000,
        )
    )

    # Cache writes ($3.75) cost more than plain input ($3): every input token may be one.
    assert body["estimate"] == {"usd": 0.0525, "source": "catalogue"}


def test_a_check_with_tokens_uses_the_override(
    client: APIClient, coder: Persona, prices_toml: Callable[[str], None]
) -> None:
    prices_toml(GPT_OVERRIDE)

    body = ok(
        check(client, model="gpt-4o", surface="azure", input_tokens=1_000_000, max_output_tokens=0)
    )

    assert body["estimate"] == {"usd": 1.0, "source": "override"}


def test_a_clients_estimate_wins_over_the_tokens(client: APIClient, coder: Persona) -> None:
    body = ok(
        check(
            client,
            estimated_cost_usd=0.5,
            model="gpt-4o",
            surface="openai",
            input_tokens=1200,
            max_output_tokens=800,
        )
    )

    assert body["estimate"] == {"usd": 0.5, "source": "client"}


def test_a_clients_estimate_wins_over_a_model_nobody_prices(
    client: APIClient, coder: Persona
) -> None:
    body = ok(check(client, estimated_cost_usd=0.5, model="no-such-model", surface="local"))

    assert body["estimate"] == {"usd": 0.5, "source": "client"}


def test_a_priced_check_is_refused_by_the_caps_like_any_other(
    client: APIClient, make_persona: Callable[..., Persona]
) -> None:
    make_persona("hermes", "coder", "per_call_max_usd = 0.01\n")

    body = ok(
        check(client, model="gpt-4o", surface="openai", input_tokens=1200, max_output_tokens=800)
    )

    assert body["allowed"] is False
    assert body["limit"] == "per_call"
    assert body["reason"] == "estimate 0.011 USD exceeds the per-call cap of 0.01 USD"


def test_a_check_for_a_model_nobody_prices_is_400_price_unknown_saying_how_to_fix_it(
    client: APIClient, coder: Persona
) -> None:
    response = check(
        client, model="my-finetune", surface="local", input_tokens=10, max_output_tokens=10
    )

    error = error_of(response, 400)
    assert error["code"] == "price.unknown"
    assert error["details"] == {"model": "my-finetune", "surface": "local"}
    assert "'my-finetune' on surface 'local'" in error["message"]
    assert "send estimated_cost_usd" in error["message"]
    assert "prices.toml" in error["message"]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"model": "gpt-4o", "max_output_tokens": 10}, "input_tokens"),
        ({"model": "gpt-4o", "input_tokens": 10}, "max_output_tokens"),
        ({"model": "gpt-4o", "input_tokens": -1, "max_output_tokens": 1}, "input_tokens"),
        ({"model": "gpt-4o", "input_tokens": 1.5, "max_output_tokens": 1}, "input_tokens"),
        ({"model": "gpt-4o", "input_tokens": True, "max_output_tokens": 1}, "input_tokens"),
        ({"model": "gpt-4o", "input_tokens": 1, "max_output_tokens": 2**31}, "max_output_tokens"),
        ({"model": "", "input_tokens": 1, "max_output_tokens": 1}, "model"),
        ({"model": 5, "input_tokens": 1, "max_output_tokens": 1}, "model"),
        (
            {"model": "gpt-4o", "surface": "", "input_tokens": 1, "max_output_tokens": 1},
            "surface",
        ),
        ({"input_tokens": 1, "max_output_tokens": 1}, "estimated_cost_usd"),
        # Beside an estimate (which wins over a price), a malformed model or surface is
        # still refused rather than ignored.
        ({"estimated_cost_usd": 0.01, "model": {}}, "model"),
        ({"estimated_cost_usd": 0.01, "model": 5}, "model"),
        ({"estimated_cost_usd": 0.01, "model": None}, "model"),
        ({"estimated_cost_usd": 0.01, "model": " "}, "model"),
        ({"estimated_cost_usd": 0.01, "model": "gpt\u0000"}, "model"),
        ({"estimated_cost_usd": 0.01, "model": "m" * 201}, "model"),
        ({"estimated_cost_usd": 0.01, "model": "gpt-4o", "surface": []}, "surface"),
        ({"estimated_cost_usd": 0.01, "surface": 7}, "surface"),
    ],
)
def test_a_check_with_bad_tokens_is_400_budget_invalid_estimate_naming_the_key(
    client: APIClient, coder: Persona, body: dict[str, Any], key: str
) -> None:
    error = error_of(client.post(f"{URL}/check", body, format="json"), 400)

    assert error["code"] == "budget.invalid_estimate"
    assert error["details"] == {"key": key}


# --- charge with usage ---------------------------------------------------------------------


def test_a_charge_with_tokens_only_is_priced_and_recorded(
    client: APIClient, coder: Persona
) -> None:
    body = ok(charge(client, input_tokens=1200, output_tokens=345))

    expected = genai_usd("gpt-4o", "openai", input_tokens=1200, output_tokens=345)
    assert body["row"]["cost_usd"] == expected == 0.00645
    assert body["row"]["cost_source"] == "catalogue"
    assert body["spend"]["today_usd"] == expected
    row = Charge.objects.get(request_id="req_1")
    assert row.cost_nanos == 6_450_000
    assert row.cost_source == "catalogue"
    assert row.price_version == f"genai-prices {genai_prices.__version__}"


def test_cache_tokens_are_priced_at_their_own_rates_and_stored(
    client: APIClient, coder: Persona
) -> None:
    usage = {
        "input_tokens": 20_000,
        "output_tokens": 1_000,
        "cache_read_tokens": 12_000,
        "cache_write_tokens": 4_000,
    }

    body = ok(charge(client, surface="anthropic", model="claude-3-7-sonnet-latest", **usage))

    # 4,000 plain at $3, 12,000 read at $0.30, 4,000 written at $3.75, 1,000 out at $15.
    assert body["row"]["cost_usd"] == genai_usd("claude-3-7-sonnet-latest", "anthropic", **usage)
    assert body["row"]["cost_usd"] == 0.0456
    row = Charge.objects.get(request_id="req_1")
    assert (row.cache_read_tokens, row.cache_write_tokens) == (12_000, 4_000)


def test_more_cache_tokens_than_input_tokens_is_400_budget_invalid_charge(
    client: APIClient, coder: Persona
) -> None:
    response = charge(client, input_tokens=10, output_tokens=1, cache_read_tokens=11)

    assert error_of(response, 400)["code"] == "budget.invalid_charge"
    assert not Charge.objects.exists()


def test_a_reported_cost_always_wins(client: APIClient, coder: Persona) -> None:
    body = ok(charge(client, cost_usd=0.0421, input_tokens=1200, output_tokens=345))

    assert body["row"]["cost_usd"] == 0.0421
    assert body["row"]["cost_source"] == "reported"
    assert Charge.objects.get(request_id="req_1").price_version == ""


def test_an_override_beats_the_catalogue_and_an_override_of_zero_is_free_not_unpriced(
    client: APIClient, coder: Persona, prices_toml: Callable[[str], None]
) -> None:
    prices_toml(LOCAL + GPT_OVERRIDE)

    local = ok(
        charge(
            client,
            surface="local",
            model="llama-3.3-70b",
            input_tokens=50_000,
            output_tokens=9_000,
        )
    )
    azure = ok(
        charge(client, surface="azure", request_id="req_2", input_tokens=1_000, output_tokens=500)
    )

    assert (local["row"]["cost_usd"], local["row"]["cost_source"]) == (0.0, "override")
    assert (azure["row"]["cost_usd"], azure["row"]["cost_source"]) == (0.003, "override")
    assert azure["spend"]["today_usd"] == 0.003
    # A price of zero is a price: nothing unpriced.
    assert azure["unpriced_charges"] == {"today": 0, "month": 0, "lifetime": 0}


def test_a_charge_for_a_model_nobody_prices_is_recorded_unpriced_and_counted(
    client: APIClient, coder: Persona
) -> None:
    body = ok(
        charge(client, surface="local", model="my-finetune", input_tokens=500, output_tokens=80)
    )

    assert body["recorded"] is True
    assert body["row"]["cost_usd"] is None
    assert body["row"]["cost_source"] == "unpriced"
    # Spend is what is known: the unknown cost is not $0.00, it is counted apart.
    assert body["spend"]["today_usd"] == 0.0
    assert body["unpriced_charges"] == {"today": 1, "month": 1, "lifetime": 1}
    state = ok(client.get(URL))
    assert state["unpriced_charges"] == {"today": 1, "month": 1, "lifetime": 1}
    row = Charge.objects.get(request_id="req_1")
    assert (row.cost_nanos, row.cost_source, row.input_tokens) == (None, "unpriced", 500)


def test_a_charge_with_neither_cost_nor_tokens_stays_400_budget_invalid_charge(
    client: APIClient, coder: Persona
) -> None:
    error = error_of(charge(client), 400)

    assert error["code"] == "budget.invalid_charge"
    assert error["details"] == {"key": "cost_usd"}


def test_a_replay_of_a_priced_charge_answers_the_same_even_after_a_price_edit(
    client: APIClient, coder: Persona, prices_toml: Callable[[str], None]
) -> None:
    first = charge(client, surface="azure", input_tokens=1_000, output_tokens=500)
    prices_toml(GPT_OVERRIDE)

    again = charge(client, surface="azure", input_tokens=1_000, output_tokens=500)

    assert again.status_code == 200
    assert again.content == first.content
    assert Charge.objects.count() == 1


def test_the_same_request_id_with_other_tokens_is_409(client: APIClient, coder: Persona) -> None:
    ok(charge(client, input_tokens=1_000, output_tokens=500))

    response = charge(client, input_tokens=1_000, output_tokens=501)

    assert error_of(response, 409)["code"] == "charge.conflict"


def test_a_malformed_prices_toml_keeps_the_last_good_overrides(
    client: APIClient, coder: Persona, prices_toml: Callable[[str], None]
) -> None:
    prices_toml(GPT_OVERRIDE)
    ok(charge(client, surface="azure", input_tokens=1_000, output_tokens=500))

    prices_toml(GPT_OVERRIDE.replace("output_per_mtok_usd = 4", "output_per_mtok_usd = -4"))
    body = ok(
        charge(client, surface="azure", request_id="req_2", input_tokens=1_000, output_tokens=500)
    )

    assert (body["row"]["cost_usd"], body["row"]["cost_source"]) == (0.003, "override")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 error"):
        call_command("prices", "check", stdout=out, stderr=out)
    assert "price #1: 'output_per_mtok_usd' must be a finite number >= 0" in out.getvalue()


# --- mirror and ledger -----------------------------------------------------------------


def test_the_mirror_line_carries_the_tokens_and_where_the_cost_came_from(
    client: APIClient,
    coder: Persona,
    django_capture_on_commit_callbacks: Committing,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        charge(
            client,
            surface="anthropic",
            model="claude-3-7-sonnet-latest",
            input_tokens=2_000,
            output_tokens=100,
            cache_read_tokens=1_500,
        )
        charge(client, request_id="req_2", cost_usd=0.01)
        charge(client, request_id="req_3", surface="local", model="x", output_tokens=5)

    path = mirror.mirror_path("hermes", "coder")
    lines = [json.loads(raw) for raw in path.read_bytes().splitlines()]
    priced, reported, unpriced = lines
    assert priced["cost_source"] == "catalogue"
    assert (priced["input_tokens"], priced["cache_read_tokens"]) == (2_000, 1_500)
    assert priced["price_version"] == f"genai-prices {genai_prices.__version__}"
    # A reported cost reads as it always did: no cost_source key.
    assert "cost_source" not in reported
    assert (unpriced["cost_usd"], unpriced["cost_source"]) == (None, "unpriced")
    out = io.StringIO()
    call_command("ledger", "verify", stdout=out)
    assert "all in step" in out.getvalue()
