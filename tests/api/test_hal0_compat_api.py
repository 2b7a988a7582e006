"""hal0 compatibility, part 1 of 3: the budget API over HTTP, as a hal0 client sees it.

Every behaviour hal0 pins for ``/api/agents/{a}/personas/{p}/budget`` (its API tests,
20 cases) is restated here against this service: same paths, same field names, same
status and error codes, same numbers. The other hal0 behaviours live next door:

- ``tests/api/test_hal0_compat_rules.py``: hal0's budget module (31 cases: the budget
  block, parsing, the ledger, spend per window, the check rules, recording a charge);
- ``tests/personas/test_hal0_compat_roundtrip.py``: hal0's persona TOML round trip
  (7 cases).

58 hal0 cases in all; each entry below names the test here that proves it.

hal0 case (API) -> our test:

- get returns empty budget for seeded persona
  -> test_a_seeded_persona_has_an_empty_budget_no_spend_and_no_remaining
- get unknown agent returns 404
  -> test_get_on_an_unknown_agent_is_agent_unknown
- get unknown persona returns 404
  -> test_get_on_an_unknown_persona_is_persona_not_found
- put sets budget and returns updated state
  -> test_put_sets_every_cap_writes_the_file_and_answers_the_new_state
- put with warn only persists hard_cap false
  -> test_put_with_hard_cap_false_is_kept_in_the_answer_and_the_file
- put invalid value returns 400
  -> test_put_with_a_negative_cap_is_budget_invalid_and_writes_nothing
- put unknown persona returns 404
  -> test_put_on_an_unknown_persona_is_persona_not_found
- put unknown agent returns 404
  -> test_put_on_an_unknown_agent_is_agent_unknown
- put non-object body returns 400
  -> test_put_with_a_body_that_is_not_an_object_is_invalid_body
- check with no budget allows any estimate
  -> test_check_without_caps_allows_any_estimate
- check blocks when estimate exceeds per-call
  -> test_check_over_the_per_call_cap_is_refused_naming_it
- check invalid estimate returns 400
  -> test_check_with_a_negative_estimate_is_invalid_estimate
- check missing estimate returns 400
  -> test_check_without_an_estimate_is_invalid_estimate
- check unknown persona returns 404
  -> test_check_on_an_unknown_persona_is_persona_not_found
- charge records to ledger
  -> test_a_charge_is_recorded_answered_and_mirrored_to_the_ledger_file
- charge missing required field returns 400
  -> test_a_charge_without_a_request_id_is_invalid_charge
- charge negative cost returns 400
  -> test_a_charge_with_a_negative_cost_is_invalid_charge
- charge empty surface returns 400
  -> test_a_charge_with_an_empty_surface_is_invalid_charge
- charge unknown persona returns 404
  -> test_a_charge_on_an_unknown_persona_is_persona_not_found
- charge then check reflects new spend
  -> test_a_charge_counts_at_the_next_check

Where DESIGN.md overrides hal0, these tests follow DESIGN.md and say so: an empty or
``null`` PUT body is ``budget.invalid_body`` (hal0 takes it as "no caps"), and the order
of checks is the one in DESIGN.md section 4 (``test_the_order_of_checks_*``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from budgets.models import Charge
from personas import paths
from personas.models import Agent
from personas.toml_store import parse_persona_text

pytestmark = pytest.mark.django_db

HERMES = "/api/agents/hermes/personas/hermes/budget"
CHARGE = {"surface": "openrouter", "model": "m", "cost_usd": 0.01, "request_id": "r"}
Committing = Callable[..., AbstractContextManager[Any]]


def coverage_table(doc: str | None) -> list[tuple[str, str]]:
    """The ``- hal0 case`` / ``  -> our test`` pairs of a module docstring."""
    return re.findall(r"^- (.+)\n  -> (test_\w+)$", doc or "", re.MULTILINE)


def test_every_hal0_api_case_is_listed_once_and_names_a_test_of_this_module() -> None:
    table = coverage_table(__doc__)
    assert len(table) == 20
    assert len({case for case, _ in table}) == 20
    for _, name in table:
        assert callable(globals().get(name)), name


@pytest.fixture
def client(agent: Agent, api_client: APIClient) -> APIClient:
    """hal0's "seeded" state: the agent hermes with its seed personas, and an operator
    client (PUT is for operators)."""
    return api_client


def put(client: APIClient, body: Any, url: str = HERMES) -> Any:
    return client.put(url, json.dumps(body), content_type="application/json")


def post(client: APIClient, action: str, body: Any, url: str = HERMES) -> Any:
    return client.post(f"{url}/{action}", json.dumps(body), content_type="application/json")


def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    out: dict[str, Any] = response.json()
    return out


def error_code(response: Any, status: int) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    code: str = body["error"]["code"]
    return code


def hermes_file() -> Path:
    return paths.persona_file("hermes", "hermes")


# ---------------------------------------------------------------------------------------
# GET


def test_a_seeded_persona_has_an_empty_budget_no_spend_and_no_remaining(
    client: APIClient,
) -> None:
    response = client.get(HERMES)
    body = ok(response)
    assert body["budget"] == {"hard_cap": True}
    assert body["spend"] == {"today_usd": 0.0, "mtd_usd": 0.0, "lifetime_usd": 0.0}
    assert body["remaining"] == {}
    # Byte for byte what hal0 sends first: floats are 0.0, keys in hal0's order.
    assert response.content.startswith(
        b'{"budget":{"hard_cap":true},'
        b'"spend":{"today_usd":0.0,"mtd_usd":0.0,"lifetime_usd":0.0},'
        b'"remaining":{}'
    )


def test_get_on_an_unknown_agent_is_agent_unknown(client: APIClient) -> None:
    response = client.get("/api/agents/pi-coder/personas/anything/budget")
    assert error_code(response, 404) == "agent.unknown"


def test_get_on_an_unknown_persona_is_persona_not_found(client: APIClient) -> None:
    response = client.get("/api/agents/hermes/personas/ghost/budget")
    assert error_code(response, 404) == "persona.not_found"


# ---------------------------------------------------------------------------------------
# PUT


def test_put_sets_every_cap_writes_the_file_and_answers_the_new_state(
    client: APIClient,
) -> None:
    caps = {
        "daily_usd": 2.50,
        "monthly_usd": 25.00,
        "lifetime_usd": 250.00,
        "per_call_max_usd": 0.10,
        "hard_cap": True,
    }
    body = ok(put(client, caps))
    assert body["budget"] == caps
    assert body["remaining"] == {"daily_usd": 2.5, "monthly_usd": 25.0, "lifetime_usd": 250.0}
    assert body["spend"] == {"today_usd": 0.0, "mtd_usd": 0.0, "lifetime_usd": 0.0}

    # On disk, in the persona's own file, and nothing else of the persona changed.
    on_disk = parse_persona_text(hermes_file().read_text(encoding="utf-8"), stem="hermes")
    assert on_disk.budget.to_api() == caps
    assert on_disk.display_name == "Hermes"
    assert on_disk.system_prompt.lstrip().startswith("You are Hermes")
    # A later GET answers the same state.
    assert ok(client.get(HERMES))["budget"] == caps


def test_put_with_hard_cap_false_is_kept_in_the_answer_and_the_file(client: APIClient) -> None:
    body = ok(put(client, {"daily_usd": 1.0, "hard_cap": False}))
    assert body["budget"] == {"daily_usd": 1.0, "hard_cap": False}
    on_disk = parse_persona_text(hermes_file().read_text(encoding="utf-8"), stem="hermes")
    assert on_disk.budget.hard_cap is False
    assert ok(client.get(HERMES))["budget"]["hard_cap"] is False


def test_put_without_hard_cap_means_a_hard_cap(client: APIClient) -> None:
    put(client, {"daily_usd": 1.0, "hard_cap": False})
    body = ok(put(client, {"daily_usd": 1.0}))
    assert body["budget"] == {"daily_usd": 1.0, "hard_cap": True}


def test_the_budget_a_get_answers_can_be_put_back_unchanged(
    client: APIClient, make_persona: Callable[..., Any]
) -> None:
    # A hal0 dashboard edits what GET gave it and PUTs it back; the extension keys that
    # GET may add (warn_at, timezone) must be accepted by PUT.
    make_persona(
        "hermes",
        "hermes",
        "daily_usd = 5\nper_call_max_usd = 0.1\nhard_cap = false\nwarn_at = 0.5\n"
        'timezone = "Europe/Berlin"\nteam = "research"\n',
    )
    shown = ok(client.get(HERMES))["budget"]
    assert shown == {
        "daily_usd": 5.0,
        "per_call_max_usd": 0.1,
        "hard_cap": False,
        "warn_at": 0.5,
        "timezone": "Europe/Berlin",
    }
    before = hermes_file().read_bytes()
    assert ok(put(client, shown))["budget"] == shown
    # Nothing changed, so the file is left exactly as the operator wrote it.
    assert hermes_file().read_bytes() == before


def test_put_with_a_negative_cap_is_budget_invalid_and_writes_nothing(client: APIClient) -> None:
    before = hermes_file().read_bytes()
    response = put(client, {"daily_usd": -5.0})
    assert error_code(response, 400) == "budget.invalid"
    assert ">= 0" in response.json()["error"]["message"]
    assert response.json()["error"]["details"] == {"key": "daily_usd"}
    assert hermes_file().read_bytes() == before


def test_put_on_an_unknown_persona_is_persona_not_found(client: APIClient) -> None:
    response = put(client, {"daily_usd": 1.0}, url="/api/agents/hermes/personas/ghost/budget")
    assert error_code(response, 404) == "persona.not_found"
    assert not paths.persona_file("hermes", "ghost").exists()


def test_put_on_an_unknown_agent_is_agent_unknown(client: APIClient) -> None:
    response = put(client, {"daily_usd": 1.0}, url="/api/agents/pi-coder/personas/x/budget")
    assert error_code(response, 404) == "agent.unknown"


def test_put_replaces_the_whole_block_a_missing_or_null_cap_is_no_cap(client: APIClient) -> None:
    ok(put(client, {"daily_usd": 1.0, "monthly_usd": 2.0, "per_call_max_usd": 0.5}))
    body = ok(put(client, {"monthly_usd": 3.0, "per_call_max_usd": None}))
    assert body["budget"] == {"monthly_usd": 3.0, "hard_cap": True}
    assert body["remaining"] == {"monthly_usd": 3.0}
    body = ok(put(client, {}))
    assert body["budget"] == {"hard_cap": True}
    assert body["remaining"] == {}


@pytest.mark.parametrize("body", ["[1, 2, 3]", '"daily_usd"', "1.0", "true", "{not json"])
def test_put_with_a_body_that_is_not_an_object_is_invalid_body(
    client: APIClient, body: str
) -> None:
    before = hermes_file().read_bytes()
    response = client.put(HERMES, body, content_type="application/json")
    assert error_code(response, 400) == "budget.invalid_body"
    assert hermes_file().read_bytes() == before


@pytest.mark.parametrize("body", ["", "null", "  \n"])
def test_an_empty_or_null_put_body_is_invalid_body_not_no_caps(
    client: APIClient, body: str
) -> None:
    # DESIGN.md overrides hal0 here: hal0 reads an empty body as {} and drops every cap;
    # a client that lost its body on the way must not lift a persona's caps.
    put(client, {"daily_usd": 1.0})
    response = client.put(HERMES, body, content_type="application/json")
    assert error_code(response, 400) == "budget.invalid_body"
    assert ok(client.get(HERMES))["budget"] == {"daily_usd": 1.0, "hard_cap": True}


# ---------------------------------------------------------------------------------------
# POST .../check


def test_check_without_caps_allows_any_estimate(client: APIClient) -> None:
    response = post(client, "check", {"estimated_cost_usd": 5.0})
    body = ok(response)
    assert body["allowed"] is True
    assert body["reason"] is None
    assert body["remaining_usd"] == {}
    assert body["hard_cap"] is True
    assert response.content.startswith(
        b'{"allowed":true,"reason":null,"remaining_usd":{},"hard_cap":true'
    )


def test_check_over_the_per_call_cap_is_refused_naming_it(client: APIClient) -> None:
    ok(put(client, {"per_call_max_usd": 0.05}))
    body = ok(post(client, "check", {"estimated_cost_usd": 0.10}))
    assert body["allowed"] is False
    assert "per-call cap" in body["reason"]
    # The per-call cap is not a window: no remaining entry for it.
    assert body["remaining_usd"] == {}


def test_check_with_a_negative_estimate_is_invalid_estimate(client: APIClient) -> None:
    response = post(client, "check", {"estimated_cost_usd": -1.0})
    assert error_code(response, 400) == "budget.invalid_estimate"


def test_check_without_an_estimate_is_invalid_estimate(client: APIClient) -> None:
    response = post(client, "check", {})
    assert error_code(response, 400) == "budget.invalid_estimate"


@pytest.mark.parametrize("estimate", ["0.05", True, None, [0.05], {"usd": 0.05}])
def test_an_estimate_that_is_not_a_number_is_invalid_estimate(
    client: APIClient, estimate: Any
) -> None:
    response = post(client, "check", {"estimated_cost_usd": estimate})
    assert error_code(response, 400) == "budget.invalid_estimate"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_estimate_is_invalid_estimate(client: APIClient, literal: str) -> None:
    # hal0 lets NaN through its "< 0" test (and allows the call); DESIGN.md says 400.
    ok(put(client, {"daily_usd": 1.0}))
    response = client.post(
        f"{HERMES}/check", f'{{"estimated_cost_usd": {literal}}}', content_type="application/json"
    )
    assert error_code(response, 400) == "budget.invalid_estimate"


def test_an_integer_estimate_is_a_number_like_any_other(client: APIClient) -> None:
    ok(put(client, {"daily_usd": 1}))
    assert ok(post(client, "check", {"estimated_cost_usd": 1}))["allowed"] is True
    assert ok(post(client, "check", {"estimated_cost_usd": 2}))["allowed"] is False


def test_check_on_an_unknown_persona_is_persona_not_found(client: APIClient) -> None:
    response = post(
        client,
        "check",
        {"estimated_cost_usd": 0.01},
        url="/api/agents/hermes/personas/ghost/budget",
    )
    assert error_code(response, 404) == "persona.not_found"


# ---------------------------------------------------------------------------------------
# POST .../charge


def test_a_charge_is_recorded_answered_and_mirrored_to_the_ledger_file(
    client: APIClient, django_capture_on_commit_callbacks: Committing
) -> None:
    ok(put(client, {"daily_usd": 10.0}))
    body_sent = {
        "surface": "openrouter",
        "model": "anthropic/claude-3.7-sonnet",
        "cost_usd": 0.42,
        "request_id": "req-1",
    }
    with django_capture_on_commit_callbacks(execute=True):
        body = ok(post(client, "charge", body_sent))
    assert body["recorded"] is True
    assert {k: body["row"][k] for k in ("surface", "model", "cost_usd", "request_id")} == body_sent
    # hal0's row, plus where the cost came from (extension, docs/api.md "Pricing").
    assert set(body["row"]) == {"ts", "surface", "model", "cost_usd", "request_id", "cost_source"}
    assert body["row"]["cost_source"] == "reported"
    # Exact numbers, not "approximately": 10 - 0.42 is 9.58 on the wire.
    assert body["spend"] == {"today_usd": 0.42, "mtd_usd": 0.42, "lifetime_usd": 0.42}
    assert body["remaining"] == {"daily_usd": 9.58}
    assert body["budget"] == {"daily_usd": 10.0, "hard_cap": True}

    # The ledger of record and its JSONL file at hal0's path both hold the one row.
    charge = Charge.objects.get(persona__slug="hermes")
    assert (charge.cost_nanos, charge.request_id) == (420_000_000, "req-1")
    ledger = paths.personas_dir("hermes") / "hermes" / "spend.jsonl"
    lines = ledger.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["cost_usd"] == 0.42
    assert line["request_id"] == "req-1"
    assert line["persona_id"] == "hermes"
    # Same instant; the file always spells microseconds, the answer spells them as hal0.
    assert dt.datetime.fromisoformat(line["ts"]) == dt.datetime.fromisoformat(body["row"]["ts"])


def test_a_charge_without_a_request_id_is_invalid_charge(client: APIClient) -> None:
    response = post(client, "charge", {"surface": "openrouter", "model": "m", "cost_usd": 0.01})
    assert error_code(response, 400) == "budget.invalid_charge"
    assert response.json()["error"]["details"] == {"key": "request_id"}
    assert not Charge.objects.exists()


@pytest.mark.parametrize("missing", ["surface", "model", "cost_usd", "request_id"])
def test_a_charge_missing_any_required_field_is_invalid_charge(
    client: APIClient, missing: str
) -> None:
    body = {k: v for k, v in CHARGE.items() if k != missing}
    response = post(client, "charge", body)
    assert error_code(response, 400) == "budget.invalid_charge"
    assert response.json()["error"]["details"] == {"key": missing}


def test_a_charge_with_a_negative_cost_is_invalid_charge(client: APIClient) -> None:
    response = post(client, "charge", {**CHARGE, "cost_usd": -0.01})
    assert error_code(response, 400) == "budget.invalid_charge"
    assert not Charge.objects.exists()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "true", '"0.01"', "null"])
def test_a_cost_that_is_not_a_finite_number_is_invalid_charge(
    client: APIClient, literal: str
) -> None:
    # hal0 records NaN and Infinity (they pass its "< 0" test); DESIGN.md says 400.
    body = json.dumps({**CHARGE, "cost_usd": 0}).replace('"cost_usd": 0', f'"cost_usd": {literal}')
    response = client.post(f"{HERMES}/charge", body, content_type="application/json")
    assert error_code(response, 400) == "budget.invalid_charge"
    assert response.json()["error"]["details"] == {"key": "cost_usd"}
    assert not Charge.objects.exists()


@pytest.mark.parametrize("surface", ["", "   "])
def test_a_charge_with_an_empty_surface_is_invalid_charge(client: APIClient, surface: str) -> None:
    response = post(client, "charge", {**CHARGE, "surface": surface})
    assert error_code(response, 400) == "budget.invalid_charge"
    assert not Charge.objects.exists()


def test_a_repeated_request_id_is_one_charge_not_two(client: APIClient) -> None:
    # DESIGN.md's idempotency extension: hal0 records every call, even a retry; here the
    # same body again is answered as the first time and records nothing, and the same
    # request_id with another body is 409 charge.conflict.
    first = ok(post(client, "charge", {**CHARGE, "request_id": "retry-me"}))
    again = ok(post(client, "charge", {**CHARGE, "request_id": "retry-me"}))
    assert again == first
    assert Charge.objects.count() == 1
    other = post(client, "charge", {**CHARGE, "request_id": "retry-me", "cost_usd": 0.02})
    assert error_code(other, 409) == "charge.conflict"
    assert ok(client.get(HERMES))["spend"]["lifetime_usd"] == 0.01


def test_hal0s_charge_fields_are_checked_in_its_order(client: APIClient) -> None:
    # surface, model, cost_usd, request_id: with all four wrong, surface is named.
    bad = {"surface": "", "model": "", "cost_usd": -1, "request_id": ""}
    keys = []
    for key in ("surface", "model", "cost_usd", "request_id"):
        response = post(client, "charge", bad)
        assert error_code(response, 400) == "budget.invalid_charge"
        keys.append(response.json()["error"]["details"]["key"])
        bad[key] = CHARGE[key]
    assert keys == ["surface", "model", "cost_usd", "request_id"]
    assert ok(post(client, "charge", bad))["recorded"] is True


def test_a_charge_on_an_unknown_persona_is_persona_not_found(client: APIClient) -> None:
    response = post(client, "charge", CHARGE, url="/api/agents/hermes/personas/ghost/budget")
    assert error_code(response, 404) == "persona.not_found"
    assert not Charge.objects.exists()


def test_a_charge_counts_at_the_next_check(client: APIClient) -> None:
    ok(put(client, {"daily_usd": 1.0}))
    ok(post(client, "charge", {**CHARGE, "cost_usd": 0.6, "request_id": "r1"}))
    fits = ok(post(client, "check", {"estimated_cost_usd": 0.3}))
    assert fits["allowed"] is True
    assert fits["remaining_usd"] == {"daily": 0.4}
    blocked = ok(post(client, "check", {"estimated_cost_usd": 0.5}))
    assert blocked["allowed"] is False
    assert "daily cap" in blocked["reason"]
    assert blocked["remaining_usd"] == {"daily": 0.4}


def test_a_charge_over_the_cap_is_still_recorded(client: APIClient) -> None:
    ok(put(client, {"daily_usd": 1.0}))
    body = ok(post(client, "charge", {**CHARGE, "cost_usd": 1.5}))
    assert body["recorded"] is True
    assert body["spend"]["today_usd"] == 1.5
    assert body["remaining"] == {"daily_usd": 0.0}


# ---------------------------------------------------------------------------------------
# The order of checks (DESIGN.md section 4): PUT resolves the agent, then the body, then
# the persona; check and charge validate the body first, then the agent and the persona.

GHOST_AGENT = "/api/agents/pi-coder/personas/hermes/budget"
GHOST_PERSONA = "/api/agents/hermes/personas/ghost/budget"


@pytest.mark.parametrize(
    ("url", "body", "status", "code"),
    [
        (GHOST_AGENT, "[1]", 404, "agent.unknown"),
        (GHOST_AGENT, '{"daily_usd": -1}', 404, "agent.unknown"),
        (GHOST_PERSONA, "[1]", 400, "budget.invalid_body"),
        (GHOST_PERSONA, '{"daily_usd": -1}', 400, "budget.invalid"),
        (GHOST_PERSONA, '{"daily_usd": 1}', 404, "persona.not_found"),
    ],
)
def test_the_order_of_checks_for_put_is_agent_then_body_then_persona(
    client: APIClient, url: str, body: str, status: int, code: str
) -> None:
    response = client.put(url, body, content_type="application/json")
    assert error_code(response, status) == code


@pytest.mark.parametrize(
    ("action", "bad_body", "bad_code", "good_body"),
    [
        (
            "check",
            '{"estimated_cost_usd": -1}',
            "budget.invalid_estimate",
            {"estimated_cost_usd": 0},
        ),
        ("check", "[]", "budget.invalid_body", {"estimated_cost_usd": 0}),
        ("charge", '{"surface": ""}', "budget.invalid_charge", CHARGE),
        ("charge", "null", "budget.invalid_body", CHARGE),
    ],
)
def test_the_order_of_checks_for_check_and_charge_is_body_then_agent_then_persona(
    client: APIClient, action: str, bad_body: str, bad_code: str, good_body: dict[str, Any]
) -> None:
    for url in (GHOST_AGENT, GHOST_PERSONA):
        bad = client.post(f"{url}/{action}", bad_body, content_type="application/json")
        assert error_code(bad, 400) == bad_code
    assert error_code(post(client, action, good_body, url=GHOST_AGENT), 404) == "agent.unknown"
    assert error_code(post(client, action, good_body, url=GHOST_PERSONA), 404) == (
        "persona.not_found"
    )
    assert not Charge.objects.exists()


def test_a_body_is_read_as_json_whatever_its_content_type(client: APIClient) -> None:
    # hal0 reads the raw body; so does a client using curl -d without a header.
    response = client.post(
        f"{HERMES}/check", '{"estimated_cost_usd": 0.01}', content_type="text/plain"
    )
    assert ok(response)["allowed"] is True


# ---------------------------------------------------------------------------------------
# A malformed persona file (DESIGN.md section 3: it never lifts a cap). hal0 answers every
# call on it with 400 persona.malformed; here GET and PUT do, while check and charge keep
# working on the last good caps.


def test_a_broken_file_keeps_the_last_good_caps_for_check_and_charge(client: APIClient) -> None:
    ok(put(client, {"daily_usd": 1.0}))
    hermes_file().write_text(
        hermes_file().read_text(encoding="utf-8").replace("daily_usd = 1.0", "daily_usd = -1"),
        encoding="utf-8",
    )
    assert error_code(client.get(HERMES), 400) == "persona.malformed"
    assert error_code(put(client, {"daily_usd": 5.0}), 400) == "persona.malformed"
    blocked = ok(post(client, "check", {"estimated_cost_usd": 2.0}))
    assert blocked["allowed"] is False
    assert "daily cap" in blocked["reason"]
    charged = ok(post(client, "charge", {**CHARGE, "cost_usd": 0.25}))
    assert charged["budget"] == {"daily_usd": 1.0, "hard_cap": True}
    assert charged["remaining"] == {"daily_usd": 0.75}
