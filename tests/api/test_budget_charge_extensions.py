"""Charge and check beyond hal0 (extensions): idempotent replays, conflicts, exact money,
token counts, length limits, ``decision``/``limit`` on check and ``status`` on GET.

hal0's own behaviour (field names, the per-call/daily/monthly/lifetime precedence, the
basic shapes) is covered by the hal0 compatibility tests; this file goes past it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from rest_framework.test import APIClient

from budgets.ledger import mirror
from budgets.models import Charge
from personas.models import Persona

pytestmark = pytest.mark.django_db

URL = "/api/agents/hermes/personas/coder/budget"
BODY = {
    "surface": "openrouter",
    "model": "anthropic/claude-3.7-sonnet",
    "cost_usd": 0.0421,
    "request_id": "req_abc",
}


Committing = Callable[..., AbstractContextManager[Any]]


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def coder(make_persona: Callable[..., Persona]) -> Persona:
    return make_persona("hermes", "coder", "daily_usd = 10.0\n")


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Committing) -> Callable[[], Any]:
    """``with committed(): ...`` runs the after-commit callbacks (the mirror append) at the
    end of the block, as the real commit of the request would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def post_charge(client: APIClient, body: dict[str, Any] | str, url: str = URL) -> Any:
    if isinstance(body, str):
        return client.post(f"{url}/charge", body, content_type="application/json")
    return client.post(f"{url}/charge", body, format="json")


def post_check(client: APIClient, estimate: float) -> dict[str, Any]:
    response = client.post(f"{URL}/check", {"estimated_cost_usd": estimate}, format="json")
    assert response.status_code == 200, response.content
    out: dict[str, Any] = response.json()
    return out


def mirror_lines(persona: Persona) -> list[dict[str, Any]]:
    path = mirror.mirror_path(persona.agent_id, persona.slug)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# --- idempotency ----------------------------------------------------------------------------


def test_a_replay_returns_the_first_answer_and_records_nothing(
    client: APIClient, coder: Persona, committed: Callable[[], Any]
) -> None:
    with committed():
        first = post_charge(client, BODY)
    with committed():
        post_charge(client, {**BODY, "request_id": "req_other", "cost_usd": 1.0})

    with committed():
        again = post_charge(client, BODY)

    assert again.status_code == 200
    # The first answer, not today's state: spend as it was right after the first charge.
    assert again.json() == first.json()
    assert again.json()["spend"]["today_usd"] == 0.0421
    assert Charge.objects.filter(request_id="req_abc").count() == 1
    assert [line["request_id"] for line in mirror_lines(coder)] == ["req_abc", "req_other"]
    assert post_check(client, 0.0)["remaining_usd"] == {"daily": 8.9579}


def test_a_replay_answers_byte_for_byte_like_the_first_time(
    client: APIClient, coder: Persona
) -> None:
    first = post_charge(client, BODY)

    again = post_charge(client, BODY)

    assert again.content == first.content


@pytest.mark.parametrize("cost", ["0.0421", "0.04210", "4.21e-2", "421E-4", "0.04210000000"])
def test_the_same_amount_written_another_way_is_the_same_body(
    client: APIClient, coder: Persona, cost: str
) -> None:
    first = post_charge(client, BODY)
    text = json.dumps({**BODY, "cost_usd": "COST"}).replace('"COST"', cost)

    again = post_charge(client, text)

    assert again.status_code == 200
    assert again.json() == first.json()
    assert Charge.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"cost_usd": 0.0422},
        {"cost_usd": 0.04210001},
        {"model": "anthropic/claude-3.5-haiku"},
        {"surface": "local"},
        {"input_tokens": 12},
        {"output_tokens": 0},
        {"hold_id": "hold_x"},
    ],
)
def test_the_same_request_id_with_another_body_is_409_charge_conflict(
    client: APIClient, coder: Persona, change: dict[str, Any]
) -> None:
    first = post_charge(client, BODY)
    seq = Charge.objects.get().pk

    response = post_charge(client, {**BODY, **change})

    error = error_of(response, 409)
    assert error["code"] == "charge.conflict"
    assert error["details"] == {"request_id": "req_abc", "seq": seq}
    assert "req_abc" in error["message"]
    assert Charge.objects.count() == 1
    assert post_charge(client, BODY).json() == first.json()  # the first still replays


