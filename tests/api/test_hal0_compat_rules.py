"""hal0 compatibility, part 2 of 3: hal0's budget module, restated as our behaviours.

hal0 keeps its budget logic in one module (a budget dataclass, a parser for
``[persona.budget]``, a JSONL ledger, spend per window, the check and the charge
recorder) and pins it with 31 unit tests. We have no such module: the same behaviours
live in the budget services (``budgets.services``), the persona files and the ledger.
Each hal0 case is proven here through those services at a fixed instant (``now=``), or
over HTTP where the behaviour is only visible there (a PUT body, an estimate's
validation). The API cases are in ``test_hal0_compat_api.py``, the TOML round trip in
``tests/personas/test_hal0_compat_roundtrip.py``.

hal0 case (budget module) -> our test:

- budget default is empty
  -> test_an_empty_budget_block_means_no_caps_and_a_hard_cap
- budget to_dict omits unset caps
  -> test_the_budget_object_leaves_unset_caps_out
- budget to_dict preserves explicit zero
  -> test_a_cap_of_zero_is_shown_and_blocks_every_paid_call
- parse budget none returns empty budget
  -> test_a_persona_without_a_budget_table_has_no_caps
- parse budget full table
  -> test_a_full_budget_is_taken_as_given
- parse budget rejects negative
  -> test_a_negative_cap_is_refused
- parse budget rejects non number
  -> test_a_cap_that_is_a_string_is_refused
- parse budget rejects bool for number
  -> test_a_cap_that_is_a_bool_is_refused
- parse budget rejects non bool hard_cap
  -> test_a_hard_cap_that_is_not_a_bool_is_refused
- parse budget ignores unknown keys
  -> test_unknown_keys_in_the_file_are_kept_and_ignored
- parse budget accepts int as float
  -> test_an_integer_cap_is_a_number_of_dollars
- spend row round trip
  -> test_a_ledger_line_says_what_the_charge_answered
- spend row tolerates z suffix
  -> test_a_hal0_ledger_line_with_a_z_timestamp_is_imported_in_utc
- ledger round trip appends and reads
  -> test_no_charge_no_line_one_charge_one_line
- ledger skips malformed lines
  -> test_garbage_in_the_ledger_file_never_blinds_a_check
- ledger creates parent dirs on append
  -> test_the_first_charge_creates_the_personas_ledger_folder
- ledger for resolves canonical layout
  -> test_the_ledger_file_is_at_hal0s_path
- spend stats aggregates windows
  -> test_spend_is_summed_per_day_month_and_lifetime
- spend stats empty ledger zeroes
  -> test_no_charges_means_zero_spend_in_every_window
- check no cap allows any estimate
  -> test_without_caps_any_estimate_is_allowed_with_no_remaining
- check daily cap blocks
  -> test_the_daily_cap_blocks_an_estimate_over_todays_headroom
- check per call blocks independent of window
  -> test_the_per_call_cap_blocks_even_with_plenty_of_headroom
- check hard cap false warns but allows
  -> test_a_warn_only_budget_allows_but_says_which_cap_was_passed
- check most restrictive wins
  -> test_the_daily_cap_is_named_before_the_lifetime_cap
- check day boundary aggregation
  -> test_yesterdays_spend_does_not_count_today
- check lifetime breach
  -> test_old_spend_counts_against_the_lifetime_cap
- check rejects negative estimate
  -> test_a_negative_estimate_is_refused_before_any_rule
- check returns remaining pre call headroom
  -> test_remaining_is_the_headroom_before_this_call
- record charge appends with resolved timestamp
  -> test_a_charge_is_recorded_at_the_services_clock
- record charge round trip preserves metadata
  -> test_a_charge_keeps_its_surface_model_and_cost
- budget check dataclass defaults
  -> test_remaining_usd_is_always_a_mapping

Beyond hal0's cases, the rules of DESIGN.md section 4 that a client relies on are pinned
at their edges (``test_rule_*``): strict ``>`` at every cap, the order per-call, daily,
monthly, lifetime, the four reason texts, and active holds counting as spent.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from budgets.ledger import mirror
from budgets.models import Charge
from budgets.services import budget_charge, budget_check, budget_state
from hal0.money import to_nanos
from personas import paths
from personas.models import Persona
from personas.services import find_persona

pytestmark = pytest.mark.django_db

URL = "/api/agents/hermes/personas/coder/budget"
# hal0's tests run at noon UTC on 2026-05-29; so do these.
NOON = dt.datetime(2026, 5, 29, 12, 0, tzinfo=dt.UTC)
MIDNIGHT = dt.datetime(2026, 5, 29, 0, 0, tzinfo=dt.UTC)
Committing = Callable[..., AbstractContextManager[Any]]
MakePersona = Callable[..., Persona]

_request_ids = itertools.count(1)


def coverage_table(doc: str | None) -> list[tuple[str, str]]:
    """The ``- hal0 case`` / ``  -> our test`` pairs of a module docstring."""
    return re.findall(r"^- (.+)\n  -> (test_\w+)$", doc or "", re.MULTILINE)


def test_every_hal0_module_case_is_listed_once_and_names_a_test_of_this_module() -> None:
    table = coverage_table(__doc__)
    assert len(table) == 31
    assert len({case for case, _ in table}) == 31
    for _, name in table:
        assert callable(globals().get(name)), name


def usd(amount: str) -> int:
    """Exact nano-USD for a decimal text: usd("0.7") == 700_000_000."""
    return to_nanos(Decimal(amount))


def charge(
    persona: Persona,
    cost: str,
    *,
    at: dt.datetime = NOON,
    surface: str = "openrouter",
    model: str = "m",
    request_id: str | None = None,
) -> dict[str, Any]:
    return budget_charge(
        persona=persona,
        surface=surface,
        model=model,
        cost_nanos=usd(cost),
        request_id=request_id or f"r{next(_request_ids)}",
        now=at,
    )


def check(persona: Persona, estimate: str, *, at: dt.datetime = NOON) -> dict[str, Any]:
    return budget_check(persona=persona, estimate_nanos=usd(estimate), now=at)


def state(persona: Persona, *, at: dt.datetime = NOON) -> dict[str, Any]:
    return dict(budget_state(persona=persona, now=at))


@pytest.fixture
def coder(make_persona: MakePersona) -> Callable[[str], Persona]:
    """``coder("daily_usd = 1.0\\n")``: the persona hermes/coder with that budget block."""
    return lambda budget_toml: make_persona("hermes", "coder", budget_toml)


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Committing) -> Callable[[], Any]:
    """``with committed(): ...`` runs the after-commit work (the ledger file append)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def ledger_file() -> Path:
    return mirror.mirror_path("hermes", "coder")


