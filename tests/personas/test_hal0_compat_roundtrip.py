"""hal0 compatibility, part 3 of 3: a persona's ``[persona.budget]`` survives a write and
a read, as hal0 pins it in its persona round-trip tests (7 cases).

hal0 saves a whole persona from a dataclass and loads it back; we never write a whole
persona, only its budget block (``render_budget``), and read files with
``parse_persona_text``. So each case writes a real file under ``tmp_path`` with
``write_atomic`` and parses what is on disk. The API cases are in
``tests/api/test_hal0_compat_api.py``, hal0's budget module in
``tests/api/test_hal0_compat_rules.py``.

hal0 case (persona TOML round trip) -> our test:

- persona with budget round trips
  -> test_a_full_budget_reads_back_as_written
- persona empty budget round trips
  -> test_an_empty_budget_reads_back_as_no_caps_and_a_hard_cap
- persona hard_cap false round trips
  -> test_a_warn_only_budget_reads_back_warn_only
- persona explicit zero budget round trips
  -> test_a_zero_cap_reads_back_as_zero_not_as_no_cap
- seed personas have empty budget by default
  -> test_the_seed_personas_start_with_no_caps_and_a_hard_cap
- persona with budget preserves other fields
  -> test_writing_a_budget_keeps_everything_else_of_the_persona
- malformed budget in toml raises persona error
  -> test_a_negative_cap_in_a_file_makes_the_persona_malformed

Where DESIGN.md goes further than hal0 (``reprovision --repair`` keeps the operator's
budget block rather than restoring the seed's), that is tested with reprovision itself
(``tests/personas/test_reprovision.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from personas import paths, seeds
from personas.models import Agent
from personas.toml_store import (
    BudgetSpec,
    PersonaMalformed,
    PersonaSpec,
    parse_persona_text,
    render_budget,
    write_atomic,
)

USD = 1_000_000_000
CENT = USD // 100

BARE = """\
[persona]
id = "{id}"
display_name = "{name}"
"""


def coverage_table(doc: str | None) -> list[tuple[str, str]]:
    """The ``- hal0 case`` / ``  -> our test`` pairs of a module docstring."""
    return re.findall(r"^- (.+)\n  -> (test_\w+)$", doc or "", re.MULTILINE)


def test_every_hal0_round_trip_case_is_listed_once_and_names_a_test_of_this_module() -> None:
    table = coverage_table(__doc__)
    assert len(table) == 7
    assert len({case for case, _ in table}) == 7
    for _, name in table:
        assert callable(globals().get(name)), name


def round_trip(folder: Path, persona_id: str, spec: BudgetSpec, text: str | None = None) -> str:
    """Write ``spec`` into the persona's file (made from ``text``) and return what is on disk."""
    path = folder / f"{persona_id}.toml"
    source = text if text is not None else BARE.format(id=persona_id, name=persona_id.title())
    write_atomic(path, render_budget(source, spec))
    return path.read_text(encoding="utf-8")


def load(text: str, persona_id: str) -> PersonaSpec:
    return parse_persona_text(text, stem=persona_id)


def test_a_full_budget_reads_back_as_written(tmp_path: Path) -> None:
    spec = BudgetSpec(
        daily_nanos=250 * CENT,
        monthly_nanos=25 * USD,
        lifetime_nanos=200 * USD,
        per_call_nanos=10 * CENT,
        hard_cap=True,
    )
    text = round_trip(tmp_path, "example", spec)
    assert load(text, "example").budget == spec
    # Exact: 0.10 USD is 100,000,000 nano-USD on the way back, not 0.1000000000000000055.
    assert load(text, "example").budget.per_call_nanos == 100_000_000
    assert load(text, "example").budget.to_api() == {
        "daily_usd": 2.5,
        "monthly_usd": 25.0,
        "lifetime_usd": 200.0,
        "per_call_max_usd": 0.1,
        "hard_cap": True,
    }


