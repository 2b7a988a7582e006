"""Every error of the budget API: its status, its code and the one envelope
``{"error": {"code", "message", "details"}}``, hal0's codes and the extensions'.

Every error body is also checked for absolute paths: the data folder, the project folder
and the usual roots never appear, whatever went wrong.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import RequestFactory
from rest_framework.test import APIClient

from budgets.apikeys import create_key
from budgets.models import Charge, Hold
from hal0.errors import exception_handler, handler500
from personas.models import Persona

pytestmark = pytest.mark.django_db

BASE = "/api/agents/{a}/personas/{p}/budget"
URL = BASE.format(a="hermes", p="coder")
CHARGE = {"surface": "openrouter", "model": "m", "cost_usd": 0.05, "request_id": "req-1"}
CHECK = {"estimated_cost_usd": 0.05}
ABSOLUTE = re.compile(r"(?<![\w.])/(?:tmp|work|root|home|usr|var|etc|srv|opt)/")


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def coder(make_persona: Callable[..., Persona]) -> Persona:
    return make_persona("hermes", "coder", "daily_usd = 1.0\n")


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert the status, the exact envelope shape and the code; return the error object."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    error: dict[str, Any] = body["error"]
    assert list(error) == ["code", "message", "details"]
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["details"], dict)
    assert_no_path(response.content.decode())
    return error


def assert_no_path(text: str) -> None:
    assert str(settings.HAL0_DATA_DIR) not in text
    assert str(settings.BASE_DIR) not in text
    assert "Traceback" not in text
    assert not ABSOLUTE.search(text), text


def send(
    client: APIClient, method: str, url: str, body: bytes, content_type: str = "application/json"
) -> Any:
    """Send these exact bytes (the test client's stubs only admit str bodies)."""
    data: Any = body
    return client.generic(method, url, data, content_type=content_type)


def raw_post(
    client: APIClient, url: str, body: bytes, content_type: str = "application/json"
) -> Any:
    return send(client, "POST", url, body, content_type)


def raw_put(client: APIClient, url: str, body: bytes) -> Any:
    return send(client, "PUT", url, body)


# --- one row per code: the whole table ------------------------------------------------------


def _hold(client: APIClient) -> str:
    hold: str = client.post(f"{URL}/check", {**CHECK, "reserve": True}, format="json").json()[
        "hold"
    ]["id"]
    return hold


def _settled_hold(client: APIClient) -> str:
    hold = _hold(client)
    client.post(
        f"{URL}/charge", {**CHARGE, "request_id": "settles", "hold_id": hold}, format="json"
    )
    return hold


TABLE: list[tuple[str, int, Callable[[APIClient], Any]]] = [
    ("agent.unknown", 404, lambda c: c.get(BASE.format(a="ghost", p="coder"))),
    ("persona.not_found", 404, lambda c: c.get(BASE.format(a="hermes", p="ghost"))),
    ("budget.invalid_body", 400, lambda c: raw_post(c, f"{URL}/check", b"null")),
    ("budget.invalid", 400, lambda c: c.put(URL, {"daily_usd": -1}, format="json")),
    ("budget.invalid_estimate", 400, lambda c: c.post(f"{URL}/check", {}, format="json")),
    ("budget.invalid_charge", 400, lambda c: c.post(f"{URL}/charge", {}, format="json")),
    (
        "budget.invalid_hold",
        400,
        lambda c: c.post(f"{URL}/check", {**CHECK, "hold_ttl_s": 0}, format="json"),
    ),
    (
        "charge.conflict",
        409,
        lambda c: [
            c.post(f"{URL}/charge", CHARGE, format="json"),
            c.post(f"{URL}/charge", {**CHARGE, "cost_usd": 0.06}, format="json"),
        ][-1],
    ),
    (
        "hold.conflict",
        409,
        lambda c: [
            c.post(f"{URL}/check", {**CHECK, "reserve": True, "request_id": "r"}, format="json"),
            c.post(
                f"{URL}/check",
                {**CHECK, "reserve": True, "request_id": "r", "hold_ttl_s": 9},
                format="json",
            ),
        ][-1],
    ),
    ("hold.not_found", 404, lambda c: c.post(f"{URL}/holds/hold_nope/release")),
    (
        "hold.resolved",
        409,
        lambda c: c.post(f"{URL}/holds/{_settled_hold(c)}/release"),
    ),
    (
        "request.too_large",
        413,
        lambda c: raw_post(c, f"{URL}/check", b'{"estimated_cost_usd": 0.1}' + b" " * 70_000),
    ),
    ("request.method_not_allowed", 405, lambda c: c.delete(URL)),
    ("not_found", 404, lambda c: c.get(f"{URL}/nope")),
]


@pytest.mark.parametrize(("code", "status", "call"), TABLE, ids=[row[0] for row in TABLE])
def test_every_code_comes_with_its_status_in_the_envelope(
    client: APIClient, coder: Persona, code: str, status: int, call: Callable[[APIClient], Any]
) -> None:
    error_of(call(client), status, code)


def test_persona_malformed_in_the_envelope(
    client: APIClient, coder: Persona, data_dir: Path
) -> None:
    (data_dir / "agents" / "hermes" / "personas" / "coder.toml").write_text("[persona\n")

    error_of(client.get(URL), 400, "persona.malformed")


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "auth.missing"),
        ({"HTTP_AUTHORIZATION": "Bearer nope.nope"}, 401, "auth.invalid"),
        ("agent", 403, "auth.forbidden"),
    ],
)
def test_auth_codes_in_the_envelope(
    client: APIClient, coder: Persona, settings: Any, headers: Any, status: int, code: str
) -> None:
    settings.HAL0_REQUIRE_API_KEY = True
    if headers == "agent":
        headers = {
            "HTTP_AUTHORIZATION": f"Bearer {create_key(scope='agent', agent_id='hermes')[1]}"
        }

    response = client.put(URL, {"daily_usd": 2.0}, format="json", **headers)

    error_of(response, status, code)
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'