def ledger_lines() -> list[dict[str, Any]]:
    text = ledger_file().read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def put(client: APIClient, body: Any) -> Any:
    return client.put(URL, json.dumps(body), content_type="application/json")


def error_of(response: Any, code: str) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


# ---------------------------------------------------------------------------------------
# The budget block


def test_an_empty_budget_block_means_no_caps_and_a_hard_cap(
    coder: Callable[[str], Persona],
) -> None:
    persona = coder("")
    now = state(persona)
    assert now["budget"] == {"hard_cap": True}
    assert now["remaining"] == {}
    assert now["status"] == "none"
    assert check(persona, "1000")["allowed"] is True


def test_the_budget_object_leaves_unset_caps_out(coder: Callable[[str], Persona]) -> None:
    persona = coder("daily_usd = 5.0\nhard_cap = false\n")
    assert state(persona)["budget"] == {"daily_usd": 5.0, "hard_cap": False}
    assert state(persona)["remaining"] == {"daily_usd": 5.0}


def test_a_cap_of_zero_is_shown_and_blocks_every_paid_call(coder: Callable[[str], Persona]) -> None:
    persona = coder("daily_usd = 0.0\n")
    assert state(persona)["budget"] == {"daily_usd": 0.0, "hard_cap": True}
    assert state(persona)["remaining"] == {"daily_usd": 0.0}
    # Zero is a cap, not "no cap": a free call fits (0 > 0 is false), a paid one does not.
    assert check(persona, "0")["allowed"] is True
    blocked = check(persona, "0.000000001")
    assert blocked["allowed"] is False
    assert "daily cap" in blocked["reason"]


