"""``manage.py ledger import``: a hal0 spend.jsonl, each line once, malformed lines counted."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from budgets.ledger import mirror, reconcile
from budgets.models import Charge
from personas.models import Persona
from tests.budgets.ledger_support import make_persona, path_of

pytestmark = pytest.mark.django_db(transaction=True)


def hal0_line(i: int, **overrides: Any) -> str:
    """A line as hal0 wrote it: its own keys, a float cost, an offset on the time."""
    row: dict[str, Any] = {
        "ts": f"2025-02-{1 + i % 28:02d}T10:{i % 60:02d}:00.123456+00:00",
        "persona_id": "coder",
        "surface": "openrouter",
        "model": "anthropic/claude-3.7-sonnet",
        "cost_usd": 0.0421,
        "request_id": f"req-{i}",
    }
    row.update(overrides)
    return json.dumps(row)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def run_import(path: Path, agent: str = "hermes", persona: str = "coder") -> str:
    out = io.StringIO()
    call_command("ledger", "import", str(path), "--agent", agent, "--persona", persona, stdout=out)
    return out.getvalue()


def run_import_failing(path: Path) -> tuple[str, str]:
    """An import with malformed lines: its output, and the error it exits 1 with."""
    out = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command(
            "ledger", "import", str(path), "--agent", "hermes", "--persona", "coder", stdout=out
        )
    return out.getvalue(), str(excinfo.value)


@pytest.fixture
def persona() -> Persona:
    return make_persona("hermes", "coder")


def test_it_imports_every_line_with_exact_amounts_and_utc_times(
    persona: Persona, tmp_path: Path
) -> None:
    source = write(
        tmp_path / "spend.jsonl",
        [
            hal0_line(1, cost_usd=0.42, ts="2025-02-01T23:59:00+02:00"),
            hal0_line(2, cost_usd=0.1, input_tokens=10, output_tokens=5),
        ],
    )

    out = run_import(source)

    assert out.strip().splitlines()[-1] == "imported 2, skipped 0 already present, malformed 0"
    first, second = Charge.objects.filter(persona=persona).order_by("id")
    assert first.cost_nanos == 420_000_000
    assert first.ts.isoformat() == "2025-02-01T21:59:00+00:00"
    assert first.source == "import"
    assert len(first.import_key) == 64
    assert second.cost_nanos == 100_000_000
    assert (second.input_tokens, second.output_tokens) == (10, 5)


def test_imported_charges_are_mirrored_and_verify_passes(persona: Persona, tmp_path: Path) -> None:
    run_import(write(tmp_path / "spend.jsonl", [hal0_line(i) for i in range(3)]))

    lines = list(mirror.read_lines(path_of(persona)))
    assert [ln.obj["request_id"] for ln in lines if ln.obj] == ["req-0", "req-1", "req-2"]
    assert all(r.ok for r in reconcile.verify([persona]))


def test_running_it_again_imports_nothing_new(persona: Persona, tmp_path: Path) -> None:
    source = write(tmp_path / "spend.jsonl", [hal0_line(i) for i in range(5)])
    run_import(source)

    out = run_import(source)

    assert "imported 0, skipped 5 already present, malformed 0" in out
    assert Charge.objects.filter(persona=persona).count() == 5


def test_lines_added_to_the_file_later_are_imported_on_the_next_run(
    persona: Persona, tmp_path: Path
) -> None:
    source = write(tmp_path / "spend.jsonl", [hal0_line(i) for i in range(3)])
    run_import(source)
    write(source, [hal0_line(i) for i in range(5)])

    assert "imported 2, skipped 3 already present" in run_import(source)


def test_the_same_line_twice_in_a_file_is_one_charge(persona: Persona, tmp_path: Path) -> None:
    out = run_import(write(tmp_path / "spend.jsonl", [hal0_line(1), hal0_line(1)]))

    assert "imported 1, skipped 1 already present" in out
    assert Charge.objects.filter(persona=persona).count() == 1


def test_malformed_and_naive_lines_are_skipped_with_their_line_numbers(
    persona: Persona, tmp_path: Path
) -> None:
    source = write(
        tmp_path / "spend.jsonl",
        [
            hal0_line(1),
            "{not json",
            hal0_line(3, ts="2025-02-01T10:00:00"),  # naive: no offset
            hal0_line(4, cost_usd=-1),
            hal0_line(5, cost_usd="0.1"),
            hal0_line(6, surface=""),
            "[1, 2]",
            hal0_line(8, persona_id="hermes"),
            hal0_line(9, cost_usd=None),  # unknown cost: imported, not refused
            hal0_line(10, ts="yesterday"),
            hal0_line(11, request_id="a\x00b"),  # PostgreSQL could not store it
        ],
    )

    out, error = run_import_failing(source)

    assert out.strip().splitlines()[-1] == "imported 2, skipped 0 already present, malformed 9"
    assert error == "import: 9 malformed lines were not imported (listed above)"
    assert "line 2: not valid JSON" in out
    assert "line 3: ts has no UTC offset (naive timestamp)" in out
    assert "line 4: cost_usd must be >= 0" in out
    assert "line 5: cost_usd must be a number" in out
    assert "line 6: surface must be a non-empty string" in out
    assert "line 7: not a JSON object" in out
    assert "line 8: persona_id 'hermes' is not this persona" in out
    assert "line 10: ts is not an ISO 8601 timestamp" in out
    assert "line 11: request_id must be printable text, without U+0000 at index 1" in out
    unknown = Charge.objects.get(persona=persona, request_id="req-9")
    assert unknown.cost_nanos is None
    # Fixing the file and importing again brings in exactly the repaired lines.
    write(source, [hal0_line(1), hal0_line(3, ts="2025-02-01T10:00:00+00:00")])
    assert "imported 1, skipped 1 already present, malformed 0" in run_import(source)


def test_a_torn_last_line_counts_as_malformed(persona: Persona, tmp_path: Path) -> None:
    source = tmp_path / "spend.jsonl"
    source.write_text(hal0_line(1) + "\n" + hal0_line(2)[:20])

    out, _ = run_import_failing(source)

    assert "imported 1, skipped 0 already present, malformed 1" in out


def test_it_imports_across_batches_and_keeps_counting(persona: Persona, tmp_path: Path) -> None:
    from budgets.ledger import importer

    source = write(tmp_path / "spend.jsonl", [hal0_line(i) for i in range(25)])
    result = importer.import_file(source, persona=persona, batch_size=7)
    again = importer.import_file(source, persona=persona, batch_size=4)

    assert (result.imported, result.skipped, result.malformed) == (25, 0, 0)
    assert (again.imported, again.skipped) == (0, 25)
    assert Charge.objects.filter(persona=persona).count() == 25


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent", "hermes", "--persona", "ghost"], "no persona hermes/ghost"),
        (["--agent", "../x", "--persona", "coder"], "valid ids"),
    ],
)
def test_it_refuses_an_unknown_persona(
    persona: Persona, tmp_path: Path, args: list[str], message: str
) -> None:
    source = write(tmp_path / "spend.jsonl", [hal0_line(1)])
    with pytest.raises(CommandError, match=message):
        call_command("ledger", "import", str(source), *args, stdout=io.StringIO())


def test_it_refuses_a_missing_file_without_showing_its_path(
    persona: Persona, tmp_path: Path
) -> None:
    with pytest.raises(CommandError) as exc:
        run_import(tmp_path / "nope" / "spend.jsonl")
    assert "no such file" in str(exc.value)
    assert str(tmp_path) not in str(exc.value)


def test_a_line_of_our_own_mirror_keeps_its_tokens_and_cost_source(
    persona: Persona, tmp_path: Path
) -> None:
    source = write(
        tmp_path / "spend.jsonl",
        [
            hal0_line(
                1,
                cost_usd=0.0456,
                input_tokens=20_000,
                output_tokens=1_000,
                cache_read_tokens=12_000,
                cache_write_tokens=4_000,
                cost_source="catalogue",
                price_version="genai-prices 0.2.3",
            ),
            hal0_line(2, cost_usd=None, input_tokens=5, cost_source="unpriced"),
            hal0_line(3, cost_usd=None),
        ],
    )

    assert run_import(source).strip().endswith("imported 3, skipped 0 already present, malformed 0")

    priced, unpriced, unknown = Charge.objects.filter(persona=persona).order_by("id")
    assert (priced.cost_nanos, priced.cost_source, priced.price_version) == (
        45_600_000,
        "catalogue",
        "genai-prices 0.2.3",
    )
    assert (priced.cache_read_tokens, priced.cache_write_tokens) == (12_000, 4_000)
    assert (unpriced.cost_nanos, unpriced.cost_source) == (None, "unpriced")
    # A hal0 line without a cost is unpriced too: never $0.00.
    assert (unknown.cost_nanos, unknown.cost_source) == (None, "unpriced")
    assert reconcile.verify_persona(persona).ok


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"cost_source": "unpriced"}, "cost_source must be one of"),
        ({"cost_usd": None, "cost_source": "catalogue"}, "with no cost_usd"),
        ({"cache_read_tokens": -1}, "cache_read_tokens must be a whole number"),
        ({"price_version": 3}, "price_version must be a string"),
    ],
)
def test_inconsistent_pricing_fields_make_a_line_malformed(
    persona: Persona, tmp_path: Path, overrides: dict[str, Any], reason: str
) -> None:
    source = write(tmp_path / "spend.jsonl", [hal0_line(1, **overrides)])

    out, _ = run_import_failing(source)

    assert "malformed 1" in out
    assert reason in out


def test_importing_an_older_line_again_keeps_its_import_key(
    persona: Persona, tmp_path: Path
) -> None:
    from budgets.ledger.importer import import_key

    fields = {
        "ts": __import__("datetime").datetime(2025, 2, 1, tzinfo=__import__("datetime").UTC),
        "surface": "s",
        "model": "m",
        "cost_nanos": 1,
        "request_id": "r",
        "input_tokens": None,
        "output_tokens": None,
    }
    with_defaults = {
        **fields,
        "cost_source": "reported",
        "price_version": "",
        "cache_read_tokens": None,
        "cache_write_tokens": None,
    }

    # Lines imported before the pricing fields existed are recognised as already present.
    assert import_key(with_defaults) == import_key(fields)