# --- budget.invalid_body --------------------------------------------------------------------

NOT_AN_OBJECT = [
    b"",
    b"   \n",
    b"null",
    b"[]",
    b'[{"estimated_cost_usd": 0.05}]',
    b'"estimated_cost_usd"',
    b"42",
    b"true",
    b"{",
    b"not json",
    b"{'estimated_cost_usd': 0.05}",
    b'{"estimated_cost_usd": 0.05,}',
    b"\xff\xfe{}",
    b'{"estimated_cost_usd": "\xe9"}',  # Latin-1, not UTF-8
]


@pytest.mark.parametrize("body", NOT_AN_OBJECT)
@pytest.mark.parametrize("tail", ["/check", "/charge"])
def test_a_body_that_is_not_a_json_object_is_400_invalid_body(
    client: APIClient, coder: Persona, body: bytes, tail: str
) -> None:
    error = error_of(raw_post(client, URL + tail, body), 400, "budget.invalid_body")

    assert error["message"] in {
        "request body must be valid JSON",
        "request body must be a JSON object",
    }
    assert error["details"] == {}
    assert not Charge.objects.exists()


@pytest.mark.parametrize("body", NOT_AN_OBJECT)
def test_a_put_body_that_is_not_a_json_object_is_400_and_the_file_is_untouched(
    client: APIClient, coder: Persona, data_dir: Path, body: bytes
) -> None:
    file = data_dir / "agents" / "hermes" / "personas" / "coder.toml"
    before = file.read_bytes()

    error_of(raw_put(client, URL, body), 400, "budget.invalid_body")

    assert file.read_bytes() == before


def test_the_body_is_read_whatever_the_content_type_says(client: APIClient, coder: Persona) -> None:
    """hal0 clients (and ``curl -d``) do not always send ``application/json``."""
    body = b'{"estimated_cost_usd": 0.05}'

    for content_type in ["text/plain", "application/x-www-form-urlencoded", ""]:
        response = raw_post(client, f"{URL}/check", body, content_type)
        assert response.status_code == 200, (content_type, response.content)


