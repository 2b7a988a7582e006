"""The stop switch in a persona file: ``paused = true`` parsed, written, audited, kept.

The check refusing a paused scope is tested in tests/api/test_stop_switch.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from budgets.services import budget_pause
from personas.models import BudgetChange, Persona
from personas.services import parse_budget_body, resolve_persona
from personas.toml_store import (
    BudgetInvalid,
    BudgetSpec,
    parse_budget_mapping,
    parse_persona_text,
    render_budget,
)

TEXT = """\
[persona]
id = "coder"

[persona.budget]
daily_usd = 1.0   # the day's money
"""


def test_paused_is_false_unless_the_block_says_true() -> None:
    assert parse_budget_mapping({}).paused is False
    assert parse_budget_mapping({"paused": False}).paused is False
    assert parse_budget_mapping({"paused": True}).paused is True


@pytest.mark.parametrize("value", ["true", 1, 0, [True]])
def test_paused_must_be_a_boolean(value: object) -> None:
    with pytest.raises(BudgetInvalid) as err:
        parse_budget_mapping({"paused": value})
    assert err.value.key == "paused"
    assert err.value.message == "paused must be true or false"


def test_the_api_shape_shows_paused_only_while_paused() -> None:
    assert "paused" not in BudgetSpec(daily_nanos=1).to_api()
    assert BudgetSpec(daily_nanos=1, paused=True).to_api()["paused"] is True


def test_pausing_adds_one_line_and_resuming_flips_it() -> None:
    spec = parse_persona_text(TEXT, stem="coder").budget
    paused = render_budget(TEXT, dataclasses.replace(spec, paused=True))
    assert paused == TEXT + "hard_cap = true\npaused = true\n"
    assert parse_persona_text(paused, stem="coder").budget.paused is True
    # The switch stays in the file, off, where an operator will look for it next time.
    resumed = render_budget(paused, spec)
    assert resumed == TEXT + "hard_cap = true\npaused = false\n"
    assert render_budget(TEXT, spec) == TEXT + "hard_cap = true\n"  # never added when off


def test_resuming_keeps_an_operators_own_paused_line_and_its_comment() -> None:
    text = TEXT + "paused = true   # flip me\n"
    spec = parse_persona_text(text, stem="coder").budget
    resumed = render_budget(text, dataclasses.replace(spec, paused=False))
    assert resumed == TEXT + "paused = false   # flip me\nhard_cap = true\n"


def test_a_put_body_may_pause_and_refuses_a_non_boolean() -> None:
    assert parse_budget_body({"daily_usd": 1, "paused": True}).paused is True
    with pytest.raises(Exception) as err:  # noqa: PT011 - the ApiError's code is checked
        parse_budget_body({"paused": "yes"})
    assert getattr(err.value, "code", None) == "budget.invalid"


@pytest.mark.django_db
def test_pause_and_resume_write_the_file_and_are_audited_with_the_actor(
    make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0  # keep me\n")
    path = data_dir / "agents" / "hermes" / "personas" / "coder.toml"

    row = budget_pause(persona=persona, paused=True, actor="user:ops", via="admin")
    assert row.paused is True
    assert "paused = true" in path.read_text()
    assert "daily_usd = 1.0  # keep me" in path.read_text()
    assert resolve_persona(persona.agent, "coder").paused is True

    # Pausing again changes nothing and records nothing more.
    budget_pause(persona=persona, paused=True, actor="user:ops", via="admin")
    budget_pause(persona=persona, paused=False, actor="user:ana", via="admin")
    changes = list(BudgetChange.objects.filter(persona=persona).order_by("id"))
    assert [
        (c.actor, c.via, (c.before or {}).get("paused"), c.after.get("paused")) for c in changes
    ] == [
        ("user:ops", "admin", None, True),
        ("user:ana", "admin", True, None),
    ]
    assert "paused = false" in path.read_text()
    assert "daily_usd = 1.0  # keep me" in path.read_text()


@pytest.mark.django_db
def test_a_hand_edit_that_pauses_is_picked_up_and_audited(
    make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0\n")
    path = data_dir / "agents" / "hermes" / "personas" / "coder.toml"
    path.write_text(
        path.read_text().replace("daily_usd = 1.0\n", "daily_usd = 1.0\npaused = true\n")
    )
    row = resolve_persona(persona.agent, "coder")
    assert row.paused is True
    change = BudgetChange.objects.get(persona=persona)
    assert change.via == "file"
    assert change.after["paused"] is True


@pytest.mark.django_db
def test_an_agent_and_the_platform_can_be_paused_in_their_files_and_are_audited(
    agent: Any, data_dir: Path
) -> None:
    from personas.models import Agent, Platform
    from personas.services.scopes import PLATFORM, agent_scope, sync_scope, write_scope_budget

    row = write_scope_budget(
        agent_scope("hermes"),
        parse_budget_mapping({"daily_usd": 20, "paused": True}),
        actor="user:ops",
        via="admin",
    )
    assert row.paused is True
    assert "paused = true" in (data_dir / "agents" / "hermes" / "agent.toml").read_text()
    write_scope_budget(PLATFORM, BudgetSpec(paused=True), actor="user:ops", via="api")
    assert "paused = true" in (data_dir / "platform.toml").read_text()
    assert Platform.objects.get().paused is True
    changes = BudgetChange.objects.filter(scope__in=["agent", "platform"]).order_by("id")
    assert [(c.scope, c.after.get("paused")) for c in changes] == [
        ("agent", True),
        ("platform", True),
    ]
    # A hand edit that resumes the agent is picked up like any other.
    path = data_dir / "agents" / "hermes" / "agent.toml"
    path.write_text(path.read_text().replace("paused = true", "paused = false"))
    assert sync_scope(agent_scope("hermes"), force=True).paused is False
    assert Agent.objects.get(pk="hermes").paused is False