# ---------------------------------------------------------------------------------------
# Parsing a budget (persona files, PUT bodies)


def test_a_persona_without_a_budget_table_has_no_caps(make_persona: MakePersona) -> None:
    persona = make_persona("hermes", "coder", budget_toml=None)
    assert state(persona)["budget"] == {"hard_cap": True}
    assert check(persona, "5")["allowed"] is True


def test_a_full_budget_is_taken_as_given(
    coder: Callable[[str], Persona], api_client: APIClient
) -> None:
    persona = coder("")
    caps = {
        "daily_usd": 1.0,
        "monthly_usd": 10.0,
        "lifetime_usd": 100.0,
        "per_call_max_usd": 0.5,
        "hard_cap": False,
    }
    response = put(api_client, caps)
    assert response.status_code == 200, response.content
    assert response.json()["budget"] == caps
    persona = find_persona("hermes", "coder")
    assert (
        persona.daily_cap_nanos,
        persona.monthly_cap_nanos,
        persona.lifetime_cap_nanos,
        persona.per_call_cap_nanos,
        persona.hard_cap,
    ) == (usd("1"), usd("10"), usd("100"), usd("0.5"), False)


def test_a_negative_cap_is_refused(
    coder: Callable[[str], Persona], api_client: APIClient, make_persona: MakePersona
) -> None:
    coder("")
    error = error_of(put(api_client, {"daily_usd": -1.0}), "budget.invalid")
    assert ">= 0" in error["message"]
    assert error["details"] == {"key": "daily_usd"}
    # The same value in a file makes the persona malformed rather than uncapped.
    persona = make_persona("hermes", "coder", "daily_usd = -1.0\n")
    assert ">= 0" in persona.load_error


def test_a_cap_that_is_a_string_is_refused(
    coder: Callable[[str], Persona], api_client: APIClient
) -> None:
    coder("")
    error = error_of(put(api_client, {"daily_usd": "abc"}), "budget.invalid")
    assert "must be a number" in error["message"]
    assert error["details"] == {"key": "daily_usd"}


def test_a_cap_that_is_a_bool_is_refused(
    coder: Callable[[str], Persona], api_client: APIClient, make_persona: MakePersona
) -> None:
    coder("")
    error = error_of(put(api_client, {"daily_usd": True}), "budget.invalid")
    assert error["details"] == {"key": "daily_usd"}
    persona = make_persona("hermes", "coder", "daily_usd = true\n")
    assert "daily_usd" in persona.load_error


def test_a_hard_cap_that_is_not_a_bool_is_refused(
    coder: Callable[[str], Persona], api_client: APIClient
) -> None:
    coder("")
    for value in ("yes", 1, None):
        error = error_of(put(api_client, {"hard_cap": value}), "budget.invalid")
        assert "hard_cap" in error["message"]
        assert error["details"] == {"key": "hard_cap"}


def test_unknown_keys_in_the_file_are_kept_and_ignored(
    coder: Callable[[str], Persona], api_client: APIClient
) -> None:
    persona = coder('daily_usd = 1.0\nweekly_usd = 9.99\nfuture_field = "x"\n')
    assert persona.load_error == ""
    assert state(persona)["budget"] == {"daily_usd": 1.0, "hard_cap": True}
    # weekly_usd is not a cap here: only the daily cap decides.
    assert check(persona, "1")["allowed"] is True
    # A PUT rewrites the known keys and leaves the unknown ones in the file.
    assert put(api_client, {"daily_usd": 2.0}).status_code == 200
    text = paths.persona_file("hermes", "coder").read_text(encoding="utf-8")
    assert "weekly_usd = 9.99" in text
    assert 'future_field = "x"' in text