# --- budget.invalid_estimate ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "estimated_cost_usd is required"),
        ("null", "estimated_cost_usd must be a number"),
        ('"0.05"', "estimated_cost_usd must be a number"),
        ('""', "estimated_cost_usd must be a number"),
        ("true", "estimated_cost_usd must be a number"),
        ("false", "estimated_cost_usd must be a number"),
        ("[0.05]", "estimated_cost_usd must be a number"),
        ('{"usd": 0.05}', "estimated_cost_usd must be a number"),
        ("-0.01", "estimated_cost_usd must be >= 0"),
        ("-1e-9", "estimated_cost_usd must be >= 0"),
        ("NaN", "estimated_cost_usd must be a finite number"),
        ("Infinity", "estimated_cost_usd must be a finite number"),
        ("-Infinity", "estimated_cost_usd must be a finite number"),
        ("1e10", "estimated_cost_usd must be at most 1000000000 USD"),
        ("1000000000.000000001", "estimated_cost_usd must be at most 1000000000 USD"),
    ],
)
def test_an_invalid_estimate_is_400_invalid_estimate(
    client: APIClient, coder: Persona, value: str | None, message: str
) -> None:
    body = b"{}" if value is None else b'{"estimated_cost_usd": ' + value.encode() + b"}"

    error = error_of(raw_post(client, f"{URL}/check", body), 400, "budget.invalid_estimate")

    assert error["message"] == message
    assert error["details"] == {"key": "estimated_cost_usd"}
    assert not Hold.objects.exists()


@pytest.mark.parametrize("value", ["0", "-0", "0.0", "1000000000", "1e-9", "5E-2"])
def test_edge_estimates_are_accepted(client: APIClient, coder: Persona, value: str) -> None:
    body = b'{"estimated_cost_usd": ' + value.encode() + b"}"

    assert raw_post(client, f"{URL}/check", body).status_code == 200


# --- budget.invalid_charge ------------------------------------------------------------------

TEXT_KEYS = ["surface", "model", "request_id"]
BAD_TEXT = [None, "", "   ", 5, True, ["s"], {"s": 1}, "x" * 201]
BAD_COST = [None, "0.05", True, -0.01, ["0.05"], 1e10]


@pytest.mark.parametrize("key", TEXT_KEYS)
@pytest.mark.parametrize("value", [*BAD_TEXT, "missing"])
def test_each_text_field_of_a_charge_is_validated(
    client: APIClient, coder: Persona, key: str, value: Any
) -> None:
    body = {**CHARGE, key: value}
    if value == "missing":
        del body[key]

    error = error_of(
        client.post(f"{URL}/charge", body, format="json"), 400, "budget.invalid_charge"
    )

    assert error["details"] == {"key": key}
    assert key in error["message"]
    assert not Charge.objects.exists()


@pytest.mark.parametrize("value", [*BAD_COST, "missing"])
def test_the_cost_of_a_charge_is_validated(client: APIClient, coder: Persona, value: Any) -> None:
    body = {**CHARGE, "cost_usd": value}
    if value == "missing":
        del body["cost_usd"]

    error = error_of(
        client.post(f"{URL}/charge", body, format="json"), 400, "budget.invalid_charge"
    )

    assert error["details"] == {"key": "cost_usd"}
    assert error["message"].startswith("cost_usd ")
    assert not Charge.objects.exists()


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_cost_is_400(client: APIClient, coder: Persona, value: str) -> None:
    body = b'{"surface":"s","model":"m","request_id":"r","cost_usd":' + value.encode() + b"}"

    error = error_of(raw_post(client, f"{URL}/charge", body), 400, "budget.invalid_charge")

    assert error["message"] == "cost_usd must be a finite number"


@pytest.mark.parametrize("value", ["", "   ", 5, True, ["h"], "h" * 201])
def test_hold_id_must_be_a_short_string_when_given(
    client: APIClient, coder: Persona, value: Any
) -> None:
    body = {**CHARGE, "hold_id": value}

    error = error_of(
        client.post(f"{URL}/charge", body, format="json"), 400, "budget.invalid_charge"
    )

    assert error["details"] == {"key": "hold_id"}


def test_charge_fields_are_checked_in_order_and_the_first_bad_one_is_named(
    client: APIClient, coder: Persona
) -> None:
    body = {"cost_usd": -1, "request_id": "", "input_tokens": -1}

    error = error_of(
        client.post(f"{URL}/charge", body, format="json"), 400, "budget.invalid_charge"
    )

    assert error["details"] == {"key": "surface"}


# --- budget.invalid (PUT) -------------------------------------------------------------------

