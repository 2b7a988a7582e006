"""``manage.py ledger verify``: every difference between database and mirror is reported."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from budgets.ledger import mirror, reconcile
from hal0.money import usd_number
from tests.budgets.ledger_support import make_persona, path_of, record

pytestmark = pytest.mark.django_db


def verify(*args: str) -> str:
    out = io.StringIO()
    call_command("ledger", "verify", *args, stdout=out)
    return out.getvalue()


def verify_fails(*args: str) -> tuple[str, str]:
    out = io.StringIO()
    with pytest.raises(CommandError) as exc:
        call_command("ledger", "verify", *args, stdout=out)
    return out.getvalue(), str(exc.value)


def block_folder(data_dir: Path, agent_id: str, persona_id: str) -> Path:
    """Put a file where the persona's mirror folder goes, so appends fail."""
    blocker = data_dir / "agents" / agent_id / "personas" / persona_id
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("in the way")
    return blocker


def test_it_passes_when_every_charge_has_its_line(data_dir: Path) -> None:
    coder = make_persona("hermes", "coder")
    make_persona("hermes", "hermes")  # no charges, no file: also in step
    record(coder, 5)

    out = verify()

    assert "hermes/coder: ok (5 charges, 5 lines)" in out
    assert "hermes/hermes: ok (0 charges, 0 lines)" in out
    assert "2 personas, all in step" in out


def test_it_reports_charges_whose_append_failed_as_missing(data_dir: Path) -> None:
    persona = make_persona()
    record(persona, 2)
    # Move the mirror's folder aside and put a file in its place: appends fail.
    folder = path_of(persona).parent
    saved = folder.with_name("saved")
    folder.rename(saved)
    block_folder(data_dir, "hermes", "coder")
    lost = record(persona, 3)
    folder.unlink()
    saved.rename(folder)

    out, error = verify_fails()

    assert "hermes/coder: 3 missing (5 charges, 2 lines)" in out
    for charge in lost:
        assert f"missing (seq {charge.pk}): charge has no line" in out
    assert error == (
        "verify: differences in 1 of 1 persona; "
        "`manage.py ledger repair` fixes missing, duplicate and torn lines"
    )


def test_it_reports_a_line_of_another_persona_as_extra(data_dir: Path) -> None:
    coder = make_persona("hermes", "coder")
    other = make_persona("hermes", "hermes")
    record(coder, 1)
    [foreign] = record(other, 1)
    with path_of(coder).open("ab") as fh:
        fh.write(path_of(other).read_bytes())

    out, error = verify_fails("--persona", "coder")

    assert "hermes/coder: 1 extra (1 charges, 2 lines)" in out
    # Repair would leave an extra line as it is: verify does not send the operator there.
    assert error == (
        "verify: differences in 1 of 1 persona; "
        "only extra or mismatched lines, which need an operator (docs/ledger.md)"
    )
    assert f"extra (seq {foreign.pk}, line 2): no such charge for this persona" in out


def test_it_reports_a_line_whose_fields_differ_even_with_a_fresh_checksum(
    data_dir: Path,
) -> None:
    persona = make_persona()
    [charge] = record(persona, cost_nanos=420_000_000)
    path = path_of(persona)
    line = json.loads(path.read_bytes())
    line["cost_usd"] = 0.01
    path.write_bytes(mirror.encode_line(line))  # a valid checksum over a wrong amount

    out, _ = verify_fails()

    assert "1 mismatched" in out
    assert f"mismatched (seq {charge.pk}, line 1): differs in cost_usd" in out


def test_it_reports_a_line_with_a_wrong_checksum(data_dir: Path) -> None:
    persona = make_persona()
    [charge] = record(persona)
    path = path_of(persona)
    line = json.loads(path.read_bytes())
    line["sum"] = "0" * 16
    path.write_text(json.dumps(line, separators=(",", ":")) + "\n")

    out, _ = verify_fails()

    assert f"mismatched (seq {charge.pk}, line 1): bad checksum" in out


def test_it_reports_a_torn_last_line(data_dir: Path) -> None:
    persona = make_persona()
    record(persona, 2)
    path = path_of(persona)
    full = path.read_bytes()
    path.write_bytes(full[: len(full) - 30])  # the second append was cut short

    out, _ = verify_fails()

    assert "hermes/coder: 1 missing, torn last line (2 charges, 2 lines)" in out
    assert "torn (line 2): no newline at end of file" in out


def test_it_reports_a_torn_fragment_left_in_the_middle(data_dir: Path) -> None:
    persona = make_persona()
    record(persona, 1)
    with path_of(persona).open("ab") as fh:
        fh.write(b'{"seq":1')
    record(persona, 1)  # starts on a new line, leaving the fragment behind

    out, _ = verify_fails()

    assert "1 fragment" in out
    assert "fragment (line 2): not a JSON object" in out


def test_it_checks_only_the_selected_agent_and_persona(data_dir: Path) -> None:
    good = make_persona("hermes", "coder")
    bad = make_persona("other", "coder")
    record(good, 1)
    [charge] = record(bad, 1)
    path_of(bad).write_bytes(b"")

    assert "other/coder" not in verify("--agent", "hermes")
    out, _ = verify_fails("--agent", "other", "--persona", "coder")
    assert f"missing (seq {charge.pk})" in out


@pytest.mark.parametrize("args", [["--agent", "nobody"], ["--persona", "../etc"]])
def test_it_refuses_an_unknown_or_invalid_selection(args: list[str]) -> None:
    make_persona()
    with pytest.raises(CommandError):
        call_command("ledger", "verify", *args, stdout=io.StringIO())


def test_a_mirror_written_before_prices_existed_stays_in_step() -> None:
    persona = make_persona("hermes", "legacy")
    (charge,) = record(persona, 1)
    # The line exactly as the service wrote it before charges had a cost_source.
    old_line = {
        "seq": charge.pk,
        "ts": mirror.iso_utc(charge.ts),
        "agent_id": "hermes",
        "persona_id": "legacy",
        "surface": charge.surface,
        "model": charge.model,
        "cost_usd": usd_number(charge.cost_nanos or 0),
        "request_id": charge.request_id,
        "input_tokens": charge.input_tokens,
    }
    path_of(persona).write_bytes(mirror.encode_line(old_line))

    assert reconcile.verify_persona(persona).ok


def test_a_priced_charge_whose_line_lost_its_cost_source_is_a_mismatch() -> None:
    persona = make_persona("hermes", "priced")
    (charge,) = record(
        persona, 1, cost_source="catalogue", price_version="genai-prices 0.2.3", input_tokens=9
    )
    line = mirror.charge_line(charge, agent_id="hermes", persona_id="priced")
    assert line["cost_source"] == "catalogue"
    del line["cost_source"]
    path_of(persona).write_bytes(mirror.encode_line(line))

    assert reconcile.verify_persona(persona).counts["mismatched"] == 1