def test_unknown_keys_in_a_put_body_are_refused_not_dropped(
    coder: Callable[[str], Persona], api_client: APIClient
) -> None:
    # Ours differs from hal0 on purpose (docs/api.md): hal0 drops an unknown PUT key
    # silently, so a typo ("daily_cap") would replace the block without the cap meant.
    coder("daily_usd = 1.0\n")
    error = error_of(put(api_client, {"daily_cap": 2.0}), "budget.invalid")
    assert error["details"] == {"key": "daily_cap"}
    assert state(find_persona("hermes", "coder"))["budget"]["daily_usd"] == 1.0


def test_an_integer_cap_is_a_number_of_dollars(
    coder: Callable[[str], Persona], api_client: APIClient
) -> None:
    assert state(coder("daily_usd = 5\n"))["budget"] == {"daily_usd": 5.0, "hard_cap": True}
    response = put(api_client, {"daily_usd": 5})
    assert response.status_code == 200, response.content
    # On the wire a float, as hal0 sends it: 5.0, not 5.
    assert response.content.startswith(b'{"budget":{"daily_usd":5.0,"hard_cap":true}')


# ---------------------------------------------------------------------------------------
# The ledger


def test_a_ledger_line_says_what_the_charge_answered(
    coder: Callable[[str], Persona], committed: Callable[[], Any]
) -> None:
    persona = coder("")
    with committed():
        row = charge(
            persona, "0.0421", surface="openrouter", model="claude-3.7", request_id="req-1"
        )["row"]
    (line,) = ledger_lines()
    assert dt.datetime.fromisoformat(line["ts"]) == dt.datetime.fromisoformat(row["ts"]) == NOON
    assert line["persona_id"] == "coder"
    for key in ("surface", "model", "cost_usd", "request_id"):
        assert line[key] == row[key]
    assert row == {
        "ts": "2026-05-29T12:00:00+00:00",
        "surface": "openrouter",
        "model": "claude-3.7",
        "cost_usd": 0.0421,
        "request_id": "req-1",
        "cost_source": "reported",
    }


def test_a_hal0_ledger_line_with_a_z_timestamp_is_imported_in_utc(
    coder: Callable[[str], Persona], tmp_path: Path
) -> None:
    persona = coder("daily_usd = 1.0\n")
    hal0_file = tmp_path / "spend.jsonl"
    hal0_file.write_text(
        '{"ts":"2026-05-29T11:00:00Z","persona_id":"coder","surface":"or",'
        '"model":"x","cost_usd":0.01,"request_id":"r1"}\n',
        encoding="utf-8",
    )
    call_command("ledger", "import", str(hal0_file), "--agent", "hermes", "--persona", "coder")
    imported = Charge.objects.get(persona=persona)
    assert imported.ts == dt.datetime(2026, 5, 29, 11, 0, tzinfo=dt.UTC)
    assert state(persona)["spend"]["today_usd"] == 0.01


def test_no_charge_no_line_one_charge_one_line(
    coder: Callable[[str], Persona], committed: Callable[[], Any]
) -> None:
    persona = coder("")
    assert not ledger_file().exists()
    assert not Charge.objects.filter(persona=persona).exists()
    with committed():
        charge(persona, "0.1", model="m1", request_id="r-1")
    (line,) = ledger_lines()
    stored = Charge.objects.get(persona=persona)
    assert (line["seq"], line["model"], line["cost_usd"], line["request_id"]) == (
        stored.pk,
        "m1",
        0.1,
        "r-1",
    )
    assert stored.cost_nanos == usd("0.1")