CAP_KEYS = ["daily_usd", "monthly_usd", "lifetime_usd", "per_call_max_usd"]


@pytest.mark.parametrize("key", CAP_KEYS)
@pytest.mark.parametrize(
    ("value", "why"),
    [
        ('"5"', "must be a number"),
        ("true", "must be a number"),
        ("[5]", "must be a number"),
        ("-1", "must be >= 0"),
        ("-0.000000001", "must be >= 0"),
        ("NaN", "must be a finite number"),
        ("Infinity", "must be a finite number"),
        ("1e10", "must be at most 1000000000 USD"),
    ],
)
def test_put_refuses_a_bad_cap_and_names_it(
    client: APIClient, coder: Persona, data_dir: Path, key: str, value: str, why: str
) -> None:
    file = data_dir / "agents" / "hermes" / "personas" / "coder.toml"
    before = file.read_bytes()

    response = raw_put(client, URL, f'{{"{key}": {value}}}'.encode())

    error = error_of(response, 400, "budget.invalid")
    assert error["message"] == f"{key} {why}"
    assert error["details"] == {"key": key}
    assert file.read_bytes() == before


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ({"hard_cap": "true"}, "hard_cap", "hard_cap must be true or false"),
        ({"hard_cap": 1}, "hard_cap", "hard_cap must be true or false"),
        ({"hard_cap": None}, "hard_cap", "hard_cap must be true or false"),
        ({"warn_at": 0}, "warn_at", "warn_at must be a number between 0 and 1"),
        ({"warn_at": 1.01}, "warn_at", "warn_at must be a number between 0 and 1"),
        ({"warn_at": -0.5}, "warn_at", "warn_at must be a number between 0 and 1"),
        ({"warn_at": "0.8"}, "warn_at", "warn_at must be a number between 0 and 1"),
        ({"warn_at": True}, "warn_at", "warn_at must be a number between 0 and 1"),
        ({"warn_at": 0.12345}, "warn_at", "warn_at must have at most 4 decimal places"),
        ({"timezone": 1}, "timezone", "timezone must be a string such as 'Europe/Berlin'"),
        (
            {"timezone": "Mars/Base"},
            "timezone",
            "timezone 'Mars/Base' is not a known IANA time zone",
        ),
        # Names some hosts answer that are no IANA zone (the host's own setting, a
        # placeholder, alternative trees): they would reset windows differently per host.
        *(
            ({"timezone": name}, "timezone", f"timezone {name!r} is not a known IANA time zone")
            for name in ("localtime", "posixrules", "Factory", "right/UTC", "posix/Europe/Berlin")
        ),
    ],
)
def test_put_refuses_bad_hard_cap_warn_at_and_timezone(
    client: APIClient, coder: Persona, body: dict[str, Any], key: str, message: str
) -> None:
    error = error_of(client.put(URL, body, format="json"), 400, "budget.invalid")

    assert error["message"] == message
    assert error["details"] == {"key": key}


def test_put_refuses_a_warn_at_too_small_to_normalise_and_keeps_the_file(
    client: APIClient, coder: Persona, data_dir: Path
) -> None:
    file = data_dir / "agents" / "hermes" / "personas" / "coder.toml"
    before = file.read_bytes()

    response = raw_put(client, URL, b'{"daily_usd": 1.0, "warn_at": 1E-9999999}')

    assert error_of(response, 400, "budget.invalid")["details"] == {"key": "warn_at"}
    assert file.read_bytes() == before
    assert client.get(URL).status_code == 200


def test_put_refuses_an_unknown_key_instead_of_dropping_a_cap(
    client: APIClient, coder: Persona
) -> None:
    error = error_of(client.put(URL, {"daily_cap": 5}, format="json"), 400, "budget.invalid")

    assert error["details"] == {"key": "daily_cap"}
    assert error["message"].startswith("'daily_cap' is not a budget key (known: daily_usd, ")
    assert client.get(URL).json()["budget"] == {"daily_usd": 1.0, "hard_cap": True}


def test_put_null_caps_mean_no_cap(client: APIClient, coder: Persona) -> None:
    response = client.put(URL, {"daily_usd": None, "monthly_usd": 0}, format="json")

    assert response.status_code == 200
    assert response.json()["budget"] == {"monthly_usd": 0.0, "hard_cap": True}