def test_request_ids_are_per_persona(
    client: APIClient, coder: Persona, make_persona: Callable[..., Persona]
) -> None:
    make_persona("hermes", "hermes", "daily_usd = 10.0\n")

    mine = post_charge(client, BODY)
    theirs = post_charge(
        client, {**BODY, "cost_usd": 2.0}, "/api/agents/hermes/personas/hermes/budget"
    )

    assert (mine.status_code, theirs.status_code) == (200, 200)
    assert Charge.objects.filter(request_id="req_abc").count() == 2


# --- a charge is never refused for being over a cap ---------------------------------------


@pytest.mark.parametrize(
    ("caps", "key"),
    [
        ("daily_usd = 1.0\n", "daily_usd"),
        ("monthly_usd = 1.0\n", "monthly_usd"),
        ("lifetime_usd = 1.0\n", "lifetime_usd"),
        ("daily_usd = 0\n", "daily_usd"),
    ],
)
def test_an_over_cap_charge_is_recorded_and_remaining_stops_at_zero(
    client: APIClient, make_persona: Callable[..., Persona], caps: str, key: str
) -> None:
    make_persona("hermes", "coder", caps + "per_call_max_usd = 0.01\n")

    response = post_charge(client, {**BODY, "cost_usd": 1.5})

    assert response.status_code == 200
    body = response.json()
    assert body["recorded"] is True
    assert body["spend"] == {"today_usd": 1.5, "mtd_usd": 1.5, "lifetime_usd": 1.5}
    assert body["remaining"] == {key: 0.0}
    assert body["status"] == "exceeded"
    assert Charge.objects.get().cost_nanos == 1_500_000_000
    after = post_check(client, 0.0)
    assert (after["allowed"], after["remaining_usd"]) == (True, {key.removesuffix("_usd"): 0.0})


# --- exact money ----------------------------------------------------------------------------


def test_042_against_10_leaves_exactly_958_in_the_json_text(
    client: APIClient, coder: Persona
) -> None:
    response = post_charge(client, {**BODY, "cost_usd": 0.42})

    assert b'"remaining":{"daily_usd":9.58}' in response.content
    assert b'"today_usd":0.42' in response.content
    assert b'"cost_usd":0.42' in response.content
    assert b'"remaining":{"daily_usd":9.58}' in client.get(URL).content
    assert (
        b'"remaining_usd":{"daily":9.58}'
        in client.post(f"{URL}/check", {"estimated_cost_usd": 0.1}, format="json").content
    )


def test_tenths_add_up_without_binary_float_drift(client: APIClient, coder: Persona) -> None:
    for n, cost in enumerate(["0.1", "0.2", "0.1", "0.1"]):
        post_charge(client, f'{{"surface":"s","model":"m","cost_usd":{cost},"request_id":"r{n}"}}')

    got = client.get(URL)

    # 0.1 + 0.2 + 0.1 + 0.1 in binary floats is 0.5000000000000001.
    assert b'"today_usd":0.5,' in got.content
    assert b'"daily_usd":9.5}' in got.content


@pytest.mark.parametrize(
    ("text", "nanos", "shown"),
    [
        ("0.000000001", 1, b'"cost_usd":1e-09'),
        ("0.0000000005", 0, b'"cost_usd":0.0'),  # half a nano-USD: half-to-even, down
        ("0.0000000015", 2, b'"cost_usd":2e-09'),  # ... and up
        ("0.123456789123", 123_456_789, b'"cost_usd":0.123456789'),
        ("1000000000", 10**18, b'"cost_usd":1000000000.0'),
        ("0", 0, b'"cost_usd":0.0'),
    ],
)
def test_amounts_are_kept_in_nano_usd(
    client: APIClient, make_persona: Callable[..., Persona], text: str, nanos: int, shown: bytes
) -> None:
    make_persona("hermes", "coder", "")

    response = post_charge(
        client, f'{{"surface":"s","model":"m","cost_usd":{text},"request_id":"r"}}'
    )

    assert response.status_code == 200, response.content
    assert shown in response.content
    assert Charge.objects.get().cost_nanos == nanos