def test_garbage_in_the_ledger_file_never_blinds_a_check(
    coder: Callable[[str], Persona], committed: Callable[[], Any], tmp_path: Path
) -> None:
    persona = coder("daily_usd = 1.0\n")
    with committed():
        charge(persona, "0.5")
    # Someone (or a crash) leaves junk in the file: not JSON, an empty object, a torn line.
    with ledger_file().open("a", encoding="utf-8") as fh:
        fh.write('not json\n\n{}\n{"ts":"2026-05-29T')
    # The database is the ledger of record: spend and the check are unchanged.
    assert state(persona)["spend"]["today_usd"] == 0.5
    assert check(persona, "0.5")["allowed"] is True
    assert check(persona, "0.6")["allowed"] is False
    with committed():
        charge(persona, "0.25", request_id="after-junk")
    # The next line starts on a line of its own and reads back whole.
    last = ledger_file().read_text(encoding="utf-8").splitlines()[-1]
    assert json.loads(last)["request_id"] == "after-junk"
    assert state(persona)["spend"]["today_usd"] == 0.75

    # Reading a hal0 file with junk lines imports the good line and counts the rest.
    hal0_file = tmp_path / "hal0-spend.jsonl"
    hal0_file.write_text(
        "not json\n"
        '{"ts":"2026-05-29T00:00:00+00:00","persona_id":"coder","surface":"or",'
        '"model":"m","cost_usd":0.125,"request_id":"h1"}\n'
        "\n"
        "{}\n",
        encoding="utf-8",
    )
    # It exits 1 for the two malformed lines; the good one is in all the same.
    with pytest.raises(CommandError, match="2 malformed lines were not imported"):
        call_command("ledger", "import", str(hal0_file), "--agent", "hermes", "--persona", "coder")
    assert Charge.objects.filter(persona=persona, request_id="h1").count() == 1
    assert state(persona)["spend"]["today_usd"] == 0.875


def test_the_first_charge_creates_the_personas_ledger_folder(
    coder: Callable[[str], Persona], committed: Callable[[], Any]
) -> None:
    persona = coder("")
    folder = ledger_file().parent
    assert not folder.exists()
    with committed():
        charge(persona, "0.01")
    assert folder.is_dir()
    assert ledger_file().is_file()


def test_the_ledger_file_is_at_hal0s_path(
    coder: Callable[[str], Persona], committed: Callable[[], Any], data_dir: Path
) -> None:
    persona = coder("")
    with committed():
        charge(persona, "0.01")
    expected = data_dir / "agents" / "hermes" / "personas" / "coder" / "spend.jsonl"
    assert ledger_file() == expected
    assert expected.is_file()
    assert sorted(p.name for p in expected.parent.iterdir()) == ["spend.jsonl"]


# ---------------------------------------------------------------------------------------
# Spend per window


def test_spend_is_summed_per_day_month_and_lifetime(coder: Callable[[str], Persona]) -> None:
    persona = coder("")
    charge(persona, "0.1", at=NOON.replace(hour=1))
    charge(persona, "0.2", at=NOON.replace(hour=2))
    charge(persona, "0.5", at=NOON - dt.timedelta(days=1))  # yesterday, same month
    charge(persona, "1.0", at=NOON - dt.timedelta(days=40))  # the month before
    assert state(persona)["spend"] == {"today_usd": 0.3, "mtd_usd": 0.8, "lifetime_usd": 1.8}


def test_no_charges_means_zero_spend_in_every_window(coder: Callable[[str], Persona]) -> None:
    assert state(coder(""))["spend"] == {"today_usd": 0.0, "mtd_usd": 0.0, "lifetime_usd": 0.0}


# ---------------------------------------------------------------------------------------
# The check


