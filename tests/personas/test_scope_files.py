"""Agent and platform budget files: ``agents/<a>/agent.toml`` and ``platform.toml``.

Real files in the test's data folder; the one writer, hand edits, malformed files,
deleted files and ``reprovision``.
"""

from __future__ import annotations

import os
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from hal0.errors import ApiError
from personas.models import Agent, BudgetChange, Platform
from personas.services.scopes import PLATFORM, agent_scope, sync_scope, write_scope_budget
from personas.toml_store import BudgetSpec, parse_budget_mapping

pytestmark = pytest.mark.django_db

ONE_USD = 1_000_000_000


def hand_edit(path: Path, text: str) -> None:
    """Rewrite in place, as an editor would, with an mtime that says "later"."""
    stat = path.stat() if path.exists() else None
    path.write_text(text)
    if stat is not None:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def agent_file(data_dir: Path, agent_id: str = "hermes") -> Path:
    return data_dir / "agents" / agent_id / "agent.toml"


def test_reprovision_creates_an_agent_file_without_caps_and_never_overwrites_it(
    agent: Agent, data_dir: Path
) -> None:
    path = agent_file(data_dir)
    text = path.read_text()
    assert '[agent]\nid = "hermes"' in text
    assert "[agent.budget]\nhard_cap = true\n" in text
    row = sync_scope(agent_scope("hermes"))
    assert (row.daily_cap_nanos, row.has_good_budget, row.load_error) == (None, True, "")

    hand_edit(path, text + "daily_usd = 2.0  # the operator's\n")
    out = StringIO()
    call_command("reprovision", "hermes", stdout=out)
    call_command("reprovision", "hermes", "--repair", stdout=out)
    assert path.read_text().endswith("daily_usd = 2.0  # the operator's\n")
    assert "agent.toml" not in out.getvalue()  # nothing created the second time
    assert Agent.objects.get(id="hermes").daily_cap_nanos == 2 * ONE_USD


def test_the_writer_keeps_comments_and_other_tables_and_audits(
    agent: Agent, data_dir: Path
) -> None:
    path = agent_file(data_dir)
    hand_edit(
        path,
        '# top comment\n[agent]\nid = "hermes"\ndisplay_name = "Hermes"\n'
        "\n[agent.budget]\nmonthly_usd = 9.0  # keep me\nhard_cap = true\n"
        '\n[agent.notes]\nowner = "ops"\n',
    )
    spec = parse_budget_mapping({"monthly_usd": 9, "daily_usd": 1.5, "daily_tokens": 5000})
    row = write_scope_budget(agent_scope("hermes"), spec, actor="alice", via="api")
    text = path.read_text()
    assert text.startswith("# top comment\n")
    assert "monthly_usd = 9.0  # keep me" in text
    assert "daily_usd = 1.5" in text
    assert "daily_tokens = 5000" in text
    assert '[agent.notes]\nowner = "ops"' in text
    assert (row.daily_cap_nanos, row.daily_cap_tokens) == (1_500_000_000, 5000)
    change = BudgetChange.objects.filter(scope="agent").latest("id")
    assert (change.agent_id, change.persona_id, change.actor, change.via) == (
        "hermes",
        None,
        "alice",
        "api",
    )
    assert change.after["daily_usd"] == 1.5
    assert change.owner == "agent hermes"


def test_the_platform_file_is_created_by_its_first_write(db: None, data_dir: Path) -> None:
    path = data_dir / "platform.toml"
    assert not path.exists()
    row = sync_scope(PLATFORM)
    assert row.monthly_cap_nanos is None  # no file: no caps
    write_scope_budget(PLATFORM, BudgetSpec(monthly_nanos=500 * ONE_USD), actor="ops", via="cli")
    assert "[platform.budget]" in path.read_text()
    assert "monthly_usd = 500.0" in path.read_text()
    assert Platform.objects.get().monthly_cap_nanos == 500 * ONE_USD
    change = BudgetChange.objects.get(scope="platform")
    assert (change.agent_id, change.persona_id, change.before) == (None, None, {"hard_cap": True})