def test_more_than_a_billion_usd_is_refused(client: APIClient, coder: Persona) -> None:
    text = '{"surface":"s","model":"m","cost_usd":1000000000.000000001,"request_id":"r"}'

    error = error_of(post_charge(client, text), 400)

    assert error["code"] == "budget.invalid_charge"
    assert error["details"] == {"key": "cost_usd"}
    assert not Charge.objects.exists()


# --- token counts ---------------------------------------------------------------------------


def test_token_counts_are_stored_and_mirrored(
    client: APIClient, coder: Persona, committed: Callable[[], Any]
) -> None:
    with committed():
        response = post_charge(client, {**BODY, "input_tokens": 1200, "output_tokens": 0})

    assert response.status_code == 200
    row = Charge.objects.get()
    assert (row.input_tokens, row.output_tokens) == (1200, 0)
    [line] = mirror_lines(coder)
    assert (line["input_tokens"], line["output_tokens"]) == (1200, 0)


def test_token_counts_are_optional_and_null_means_unknown(
    client: APIClient, coder: Persona
) -> None:
    post_charge(client, {**BODY, "request_id": "a", "input_tokens": None})
    post_charge(client, {**BODY, "request_id": "b", "output_tokens": 2**31 - 1})

    rows = {c.request_id: (c.input_tokens, c.output_tokens) for c in Charge.objects.all()}
    assert rows == {"a": (None, None), "b": (None, 2**31 - 1)}


@pytest.mark.parametrize("key", ["input_tokens", "output_tokens"])
@pytest.mark.parametrize("value", ["-1", "1.5", "12.0", '"12"', "true", "2147483648", "[1]", "{}"])
def test_a_token_count_that_is_not_a_whole_number_is_400(
    client: APIClient, coder: Persona, key: str, value: str
) -> None:
    text = json.dumps({**BODY, key: "V"}).replace('"V"', value)

    error = error_of(post_charge(client, text), 400)

    assert error["code"] == "budget.invalid_charge"
    assert error["details"] == {"key": key}
    assert error["message"] == f"'{key}' must be a whole number >= 0"
    assert not Charge.objects.exists()


# --- length limits --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["surface", "model", "request_id"])
def test_text_fields_take_up_to_200_characters(client: APIClient, coder: Persona, key: str) -> None:
    longest = "x" * 199 + "é"

    assert post_charge(client, {**BODY, key: longest}).status_code == 200
    assert getattr(Charge.objects.get(), key) == longest


@pytest.mark.parametrize("key", ["surface", "model", "request_id", "hold_id"])
def test_a_text_field_longer_than_200_characters_is_400(
    client: APIClient, coder: Persona, key: str
) -> None:
    error = error_of(post_charge(client, {**BODY, key: "x" * 201}), 400)

    assert error == {
        "code": "budget.invalid_charge",
        "message": f"'{key}' must be at most 200 characters",
        "details": {"key": key},
    }
    assert not Charge.objects.exists()


def test_a_huge_string_is_refused_without_being_echoed(client: APIClient, coder: Persona) -> None:
    response = post_charge(client, {**BODY, "model": "m" * 50_000})

    assert error_of(response, 400)["details"] == {"key": "model"}
    assert len(response.content) < 300


# --- decision and limit on check ----------------------------------------------------------


@pytest.mark.parametrize(
    ("caps", "estimate", "decision", "limit"),
    [
        ("", 5.0, "allow", None),
        ("daily_usd = 1.0\n", 1.0, "allow", None),
        ("per_call_max_usd = 0.1\ndaily_usd = 0.05\n", 0.2, "block", "per_call"),
        ("daily_usd = 1.0\nmonthly_usd = 0.5\n", 0.75, "block", "monthly"),
        ("daily_usd = 0.5\nmonthly_usd = 0.25\n", 0.75, "block", "daily"),
        ("lifetime_usd = 0.5\n", 0.75, "block", "lifetime"),
        ("daily_usd = 0\n", 0.0, "allow", None),
        ("daily_usd = 0\n", 0.000000001, "block", "daily"),
    ],
)
def test_check_says_which_cap_decided(
    client: APIClient,
    make_persona: Callable[..., Persona],
    caps: str,
    estimate: float,
    decision: str,
    limit: str | None,
) -> None:
    make_persona("hermes", "coder", caps)

    body = post_check(client, estimate)

    assert (body["decision"], body["limit"]) == (decision, limit)
    assert body["allowed"] is (decision != "block")
    assert (body["reason"] is None) is (limit is None)