def test_without_caps_any_estimate_is_allowed_with_no_remaining(
    coder: Callable[[str], Persona],
) -> None:
    result = check(coder(""), "5")
    assert (result["allowed"], result["reason"], result["remaining_usd"]) == (True, None, {})


def test_the_daily_cap_blocks_an_estimate_over_todays_headroom(
    coder: Callable[[str], Persona],
) -> None:
    persona = coder("daily_usd = 1.0\n")
    charge(persona, "0.7", at=NOON.replace(hour=1))
    result = check(persona, "0.5")
    assert result["allowed"] is False
    assert "daily cap" in result["reason"]
    assert result["remaining_usd"] == {"daily": 0.3}


def test_the_per_call_cap_blocks_even_with_plenty_of_headroom(
    coder: Callable[[str], Persona],
) -> None:
    result = check(coder("per_call_max_usd = 0.05\ndaily_usd = 100.0\n"), "0.10")
    assert result["allowed"] is False
    assert "per-call cap" in result["reason"]
    assert result["remaining_usd"] == {"daily": 100.0}


def test_a_warn_only_budget_allows_but_says_which_cap_was_passed(
    coder: Callable[[str], Persona],
) -> None:
    persona = coder("daily_usd = 1.0\nhard_cap = false\n")
    charge(persona, "0.9", at=NOON.replace(hour=1))
    result = check(persona, "0.5")
    assert result["allowed"] is True
    assert "daily cap" in result["reason"]
    assert result["hard_cap"] is False


def test_the_daily_cap_is_named_before_the_lifetime_cap(coder: Callable[[str], Persona]) -> None:
    persona = coder("daily_usd = 1.0\nlifetime_usd = 2.0\n")
    charge(persona, "0.9", at=NOON.replace(hour=1))
    # 0.5 breaks the daily cap only; 1.5 breaks both and the daily cap still decides.
    for estimate in ("0.5", "1.5"):
        result = check(persona, estimate)
        assert result["allowed"] is False
        assert "daily cap" in result["reason"]
        assert "lifetime cap" not in result["reason"]


def test_yesterdays_spend_does_not_count_today(coder: Callable[[str], Persona]) -> None:
    persona = coder("daily_usd = 1.0\n")
    charge(persona, "10.0", at=NOON - dt.timedelta(hours=23))  # 13:00 yesterday
    result = check(persona, "0.5")
    assert result["allowed"] is True
    assert result["remaining_usd"] == {"daily": 1.0}
    # One second before midnight is yesterday too; midnight itself is today.
    charge(persona, "0.4", at=MIDNIGHT - dt.timedelta(seconds=1))
    charge(persona, "0.3", at=MIDNIGHT)
    assert check(persona, "0.5")["remaining_usd"] == {"daily": 0.7}


def test_old_spend_counts_against_the_lifetime_cap(coder: Callable[[str], Persona]) -> None:
    persona = coder("lifetime_usd = 10.0\n")
    charge(persona, "9.5", at=MIDNIGHT - dt.timedelta(days=70))
    result = check(persona, "1.0", at=MIDNIGHT)
    assert result["allowed"] is False
    assert "lifetime cap" in result["reason"]
    assert result["remaining_usd"] == {"lifetime": 0.5}


@pytest.mark.parametrize("estimate", [-0.01, -1, "-0.01"])
def test_a_negative_estimate_is_refused_before_any_rule(
    coder: Callable[[str], Persona], estimate: Any
) -> None:
    coder("daily_usd = 1.0\n")
    body = json.dumps({"estimated_cost_usd": estimate})
    if isinstance(estimate, str):
        body = body.replace(f'"{estimate}"', estimate)  # a JSON number, not a string
    response = APIClient().post(f"{URL}/check", body, content_type="application/json")
    error = error_of(response, "budget.invalid_estimate")
    assert ">= 0" in error["message"]