# --- persona.malformed ----------------------------------------------------------------------

BROKEN = [
    ("[persona\n", "TOML syntax error"),
    ('[persona]\nid = "hermes"\n', "does not match the file name"),
    ('[persona]\nid = "coder"\n[persona.budget]\ndaily_usd = -1\n', "daily_usd must be >= 0"),
    ('[persona]\nid = "coder"\n[persona.budget]\nhard_cap = "yes"\n', "hard_cap"),
    (b'[persona]\nid = "coder"\nsummary = "\xe9"\n', "UTF-8"),
    ("", "[persona]"),
]


@pytest.mark.parametrize(("text", "reason"), BROKEN)
def test_get_and_put_on_a_broken_file_are_400_persona_malformed(
    client: APIClient, coder: Persona, data_dir: Path, text: str | bytes, reason: str
) -> None:
    file = data_dir / "agents" / "hermes" / "personas" / "coder.toml"
    file.write_bytes(text if isinstance(text, bytes) else text.encode())

    got = error_of(client.get(URL), 400, "persona.malformed")
    put = error_of(client.put(URL, {"daily_usd": 5.0}, format="json"), 400, "persona.malformed")

    assert got == put
    assert got["message"].startswith(
        "persona file agents/hermes/personas/coder.toml is malformed: "
    )
    assert reason in got["message"]
    assert got["details"] == {"agent_id": "hermes", "persona_id": "coder"}
    assert file.read_bytes() == (text if isinstance(text, bytes) else text.encode())


def test_a_broken_file_keeps_the_last_good_caps_in_force_for_check_and_charge(
    client: APIClient, coder: Persona, data_dir: Path
) -> None:
    (data_dir / "agents" / "hermes" / "personas" / "coder.toml").write_text("[persona\n")

    check = client.post(f"{URL}/check", {"estimated_cost_usd": 1.5}, format="json")
    charge = client.post(f"{URL}/charge", CHARGE, format="json")

    assert (check.status_code, check.json()["allowed"], check.json()["limit"]) == (
        200,
        False,
        "daily",
    )
    assert charge.status_code == 200
    assert charge.json()["remaining"] == {"daily_usd": 0.95}


def test_a_persona_that_never_had_good_caps_refuses_check_but_records_a_charge(
    client: APIClient, coder: Persona, data_dir: Path
) -> None:
    """No caps were ever known, so nothing can be allowed; money already spent is still
    recorded (a charge is never refused for the state of the budget)."""
    (data_dir / "agents" / "hermes" / "personas" / "fresh.toml").write_text("[persona\n")
    fresh = BASE.format(a="hermes", p="fresh")

    check = client.post(f"{fresh}/check", CHECK, format="json")
    charge = client.post(f"{fresh}/charge", CHARGE, format="json")

    error = error_of(check, 400, "persona.malformed")
    assert error["details"] == {"agent_id": "hermes", "persona_id": "fresh"}
    assert not Hold.objects.exists()
    assert charge.status_code == 200
    assert charge.json()["spend"]["today_usd"] == 0.05
    error_of(client.get(fresh), 400, "persona.malformed")


def test_a_persona_file_that_cannot_be_read_is_persona_malformed(
    client: APIClient, coder: Persona, data_dir: Path
) -> None:
    (data_dir / "agents" / "hermes" / "personas" / "odd.toml").mkdir()

    error_of(client.get(BASE.format(a="hermes", p="odd")), 400, "persona.malformed")


# --- 404: agent.unknown and persona.not_found -----------------------------------------------

