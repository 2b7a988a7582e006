"""Seed personas and the active.txt rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from personas import seeds
from personas.models import Agent, BudgetChange
from personas.services import active_persona_id, provision_agent
from personas.toml_store import BudgetSpec, parse_persona_text

pytestmark = pytest.mark.django_db


def personas_dir(data_dir: Path, agent_id: str = "hermes") -> Path:
    return data_dir / "agents" / agent_id / "personas"


@pytest.mark.parametrize("seed", list(seeds.SEEDS.values()), ids=list(seeds.SEEDS))
def test_each_seed_is_a_valid_persona_with_an_empty_budget(seed: seeds.Seed) -> None:
    spec = parse_persona_text(seed.text, stem=seed.id)

    assert spec.id == seed.id
    assert spec.display_name
    assert spec.summary
    assert spec.system_prompt.strip()
    assert spec.budget == BudgetSpec()
    # The block exists and says only hard_cap = true, so operators see where caps go.
    block = seed.text[seed.text.index("\n[persona.budget]\n") + 1 :]
    assert [line for line in block.splitlines()[1:] if line.strip()] == ["hard_cap = true"]


def test_hermes_asks_before_touching_files_or_services() -> None:
    text = parse_persona_text(seeds.HERMES.text, stem="hermes").system_prompt.lower()

    assert "before" in text
    assert "file" in text
    assert "service" in text


def test_coder_cites_file_and_line_and_keeps_changes_small() -> None:
    spec = parse_persona_text(seeds.CODER.text, stem="coder")

    assert "path:line" in spec.system_prompt
    assert "smallest change" in spec.system_prompt
    assert "file:line" in spec.summary


def test_provisioning_writes_both_seeds_and_points_active_at_hermes(data_dir: Path) -> None:
    provision_agent("hermes")

    folder = personas_dir(data_dir)
    assert (folder / "hermes.toml").read_text() == seeds.HERMES.text
    assert (folder / "coder.toml").read_text() == seeds.CODER.text
    assert (folder / "active.txt").read_text() == "hermes\n"
    assert active_persona_id("hermes") == "hermes"
    agent = Agent.objects.get(id="hermes")
    assert sorted(agent.personas.values_list("slug", flat=True)) == ["coder", "hermes"]
    assert all(p.has_good_budget and not p.load_error for p in agent.personas.all())
    assert BudgetChange.objects.count() == 0


def test_seeding_never_overwrites_an_existing_file(data_dir: Path) -> None:
    folder = personas_dir(data_dir)
    folder.mkdir(parents=True)
    mine = '[persona]\nid = "hermes"\ndisplay_name = "My Hermes"\n[persona.budget]\ndaily_usd = 3\n'
    (folder / "hermes.toml").write_text(mine)

    provision_agent("hermes")

    assert (folder / "hermes.toml").read_text() == mine
    assert (folder / "coder.toml").read_text() == seeds.CODER.text
    assert Agent.objects.get(id="hermes").personas.get(slug="hermes").daily_cap_nanos == 3 * 10**9


def test_a_file_the_operator_creates_while_seeding_runs_is_kept(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race, made deterministic: the operator's hermes.toml appears after the seeding
    looked for it and before it writes. The write must fail, not replace the file."""
    folder = personas_dir(data_dir)
    folder.mkdir(parents=True)
    mine = '[persona]\nid = "hermes"\n[persona.budget]\ndaily_usd = 3\n'
    (folder / "hermes.toml").write_text(mine)
    real_exists = Path.exists

    def exists_before_the_operator_saved(self: Path, **kwargs: Any) -> bool:
        return False if self.name == "hermes.toml" else real_exists(self, **kwargs)

    monkeypatch.setattr(Path, "exists", exists_before_the_operator_saved)

    report = provision_agent("hermes")

    assert (folder / "hermes.toml").read_text() == mine
    assert report.created == 2  # both imported: coder seeded, hermes the operator's
    persona = Agent.objects.get(id="hermes").personas.get(slug="hermes")
    assert persona.daily_cap_nanos == 3 * 10**9


def test_active_txt_naming_an_existing_persona_is_kept(data_dir: Path) -> None:
    folder = personas_dir(data_dir)
    folder.mkdir(parents=True)
    (folder / "active.txt").write_text("coder\n")

    provision_agent("hermes")

    assert (folder / "active.txt").read_text() == "coder\n"
    assert active_persona_id("hermes") == "coder"


@pytest.mark.parametrize("content", ["ghost\n", "", "../etc/passwd\n", "Coder\n", "\n\n"])
def test_active_txt_naming_no_existing_persona_points_at_hermes(
    data_dir: Path, content: str
) -> None:
    folder = personas_dir(data_dir)
    folder.mkdir(parents=True)
    (folder / "active.txt").write_text(content)

    assert active_persona_id("hermes") is None  # nothing exists yet
    provision_agent("hermes")

    assert (folder / "active.txt").read_text() == "hermes\n"
    assert active_persona_id("hermes") == "hermes"


def test_reading_active_falls_back_to_hermes_when_the_named_persona_is_gone(
    agent: Agent, data_dir: Path
) -> None:
    folder = personas_dir(data_dir)
    (folder / "active.txt").write_text("coder\n")
    assert active_persona_id("hermes") == "coder"

    (folder / "coder.toml").unlink()

    assert active_persona_id("hermes") == "hermes"


def test_choose_active_rules() -> None:
    assert seeds.choose_active("coder", {"coder", "hermes"}) == "coder"
    assert seeds.choose_active("ghost", {"coder", "hermes"}) == "hermes"
    assert seeds.choose_active(None, {"hermes"}) == "hermes"
    assert seeds.choose_active("ghost", {"coder"}) is None