@pytest.mark.parametrize(
    ("caps", "estimate", "limit", "reason"),
    [
        (
            "per_call_max_usd = 0.1\n",
            0.25,
            "per_call",
            "estimate 0.25 USD exceeds the per-call cap of 0.1 USD",
        ),
        (
            "daily_usd = 1.0\n",
            1.5,
            "daily",
            "estimate 1.5 USD exceeds the daily cap: 1.0 USD left of 1.0 USD",
        ),
        (
            "monthly_usd = 2\n",
            2.5,
            "monthly",
            "estimate 2.5 USD exceeds the monthly cap: 2.0 USD left of 2.0 USD",
        ),
        (
            "lifetime_usd = 0\n",
            0.01,
            "lifetime",
            "estimate 0.01 USD exceeds the lifetime cap: 0.0 USD left of 0.0 USD",
        ),
    ],
)
def test_a_warn_only_budget_allows_with_decision_warn_and_names_the_cap(
    client: APIClient,
    make_persona: Callable[..., Persona],
    caps: str,
    estimate: float,
    limit: str,
    reason: str,
) -> None:
    make_persona("hermes", "coder", caps + "hard_cap = false\n")

    body = post_check(client, estimate)

    assert body == {
        "allowed": True,
        "reason": reason,
        "remaining_usd": body["remaining_usd"],
        "hard_cap": False,
        "decision": "warn",
        "limit": limit,
        "scope": "persona",
        "estimate": {"usd": estimate, "source": "client"},
    }


def test_the_same_breach_with_a_hard_cap_blocks_with_the_same_reason(
    client: APIClient, make_persona: Callable[..., Persona]
) -> None:
    make_persona("hermes", "coder", "daily_usd = 1.0\nhard_cap = false\n")
    warn = post_check(client, 1.5)
    make_persona("hermes", "coder", "daily_usd = 1.0\nhard_cap = true\n")

    block = post_check(client, 1.5)

    assert (block["allowed"], block["decision"], block["limit"]) == (False, "block", "daily")
    assert block["reason"] == warn["reason"]


# --- status on GET --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caps", "spent", "status"),
    [
        ("", 5.0, "none"),
        ("daily_usd = 1.0\n", 0.0, "ok"),
        ("daily_usd = 1.0\n", 0.799999999, "ok"),
        ("daily_usd = 1.0\n", 0.8, "warn"),  # default warn_at 0.8, compared exactly
        ("daily_usd = 1.0\n", 0.999999999, "warn"),
        ("daily_usd = 1.0\n", 1.0, "exceeded"),  # the cap is used up
        ("daily_usd = 1.0\nwarn_at = 0.5\n", 0.5, "warn"),
        ("daily_usd = 1.0\nwarn_at = 0.5\n", 0.4999, "ok"),
        ("daily_usd = 1.0\nwarn_at = 1\n", 0.99, "ok"),
        ("daily_usd = 10.0\nlifetime_usd = 1.0\n", 0.9, "warn"),  # the worst window counts
        ("daily_usd = 0\n", 0.0, "exceeded"),
        ("per_call_max_usd = 0.1\n", 5.0, "none"),  # per-call is not a window
    ],
)
def test_status_says_how_close_the_persona_is_to_its_caps(
    client: APIClient, make_persona: Callable[..., Persona], caps: str, spent: float, status: str
) -> None:
    make_persona("hermes", "coder", caps)
    if spent:
        assert post_charge(client, {**BODY, "cost_usd": spent}).json()["status"] == status

    assert client.get(URL).json()["status"] == status