BAD_IDS = [
    "ghost",
    "..",
    ".",
    "Hermes",
    "HERMES",
    "a" * 65,
    "a" * 64,  # valid, but there is no such agent/persona
    "-hermes",
    "_hermes",
    "her.mes",
    "her mes",
    "hermès",
    "hermes%00",
    "%2e%2e",
]
ENDPOINTS: list[tuple[str, str, Any]] = [
    ("get", "", None),
    ("put", "", {"daily_usd": 1.0}),
    ("post", "/check", CHECK),
    ("post", "/charge", CHARGE),
    ("post", "/holds/hold_x/release", None),
]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize(("method", "tail", "body"), ENDPOINTS)
def test_an_unknown_or_impossible_agent_is_404_agent_unknown(
    client: APIClient, coder: Persona, bad: str, method: str, tail: str, body: Any
) -> None:
    url = BASE.format(a=bad, p="coder") + tail

    error = error_of(getattr(client, method)(url, body, format="json"), 404, "agent.unknown")

    assert set(error["details"]) == {"agent_id"}
    assert error["message"].startswith("unknown agent ")
    assert len(error["message"]) < 100  # long ids are cut in the message
    assert not Charge.objects.exists()


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize(("method", "tail", "body"), ENDPOINTS)
def test_an_unknown_or_impossible_persona_is_404_persona_not_found(
    client: APIClient, coder: Persona, bad: str, method: str, tail: str, body: Any
) -> None:
    url = BASE.format(a="hermes", p=bad) + tail

    error = error_of(getattr(client, method)(url, body, format="json"), 404, "persona.not_found")

    assert error["details"]["agent_id"] == "hermes"
    assert set(error["details"]) == {"agent_id", "persona_id"}
    assert error["message"].startswith("persona ")
    assert len(error["message"]) < 100


def test_an_id_with_a_slash_never_reaches_a_view(client: APIClient, coder: Persona) -> None:
    response = client.get(BASE.format(a="hermes", p="..%2F..%2Fcoder"))

    error_of(response, 404, "not_found")


def test_a_persona_file_outside_the_folder_is_never_read(
    client: APIClient, coder: Persona, data_dir: Path
) -> None:
    # A persona file one level up would be found by a path built from "..".
    (data_dir / "agents" / "hermes" / "x.toml").write_text('[persona]\nid = "x"\n')

    error_of(client.get(BASE.format(a="hermes", p="..%2Fx")), 404, "not_found")
    error_of(client.get(BASE.format(a="hermes", p="../x")), 404, "not_found")


# --- order of checks ------------------------------------------------------------------------


@pytest.mark.parametrize("tail", ["/check", "/charge"])
def test_check_and_charge_validate_the_body_before_the_agent_and_persona(
    client: APIClient, tail: str
) -> None:
    url = BASE.format(a="ghost", p="ghost") + tail

    error_of(raw_post(client, url, b"[]"), 400, "budget.invalid_body")
    code = "budget.invalid_estimate" if tail == "/check" else "budget.invalid_charge"
    error_of(client.post(url, {}, format="json"), 400, code)


def test_put_resolves_the_agent_then_the_body_then_the_persona(
    client: APIClient, coder: Persona
) -> None:
    error_of(raw_put(client, BASE.format(a="ghost", p="ghost"), b"[]"), 404, "agent.unknown")
    error_of(raw_put(client, BASE.format(a="hermes", p="ghost"), b"[]"), 400, "budget.invalid_body")
    bad_cap = BASE.format(a="hermes", p="ghost")
    error_of(client.put(bad_cap, {"daily_usd": -1}, format="json"), 400, "budget.invalid")
    good = {"daily_usd": 1.0}
    error_of(client.put(bad_cap, good, format="json"), 404, "persona.not_found")


def test_release_resolves_the_agent_and_persona_before_the_hold(
    client: APIClient, coder: Persona
) -> None:
    hold = _hold(client)

    error_of(
        client.post(BASE.format(a="ghost", p="coder") + f"/holds/{hold}/release"),
        404,
        "agent.unknown",
    )
    assert Hold.objects.get(pk=hold).state == "active"


# --- 405 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "tail", "allowed"),
    [
        ("post", "", "GET, PUT"),
        ("delete", "", "GET, PUT"),
        ("patch", "", "GET, PUT"),
        ("get", "/check", "POST"),
        ("put", "/check", "POST"),
        ("get", "/charge", "POST"),
        ("delete", "/charge", "POST"),
        ("get", "/holds/hold_x/release", "POST"),
        ("delete", "/holds/hold_x/release", "POST"),
    ],
)
def test_a_wrong_method_is_405_in_the_envelope_with_allow(
    client: APIClient, coder: Persona, method: str, tail: str, allowed: str
) -> None:
    response = getattr(client, method)(URL + tail)

    error = error_of(response, 405, "request.method_not_allowed")
    assert error["message"] == f'Method "{method.upper()}" not allowed.'
    assert set(response["Allow"].split(", ")) >= set(allowed.split(", "))
    assert not Charge.objects.exists()