def test_a_hand_edit_is_picked_up_by_signature_and_audited_as_a_file_edit(
    agent: Agent, data_dir: Path
) -> None:
    path = data_dir / "platform.toml"
    hand_edit(path, "[platform.budget]\ndaily_usd = 3.0\n")
    assert sync_scope(PLATFORM).daily_cap_nanos == 3 * ONE_USD
    hand_edit(path, "[platform.budget]\ndaily_usd = 4.0\n")
    assert sync_scope(PLATFORM).daily_cap_nanos == 4 * ONE_USD
    changes = list(BudgetChange.objects.filter(scope="platform").order_by("id"))
    assert [(c.via, c.actor, c.after.get("daily_usd")) for c in changes] == [
        ("file", "file edit", 3.0),
        ("file", "file edit", 4.0),
    ]


def test_a_malformed_file_keeps_the_last_good_caps(agent: Agent, data_dir: Path) -> None:
    path = agent_file(data_dir)
    hand_edit(path, '[agent]\nid = "hermes"\n[agent.budget]\ndaily_usd = 1.0\n')
    assert sync_scope(agent_scope("hermes")).daily_cap_nanos == ONE_USD
    for broken in (
        "[agent.budget\ndaily_usd = 5.0\n",  # syntax
        "[agent.budget]\ndaily_usd = -1\n",  # negative
        "[agent.budget]\ndaily_tokens = 1.5\n",  # tokens are whole numbers
        '[agent]\nid = "zeus"\n',  # another agent's id
    ):
        hand_edit(path, broken)
        row = sync_scope(agent_scope("hermes"))
        assert row.daily_cap_nanos == ONE_USD, broken
        assert row.load_error, broken
        assert str(data_dir) not in row.load_error
    # A write refuses to overwrite a broken file (the operator's intent is in it).
    with pytest.raises(ApiError) as refused:
        write_scope_budget(agent_scope("hermes"), BudgetSpec(), actor="a", via="api")
    assert refused.value.code == "budget.malformed"
    # Repair brings the file back with the last good caps.
    call_command("reprovision", "hermes", "--repair", stdout=StringIO(), stderr=StringIO())
    row = sync_scope(agent_scope("hermes"))
    assert (row.load_error, row.daily_cap_nanos) == ("", ONE_USD)
    assert list(path.parent.glob("agent.toml.bak-*"))


def test_deleting_the_file_lifts_the_caps_on_purpose_and_is_audited(
    agent: Agent, data_dir: Path
) -> None:
    path = agent_file(data_dir)
    hand_edit(path, "[agent.budget]\nlifetime_usd = 7.0\n")
    assert sync_scope(agent_scope("hermes")).lifetime_cap_nanos == 7 * ONE_USD
    path.unlink()
    assert sync_scope(agent_scope("hermes")).lifetime_cap_nanos is None
    change = BudgetChange.objects.filter(scope="agent").latest("id")
    assert change.before is not None
    assert (change.before.get("lifetime_usd"), change.after) == (7.0, {"hard_cap": True})


def test_reprovision_reports_a_malformed_agent_file_and_fails(agent: Agent, data_dir: Path) -> None:
    hand_edit(agent_file(data_dir), "[agent.budget]\nhard_cap = 1\n")
    err = StringIO()
    with pytest.raises(Exception, match="malformed"):
        call_command("reprovision", "hermes", stdout=StringIO(), stderr=err)
    assert "agents/hermes/agent.toml is malformed" in err.getvalue()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"daily_tokens": 1.0}, "whole number", id="float"),
        pytest.param({"monthly_tokens": -1}, ">= 0", id="negative"),
        pytest.param({"lifetime_tokens": True}, "whole number", id="bool"),
        pytest.param({"per_call_max_tokens": 10**16}, "at most", id="huge"),
    ],
)
def test_token_caps_are_whole_numbers_of_tokens(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_budget_mapping(body)


def test_a_token_cap_of_zero_is_kept_apart_from_no_cap() -> None:
    spec = parse_budget_mapping({"daily_tokens": 0})
    assert (spec.daily_tokens, spec.monthly_tokens) == (0, None)
    assert spec.to_api() == {"daily_tokens": 0, "hard_cap": True}
