"""Lookups and file sync: resolve_agent, resolve_persona, hand edits, malformed files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hal0.errors import ApiError
from personas import paths
from personas.models import Agent, BudgetChange, Persona
from personas.services import (
    budget_spec_from_persona,
    require_good_budget,
    resolve_agent,
    resolve_persona,
)

pytestmark = pytest.mark.django_db

USD = 1_000_000_000

BAD_IDS = [
    "..",
    ".",
    "../etc",
    "a/b",
    "/abs",
    "Hermes",
    "HERMES",
    "a" * 65,
    "",
    "-leading-dash",
    "_leading",
    "with space",
    "dot.ted",
    "nul\x00",
    "ünicode",
]


def persona_path(data_dir: Path, persona_id: str = "coder", agent_id: str = "hermes") -> Path:
    return data_dir / "agents" / agent_id / "personas" / f"{persona_id}.toml"


def hand_edit(path: Path, text: str) -> None:
    """Rewrite in place, as an editor would, with an mtime that says "later"."""
    stat = path.stat()
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def coder_text(budget_lines: str, *, display_name: str = "Coder") -> str:
    return (
        f'[persona]\nid = "coder"\ndisplay_name = "{display_name}"\n'
        f"\n[persona.budget]\n{budget_lines}"
    )


# --- ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_IDS)
def test_an_invalid_agent_id_is_agent_unknown(bad: str, data_dir: Path) -> None:
    with pytest.raises(ApiError) as caught:
        resolve_agent(bad)

    assert caught.value.status_code == 404
    assert caught.value.code == "agent.unknown"
    assert str(data_dir) not in caught.value.message


@pytest.mark.parametrize("bad", BAD_IDS)
def test_an_invalid_persona_id_is_not_found_before_any_path_is_built(
    agent: Agent, bad: str, data_dir: Path
) -> None:
    # A file that a path-joining bug would find: it must never be read.
    (data_dir / "agents" / "hermes" / "Hermes.toml").write_text('[persona]\nid = "Hermes"\n')

    with pytest.raises(ApiError) as caught:
        resolve_persona(agent, bad)

    assert caught.value.status_code == 404
    assert caught.value.code == "persona.not_found"
    assert Persona.objects.filter(agent=agent).count() == 2


@pytest.mark.parametrize("bad", BAD_IDS)
def test_paths_refuse_invalid_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid id"):
        paths.persona_file("hermes", bad)
    with pytest.raises(ValueError, match="invalid id"):
        paths.agent_dir(bad)


def test_the_longest_valid_id_is_64_characters(agent: Agent, make_persona: Any) -> None:
    longest = "a" * 64
    persona = make_persona(persona_id=longest)

    assert resolve_persona(agent, longest) == persona


# --- agents -------------------------------------------------------------------------------


def test_resolve_agent_returns_an_existing_agent(agent: Agent) -> None:
    assert resolve_agent("hermes") == agent


def test_an_agent_without_a_row_is_unknown(data_dir: Path) -> None:
    (data_dir / "agents" / "ghost" / "personas").mkdir(parents=True)

    with pytest.raises(ApiError) as caught:
        resolve_agent("ghost")

    assert caught.value.code == "agent.unknown"
    assert caught.value.details == {"agent_id": "ghost"}
    assert caught.value.message == "unknown agent 'ghost'"


# --- personas -------------------------------------------------------------------------------


def test_a_persona_without_a_file_is_not_found(agent: Agent) -> None:
    with pytest.raises(ApiError) as caught:
        resolve_persona(agent, "writer")

    assert caught.value.status_code == 404
    assert caught.value.code == "persona.not_found"
    assert caught.value.details == {"agent_id": "hermes", "persona_id": "writer"}


def test_a_deleted_file_makes_the_persona_not_found_even_with_a_row(
    agent: Agent, data_dir: Path
) -> None:
    persona_path(data_dir).unlink()

    with pytest.raises(ApiError) as caught:
        resolve_persona(agent, "coder")

    assert caught.value.code == "persona.not_found"
    assert Persona.objects.filter(agent=agent, slug="coder").exists()  # history kept


def test_a_file_added_by_hand_is_imported_on_first_lookup(agent: Agent, data_dir: Path) -> None:
    path = persona_path(data_dir, "writer")
    path.write_text(
        '[persona]\nid = "writer"\ndisplay_name = "Writer"\nsummary = "Drafts."\n'
        "[persona.budget]\ndaily_usd = 2.5\nhard_cap = false\n"
    )

    persona = resolve_persona(agent, "writer")

    assert persona.pk is not None
    assert persona.display_name == "Writer"
    assert persona.summary == "Drafts."
    assert persona.daily_cap_nanos == 2_500_000_000
    assert persona.hard_cap is False
    assert persona.has_good_budget
    assert persona.load_error == ""
    assert len(persona.content_sha256) == 64
    assert BudgetChange.objects.count() == 0  # an import is not a change


def test_a_hand_edit_is_picked_up_on_the_next_lookup_and_audited(
    make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0\n")
    hand_edit(persona_path(data_dir), coder_text("daily_usd = 3.0\nmonthly_usd = 0\n"))

    fresh = resolve_persona(persona.agent, "coder")

    assert fresh.daily_cap_nanos == 3 * USD
    assert fresh.monthly_cap_nanos == 0
    change = BudgetChange.objects.get()
    assert change.persona == fresh
    assert change.via == "file"
    assert change.actor == "file edit"
    assert change.before == {"daily_usd": 1.0, "hard_cap": True}
    assert change.after == {"daily_usd": 3.0, "monthly_usd": 0.0, "hard_cap": True}


def test_a_hand_edit_that_keeps_the_caps_is_not_audited(
    make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0\n")
    hand_edit(persona_path(data_dir), coder_text("daily_usd = 1  # same\n", display_name="C2"))

    fresh = resolve_persona(persona.agent, "coder")

    assert fresh.display_name == "C2"
    assert BudgetChange.objects.count() == 0


def test_an_unchanged_signature_is_not_re_read(
    make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0\n")
    path = persona_path(data_dir)
    stat = path.stat()
    # Same size, same inode, same mtime: the stat signature cannot tell, so the row is used
    # as it is (this is what keeps a lookup at one stat and one query).
    path.write_text(path.read_text().replace("1.0", "9.0"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    assert resolve_persona(persona.agent, "coder").daily_cap_nanos == USD

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert resolve_persona(persona.agent, "coder").daily_cap_nanos == 9 * USD


def test_a_malformed_file_keeps_the_last_good_caps_and_reports_the_error(
    make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0\nper_call_max_usd = 0.1\n")
    hand_edit(persona_path(data_dir), coder_text("daily_usd = -5\n"))

    fresh = resolve_persona(persona.agent, "coder")

    assert fresh.load_error == "[persona.budget] daily_usd must be >= 0"
    assert fresh.daily_cap_nanos == USD
    assert fresh.per_call_cap_nanos == 100_000_000
    assert budget_spec_from_persona(fresh).to_api() == {
        "daily_usd": 1.0,
        "per_call_max_usd": 0.1,
        "hard_cap": True,
    }
    with pytest.raises(ApiError) as caught:
        require_good_budget(fresh)
    assert caught.value.status_code == 400
    assert caught.value.code == "persona.malformed"
    assert str(data_dir) not in caught.value.message
    assert "agents/hermes/personas/coder.toml" in caught.value.message
    assert BudgetChange.objects.count() == 0


@pytest.mark.parametrize(
    "broken",
    [
        "[persona\n",  # TOML syntax
        'title = "no persona table"\n',
        '[persona]\nid = "someone-else"\n',
        b"\xff\xfe not utf-8",
        coder_text("daily_usd = nan\n"),
        coder_text('hard_cap = "sometimes"\n'),
    ],
)
def test_no_kind_of_breakage_lifts_a_cap(
    make_persona: Callable[..., Persona], data_dir: Path, broken: str | bytes
) -> None:
    persona = make_persona(budget_toml="daily_usd = 0\n")
    path = persona_path(data_dir)
    stat = path.stat()
    if isinstance(broken, bytes):
        path.write_bytes(broken)
    else:
        path.write_text(broken)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    fresh = resolve_persona(persona.agent, "coder")

    assert fresh.load_error
    assert fresh.daily_cap_nanos == 0
    assert fresh.hard_cap is True
    assert str(data_dir) not in fresh.load_error


def test_a_file_that_is_not_utf8_is_malformed_with_a_plain_reason(
    make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0\n")
    path = persona_path(data_dir)
    stat = path.stat()
    path.write_bytes(b'[persona]\nid = "coder"\ndisplay_name = "Caf\xe9"\n')
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    fresh = resolve_persona(persona.agent, "coder")

    assert fresh.load_error == "file is not valid UTF-8 text"
    assert fresh.daily_cap_nanos == USD


def test_a_folder_where_the_file_should_be_is_malformed_not_a_crash(
    agent: Agent, data_dir: Path
) -> None:
    persona_path(data_dir, "writer").mkdir()

    persona = resolve_persona(agent, "writer")

    assert persona.load_error == "the file cannot be read (Is a directory)"
    assert persona.has_good_budget is False
    with pytest.raises(ApiError) as caught:
        require_good_budget(persona)
    assert caught.value.message == (
        "persona file agents/hermes/personas/writer.toml is malformed: "
        "the file cannot be read (Is a directory)"
    )


def test_fixing_a_malformed_file_clears_the_error(
    make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0\n")
    hand_edit(persona_path(data_dir), "[persona\n")
    assert resolve_persona(persona.agent, "coder").load_error

    hand_edit(persona_path(data_dir), coder_text("daily_usd = 2.0\n"))
    fresh = resolve_persona(persona.agent, "coder")

    assert fresh.load_error == ""
    assert fresh.daily_cap_nanos == 2 * USD
    # Audited against the last good caps, not against the broken file.
    change = BudgetChange.objects.get()
    assert (change.before, change.after) == (
        {"daily_usd": 1.0, "hard_cap": True},
        {"daily_usd": 2.0, "hard_cap": True},
    )


def test_a_file_malformed_from_the_start_has_no_good_budget(agent: Agent, data_dir: Path) -> None:
    persona_path(data_dir, "broken").write_text('[persona]\nid = "broken"\ndaily_usd = "x"\n[x')

    persona = resolve_persona(agent, "broken")

    assert persona.load_error.startswith("TOML syntax error")
    assert persona.has_good_budget is False


def test_unknown_budget_keys_of_any_toml_type_are_kept_on_the_row(
    agent: Agent, data_dir: Path
) -> None:
    persona_path(data_dir, "odd").write_text(
        '[persona]\nid = "odd"\n[persona.budget]\ndaily_usd = 1\n'
        "when = 2025-03-01T12:00:00Z\nratio = nan\nbig = inf\nn = 3\nf = 0.5\n"
        'tags = ["a", 1.5]\nnested = { x = 1 }\n'
    )

    persona = resolve_persona(agent, "odd")
    persona.refresh_from_db()

    assert persona.load_error == ""
    assert persona.budget_extra == {
        "when": "2025-03-01T12:00:00+00:00",
        "ratio": "NaN",
        "big": "Infinity",
        "n": 3,
        "f": 0.5,
        "tags": ["a", 1.5],
        "nested": {"x": 1},
    }