def test_an_empty_budget_reads_back_as_no_caps_and_a_hard_cap(tmp_path: Path) -> None:
    text = round_trip(tmp_path, "ex", BudgetSpec())
    budget = load(text, "ex").budget
    assert budget == BudgetSpec()
    assert budget.has_caps is False
    assert budget.hard_cap is True
    # The block is written with hard_cap alone, so an operator sees it is enforced.
    assert text.endswith("[persona.budget]\nhard_cap = true\n")


def test_a_warn_only_budget_reads_back_warn_only(tmp_path: Path) -> None:
    spec = BudgetSpec(daily_nanos=USD, hard_cap=False)
    budget = load(round_trip(tmp_path, "warn", spec), "warn").budget
    assert budget.hard_cap is False
    assert budget.daily_nanos == USD
    assert budget == spec


def test_a_zero_cap_reads_back_as_zero_not_as_no_cap(tmp_path: Path) -> None:
    text = round_trip(tmp_path, "fenced", BudgetSpec(daily_nanos=0))
    budget = load(text, "fenced").budget
    assert budget.daily_nanos == 0
    assert budget.monthly_nanos is None
    assert budget.has_caps is True
    assert budget.to_api() == {"daily_usd": 0.0, "hard_cap": True}
    assert "daily_usd = 0.0" in text


@pytest.mark.django_db
def test_the_seed_personas_start_with_no_caps_and_a_hard_cap(agent: Agent) -> None:
    for seed in (seeds.HERMES, seeds.CODER):
        on_disk = paths.persona_file(agent.id, seed.id).read_text(encoding="utf-8")
        assert on_disk == seed.text
        budget = load(on_disk, seed.id).budget
        assert budget.has_caps is False
        # ...but hard_cap is already true, so setting a cap later enforces it.
        assert budget.hard_cap is True
        assert budget == BudgetSpec()


FULL = '''\
# Operator's notes: kept.
[persona]
id = "full"
display_name = "Full"
summary = "A persona with everything set"

[persona.prompt]
system = """
You are Full. Be terse.
"""

[persona.tools]
allowed = ["memory.*"]   # a table this service does not know

[persona.memory]
namespace = "private:full"

[persona.model]
preferred_upstream = "hal0"
preferred_model = "anthropic/claude-3.7-sonnet"
'''


def test_writing_a_budget_keeps_everything_else_of_the_persona(tmp_path: Path) -> None:
    before = load(FULL, "full")
    text = round_trip(tmp_path, "full", BudgetSpec(daily_nanos=5 * USD), text=FULL)
    after = load(text, "full")
    assert after.budget == BudgetSpec(daily_nanos=5 * USD)
    for field in ("id", "display_name", "summary", "system_prompt", "preferred_upstream"):
        assert getattr(after, field) == getattr(before, field), field
    assert after.preferred_model == "anthropic/claude-3.7-sonnet"
    # Everything that was there is still there, byte for byte; the block is added at the end.
    assert text.startswith(FULL)
    assert text[len(FULL) :].lstrip("\n") == "[persona.budget]\ndaily_usd = 5.0\nhard_cap = true\n"
    # A second write of a different budget still leaves the rest alone.
    text = round_trip(tmp_path, "full", BudgetSpec(monthly_nanos=USD, hard_cap=False), text=text)
    assert text.startswith(FULL)
    assert load(text, "full").budget == BudgetSpec(monthly_nanos=USD, hard_cap=False)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("daily_usd = -1.0", [">= 0", "daily_usd"]),
        ('monthly_usd = "abc"', ["must be a number", "monthly_usd"]),
        ("lifetime_usd = true", ["must be a number", "lifetime_usd"]),
        ('hard_cap = "yes"', ["hard_cap"]),
    ],
)
def test_a_negative_cap_in_a_file_makes_the_persona_malformed(
    tmp_path: Path, line: str, words: list[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        f'[persona]\nid = "bad"\ndisplay_name = "Bad"\n[persona.budget]\n{line}\n',
        encoding="utf-8",
    )
    with pytest.raises(PersonaMalformed) as caught:
        load(path.read_text(encoding="utf-8"), "bad")
    for word in words:
        assert word in caught.value.message
    # The message names the block and never the file's path.
    assert caught.value.message.startswith("[persona.budget] ")
    assert str(tmp_path) not in caught.value.message