def test_remaining_is_the_headroom_before_this_call(coder: Callable[[str], Persona]) -> None:
    persona = coder("daily_usd = 10.0\nmonthly_usd = 100.0\n")
    charge(persona, "1.0", at=MIDNIGHT.replace(hour=1))
    result = check(persona, "2.0", at=MIDNIGHT.replace(hour=2))
    assert result["allowed"] is True
    # Before the call: 10 - 1 and 100 - 1, not minus the estimate as well.
    assert result["remaining_usd"] == {"daily": 9.0, "monthly": 99.0}


# ---------------------------------------------------------------------------------------
# Recording a charge


def test_a_charge_is_recorded_at_the_services_clock(
    coder: Callable[[str], Persona], committed: Callable[[], Any]
) -> None:
    persona = coder("")
    with committed():
        answer = charge(persona, "0.05", model="claude-3.7", request_id="r1")
    stored = Charge.objects.get(persona=persona)
    assert stored.ts == NOON
    assert dt.datetime.fromisoformat(answer["row"]["ts"]) == NOON
    (line,) = ledger_lines()
    assert dt.datetime.fromisoformat(line["ts"]) == NOON


def test_a_charge_keeps_its_surface_model_and_cost(
    coder: Callable[[str], Persona], committed: Callable[[], Any]
) -> None:
    persona = coder("")
    with committed():
        answer = charge(
            persona,
            "0.42",
            surface="fusion",
            model="meta/llama-3.1-405b",
            request_id="req-meaning-of-life",
        )
    stored = Charge.objects.get(persona=persona)
    assert (stored.surface, stored.model, stored.cost_nanos, stored.request_id) == (
        "fusion",
        "meta/llama-3.1-405b",
        420_000_000,
        "req-meaning-of-life",
    )
    (line,) = ledger_lines()
    expected = {
        "surface": "fusion",
        "model": "meta/llama-3.1-405b",
        "cost_usd": 0.42,
        "request_id": "req-meaning-of-life",
    }
    assert {k: line[k] for k in expected} == expected
    assert {k: answer["row"][k] for k in expected} == expected


def test_remaining_usd_is_always_a_mapping(coder: Callable[[str], Persona]) -> None:
    # No caps: an empty mapping, never null; per-call alone adds no entry either.
    assert check(coder(""), "0")["remaining_usd"] == {}
    assert check(coder("per_call_max_usd = 1.0\n"), "0")["remaining_usd"] == {}
    assert check(coder("monthly_usd = 3.0\n"), "0")["remaining_usd"] == {"monthly": 3.0}


# ---------------------------------------------------------------------------------------
# The rules at their edges (DESIGN.md section 4, beyond hal0's own cases)

ONE_NANO = "0.000000001"


@pytest.mark.parametrize(
    ("budget_toml", "spent", "headroom", "label"),
    [
        ("per_call_max_usd = 0.25\n", "0", "0.25", "per-call cap"),
        ("daily_usd = 1.0\n", "0.75", "0.25", "daily cap"),
        ("monthly_usd = 1.0\n", "0.75", "0.25", "monthly cap"),
        ("lifetime_usd = 1.0\n", "0.75", "0.25", "lifetime cap"),
    ],
)
def test_rule_an_estimate_equal_to_the_headroom_fits_one_nano_more_does_not(
    coder: Callable[[str], Persona], budget_toml: str, spent: str, headroom: str, label: str
) -> None:
    persona = coder(budget_toml)
    if spent != "0":
        charge(persona, spent, at=NOON.replace(hour=1))
    fits = check(persona, headroom)
    assert (fits["allowed"], fits["reason"]) == (True, None)
    over = check(persona, str(Decimal(headroom) + Decimal(ONE_NANO)))
    assert over["allowed"] is False
    assert label in over["reason"]
    for other in {"per-call cap", "daily cap", "monthly cap", "lifetime cap"} - {label}:
        assert other not in over["reason"]