# --- 413 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "tail"), [("POST", "/check"), ("POST", "/charge"), ("PUT", "")])
def test_a_body_over_the_limit_is_413_request_too_large(
    client: APIClient, coder: Persona, method: str, tail: str
) -> None:
    body = b'{"daily_usd": 1.0, "pad": "' + b"x" * 70_000 + b'"}'

    response = send(client, method, URL + tail, body)

    error = error_of(response, 413, "request.too_large")
    assert error == {
        "code": "request.too_large",
        "message": "request body is too large",
        "details": {},
    }


def test_the_body_limit_follows_hal0_max_body_bytes(
    client: APIClient, coder: Persona, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = b'{"estimated_cost_usd": 0.05}'

    at_limit = raw_post(client, f"{URL}/check", body + b" " * (100 - len(body)))
    over = raw_post(client, f"{URL}/check", body + b" " * (101 - len(body)))

    assert at_limit.status_code == 200
    error_of(over, 413, "request.too_large")


# --- 500 ------------------------------------------------------------------------------------


def test_an_unexpected_failure_is_500_internal_without_traceback_or_path(
    client: APIClient, coder: Persona, settings: Any, tmp_path: Path, caplog: Any
) -> None:
    """A data folder that is a file (an operator's mistake) makes the lookup fail with an
    OSError that names the absolute path; the client sees none of it, the log has it all."""
    not_a_folder = tmp_path / "data-is-a-file"
    not_a_folder.write_text("oops")
    settings.HAL0_DATA_DIR = not_a_folder

    with caplog.at_level(logging.ERROR, logger="hal0.errors"):
        response = client.post(f"{URL}/check", CHECK, format="json")

    error = error_of(response, 500, "internal")
    assert error == {"code": "internal", "message": "internal error", "details": {}}
    assert str(tmp_path) not in response.content.decode()
    [record] = [r for r in caplog.records if r.name == "hal0.errors"]
    assert record.exc_info is not None  # the operator still gets the traceback, in the log


@pytest.mark.parametrize("debug", [False, True])
def test_the_api_exception_handler_never_renders_the_exception(debug: bool, settings: Any) -> None:
    settings.DEBUG = debug
    secret = f"{settings.BASE_DIR}/var/hal0.sqlite3 is locked"

    response = exception_handler(RuntimeError(secret), {"view": None})

    assert response is not None
    assert response.status_code == 500
    assert response.data == {
        "error": {"code": "internal", "message": "internal error", "details": {}}
    }


def test_a_crash_outside_drf_under_api_is_500_in_the_envelope() -> None:
    request = RequestFactory().get("/api/agents/hermes/personas/coder/budget")

    response = handler500(request)

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    # The same compact bytes as DRF's own error answers.
    assert (
        response.content == b'{"error":{"code":"internal","message":"internal error","details":{}}}'
    )
    assert_no_path(response.content.decode())


def test_outside_api_a_crash_is_django_plain_500_page() -> None:
    response = handler500(RequestFactory().get("/admin/"))

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_errors_are_free_of_paths_even_with_debug(
    client: APIClient, coder: Persona, settings: Any, data_dir: Path
) -> None:
    settings.DEBUG = True
    (data_dir / "agents" / "hermes" / "personas" / "broken.toml").write_text("[persona\n")
    broken = BASE.format(a="hermes", p="broken")
    responses = [
        client.get(broken),
        client.put(broken, {"daily_usd": 1.0}, format="json"),
        client.post(f"{broken}/check", CHECK, format="json"),
        client.get(BASE.format(a="..", p="coder")),
        raw_post(client, f"{URL}/check", b"\xff"),
        client.post(f"{URL}/holds/..%5Cetc%5Cpasswd/release"),
    ]

    for response in responses:
        assert response.status_code >= 400
        assert_no_path(response.content.decode())


def test_with_debug_an_unknown_api_path_is_still_404_in_the_envelope(
    client: APIClient, settings: Any
) -> None:
    settings.DEBUG = True

    error_of(client.get("/api/agents/hermes/personas/coder/budget/nope"), 404, "not_found")