def test_rule_the_order_is_per_call_then_daily_then_monthly_then_lifetime(
    coder: Callable[[str], Persona],
) -> None:
    windows = "daily_usd = 3.0\nmonthly_usd = 4.0\nlifetime_usd = 5.0\n"
    persona = coder("per_call_max_usd = 10.0\n" + windows)
    charge(persona, "2.0", at=NOON - dt.timedelta(days=40))  # the month before
    charge(persona, "1.5", at=NOON - dt.timedelta(days=1))  # yesterday, this month
    charge(persona, "0.5")  # today
    # Headroom now: daily 3 - 0.5 = 2.5, monthly 4 - 2 = 2, lifetime 5 - 4 = 1.
    expected = {
        "1.0": (None, None),
        "1.5": ("lifetime", "lifetime cap"),  # breaks lifetime only
        "2.2": ("monthly", "monthly cap"),  # breaks monthly and lifetime
        "2.6": ("daily", "daily cap"),  # breaks all three windows
    }
    for estimate, (limit, label) in expected.items():
        result = check(persona, estimate)
        assert result["limit"] == limit, estimate
        assert (result["reason"] is None) if label is None else (label in result["reason"])
    # A per-call cap the estimate also breaks comes before every window.
    persona = coder("per_call_max_usd = 1.0\n" + windows)
    result = check(persona, "2.6")
    assert result["limit"] == "per_call"
    assert "per-call cap" in result["reason"]


def test_rule_a_warn_only_budget_names_the_same_rule_it_would_block_on(
    coder: Callable[[str], Persona],
) -> None:
    persona = coder("per_call_max_usd = 0.1\ndaily_usd = 0.05\nhard_cap = false\n")
    result = check(persona, "0.2")
    assert result["allowed"] is True
    assert "per-call cap" in result["reason"]
    assert check(persona, "0.08")["reason"] is not None
    assert "daily cap" in check(persona, "0.08")["reason"]


def test_rule_remaining_never_goes_below_zero(coder: Callable[[str], Persona]) -> None:
    persona = coder("daily_usd = 1.0\nlifetime_usd = 1.0\n")
    charge(persona, "1.5")
    assert check(persona, "0")["remaining_usd"] == {"daily": 0.0, "lifetime": 0.0}
    assert state(persona)["remaining"] == {"daily_usd": 0.0, "lifetime_usd": 0.0}
    # With nothing left, a free call still fits (0 > 0 is false) and a paid one does not.
    assert check(persona, "0")["allowed"] is True
    assert check(persona, ONE_NANO)["allowed"] is False


def test_rule_an_active_hold_counts_as_spent(coder: Callable[[str], Persona]) -> None:
    persona = coder("daily_usd = 1.0\n")
    held = budget_check(persona=persona, estimate_nanos=usd("0.6"), reserve=True, now=NOON)
    assert held["allowed"] is True
    after = check(persona, "0.5")
    assert after["allowed"] is False
    assert after["remaining_usd"] == {"daily": 0.4}
    # GET's remaining is cap - spent (hal0's definition); holds show as held_usd.
    assert state(persona)["remaining"] == {"daily_usd": 1.0}
    assert state(persona)["held_usd"] == 0.6


def test_rule_amounts_are_compared_at_nano_usd_precision(coder: Callable[[str], Persona]) -> None:
    # hal0 compares binary floats, so 0.1 + 0.2 (0.30000000000000004) breaks a 0.3 cap
    # there; here amounts are exact nano-USD and finer digits are rounded (docs/api.md,
    # Limits), so that estimate is 0.3 USD and fits. One nano-USD more does not.
    coder("per_call_max_usd = 0.3\n")
    answers = {
        text: APIClient()
        .post(f"{URL}/check", f'{{"estimated_cost_usd": {text}}}', content_type="application/json")
        .json()
        for text in ("0.30000000000000004", "0.300000001")
    }
    assert answers["0.30000000000000004"]["allowed"] is True
    assert answers["0.300000001"]["allowed"] is False
