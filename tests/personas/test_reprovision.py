"""manage.py reprovision: idempotent, --dry-run, --repair, --all, malformed files, bad ids."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from personas import seeds
from personas.models import Agent, BudgetChange, Persona
from personas.toml_store import parse_persona_text

pytestmark = pytest.mark.django_db

USD = 1_000_000_000


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("reprovision", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(*args: str) -> tuple[str, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("reprovision", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue(), str(caught.value)


def folder(data_dir: Path, agent_id: str = "hermes") -> Path:
    return data_dir / "agents" / agent_id / "personas"


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under root with its bytes, mtime and inode: any write shows up."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def rows() -> list[tuple[str, str, object, str]]:
    return [
        (p.agent_id, p.slug, p.updated_at, p.file_signature)
        for p in Persona.objects.order_by("agent_id", "slug")
    ]


def test_a_first_run_creates_the_agent_and_its_seed_personas(data_dir: Path) -> None:
    out, err = run("hermes")

    assert out.splitlines()[0] == "hermes: created 2, updated 0, unchanged 0"
    assert err == ""
    assert Agent.objects.filter(id="hermes").exists()
    assert sorted(p.name for p in folder(data_dir).iterdir()) == [
        "active.txt",
        "coder.toml",
        "hermes.toml",
    ]
    assert Persona.objects.filter(agent_id="hermes").count() == 2


def test_running_twice_changes_nothing_the_second_time(data_dir: Path) -> None:
    run("hermes")
    files, db = snapshot(data_dir), rows()

    out, _ = run("hermes")

    assert out.strip() == "hermes: created 0, updated 0, unchanged 2"
    assert snapshot(data_dir) == files
    assert rows() == db
    assert BudgetChange.objects.count() == 0


def test_persona_files_added_by_hand_are_imported(data_dir: Path) -> None:
    run("hermes")
    (folder(data_dir) / "writer.toml").write_text(
        '[persona]\nid = "writer"\n[persona.budget]\ndaily_usd = 2\n'
    )

    out, _ = run("hermes")

    assert out.strip() == "hermes: created 1, updated 0, unchanged 2"
    assert Persona.objects.get(slug="writer").daily_cap_nanos == 2 * USD


def test_a_hand_edit_counts_as_updated_and_is_audited(data_dir: Path) -> None:
    run("hermes")
    path = folder(data_dir) / "coder.toml"
    stat = path.stat()
    path.write_text(path.read_text().replace("hard_cap = true", "hard_cap = true\ndaily_usd = 1"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    out, _ = run("hermes")

    assert out.strip() == "hermes: created 0, updated 1, unchanged 1"
    assert BudgetChange.objects.get().via == "file"


def test_dry_run_on_a_new_agent_writes_nothing(data_dir: Path) -> None:
    out, _ = run("hermes", "--dry-run")

    assert (
        out.splitlines()[0]
        == "hermes: created 2, updated 0, unchanged 0 (dry run: nothing written)"
    )
    assert "would create agent hermes" in out
    assert list(data_dir.iterdir()) == []
    assert not Agent.objects.exists()


def test_dry_run_reports_changes_without_making_them(data_dir: Path) -> None:
    run("hermes")
    (folder(data_dir) / "hermes.toml").unlink()
    (folder(data_dir) / "writer.toml").write_text('[persona]\nid = "writer"\n')
    files, db = snapshot(data_dir), rows()

    out, _ = run("hermes", "--dry-run", "--repair")

    assert out.splitlines()[0].startswith("hermes: created 2, updated 0, unchanged 1")
    assert snapshot(data_dir) == files
    assert rows() == db


def test_repair_restores_a_seed_but_keeps_the_operators_budget_and_a_backup(
    data_dir: Path,
) -> None:
    run("hermes")
    path = folder(data_dir) / "hermes.toml"
    budget = (
        "[persona.budget]\n"
        "# set by ops after the March incident\n"
        "daily_usd = 2.5     # per day\n"
        "hard_cap = false\n"
        'owner = "ops"\n'
    )
    damaged = (
        '[persona]\nid = "hermes"\ndisplay_name = "Oops"\n'
        '\n[persona.prompt]\nsystem = "half a prompt"\n\n' + budget
    )
    path.write_text(damaged)

    out, err = run("hermes", "--repair")

    assert out.splitlines()[0] == "hermes: created 0, updated 1, unchanged 1"
    assert err == ""
    text = path.read_text()
    canonical_head = seeds.HERMES.text[: seeds.HERMES.text.index("\n[persona.budget]\n") + 1]
    assert text == canonical_head + budget  # the operator's block, comments and all
    spec = parse_persona_text(text, stem="hermes")
    assert spec.display_name == "Hermes"
    assert spec.budget.to_api() == {"daily_usd": 2.5, "hard_cap": False}
    backups = sorted(folder(data_dir).glob("hermes.toml.bak-*"))
    assert len(backups) == 1
    assert backups[0].read_text() == damaged
    assert f"repaired hermes.toml (old text kept as {backups[0].name})" in out
    row = Persona.objects.get(slug="hermes")
    assert (row.display_name, row.daily_cap_nanos, row.hard_cap) == ("Hermes", 2_500_000_000, False)
    # The operator's edit of the caps (made in the file before the repair) is on record.
    change = BudgetChange.objects.get()
    assert (change.via, change.after) == ("file", {"daily_usd": 2.5, "hard_cap": False})

    files = snapshot(data_dir)
    again, _ = run("hermes", "--repair")
    assert again.strip() == "hermes: created 0, updated 0, unchanged 2"
    assert snapshot(data_dir) == files  # no second backup


def test_repair_of_a_malformed_seed_brings_back_the_last_good_caps(data_dir: Path) -> None:
    run("hermes")
    path = folder(data_dir) / "coder.toml"
    path.write_text(seeds.CODER.text.replace("hard_cap = true", "daily_usd = 4\nhard_cap = true"))
    run("hermes")
    path.write_text("[persona\nthis is not toml")
    _, err, _ = run_failing("hermes")
    assert "malformed" in err

    out, err = run("hermes", "--repair")

    assert err == ""
    assert out.splitlines()[0] == "hermes: created 0, updated 1, unchanged 1"
    assert parse_persona_text(path.read_text(), stem="coder").budget.daily_nanos == 4 * USD
    row = Persona.objects.get(slug="coder")
    assert row.load_error == ""
    assert row.daily_cap_nanos == 4 * USD
    assert [b.read_text() for b in folder(data_dir).glob("coder.toml.bak-*")] == [
        "[persona\nthis is not toml"
    ]


def test_repair_counts_a_rewritten_file_as_updated_even_when_its_row_stays_the_same(
    data_dir: Path,
) -> None:
    run("hermes")
    path = folder(data_dir) / "coder.toml"
    path.write_text("[persona\nthis is not toml")  # broken, and not read by anyone yet

    out, err = run("hermes", "--repair")

    assert err == ""
    assert out.splitlines()[0] == "hermes: created 0, updated 1, unchanged 1"
    assert path.read_text() == seeds.CODER.text


def test_repair_reports_a_folder_in_place_of_a_seed_instead_of_crashing(data_dir: Path) -> None:
    run("hermes")
    path = folder(data_dir) / "coder.toml"
    path.unlink()
    path.mkdir()

    for args in (("hermes", "--repair", "--dry-run"), ("hermes", "--repair")):
        out, err, message = run_failing(*args)

        assert out.splitlines()[0].startswith("hermes: created 0, updated 0, unchanged 1")
        assert "agents/hermes/personas/coder.toml is malformed: the file cannot be read" in err
        assert message.startswith("1 persona file is malformed")
        assert str(data_dir) not in out + err + message
    assert path.is_dir()
    assert list(folder(data_dir).glob("*.bak-*")) == []


def test_repair_leaves_personas_that_are_not_seeds_alone(data_dir: Path) -> None:
    run("hermes")
    mine = '[persona]\nid = "writer"\n# mine\n'
    (folder(data_dir) / "writer.toml").write_text(mine)

    run("hermes", "--repair")

    assert (folder(data_dir) / "writer.toml").read_text() == mine


def test_a_malformed_file_fails_the_run_and_keeps_the_last_good_caps(data_dir: Path) -> None:
    run("hermes")
    path = folder(data_dir) / "coder.toml"
    path.write_text(seeds.CODER.text.replace("hard_cap = true", "daily_usd = 1\nhard_cap = true"))
    run("hermes")
    path.write_text(seeds.CODER.text.replace("hard_cap = true", "daily_usd = -1\nhard_cap = true"))

    out, err, message = run_failing("hermes")

    assert out.splitlines()[0] == "hermes: created 0, updated 0, unchanged 1"
    assert (
        "agents/hermes/personas/coder.toml is malformed: "
        "[persona.budget] daily_usd must be >= 0" in err
    )
    assert message == (
        "1 persona file is malformed; fix the file(s) above and run reprovision again"
    )
    assert str(data_dir) not in out + err + message
    row = Persona.objects.get(slug="coder")
    assert row.daily_cap_nanos == USD
    assert row.load_error == "[persona.budget] daily_usd must be >= 0"


def test_a_file_a_request_already_found_malformed_still_fails_the_run(data_dir: Path) -> None:
    """The server notices a broken file first (a GET re-reads it and records the error);
    reprovision afterwards must still report it and exit non-zero, every time."""
    run("hermes")
    path = folder(data_dir) / "coder.toml"
    stat = path.stat()
    path.write_text(seeds.CODER.text + "daily_usd = = 3\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    body = APIClient().get("/api/agents/hermes/personas/coder").json()
    assert body["load_error"].startswith("TOML syntax error")

    for args in (("hermes",), ("hermes",), ("hermes", "--dry-run")):
        out, err, message = run_failing(*args)

        assert out.splitlines()[0].startswith("hermes: created 0, updated 0, unchanged 1")
        assert "agents/hermes/personas/coder.toml is malformed: TOML syntax error" in err
        assert message.startswith("1 persona file is malformed")


@pytest.mark.parametrize("bad", ["..", "../etc", "a/b", "Hermes", "a" * 65, "", "_x"])
def test_bad_agent_ids_are_refused_before_anything_is_written(data_dir: Path, bad: str) -> None:
    _, _, message = run_failing("ok-agent", bad)

    assert message.startswith(f"invalid agent id {bad!r}")
    assert list(data_dir.iterdir()) == []
    assert not Agent.objects.exists()


def test_a_file_in_the_way_of_an_agents_folder_fails_that_agent_only(data_dir: Path) -> None:
    (data_dir / "agents" / "atlas").mkdir(parents=True)
    (data_dir / "agents" / "atlas" / "personas").write_text("not a folder")

    out, err, message = run_failing("atlas", "hermes")

    assert out.splitlines() == [
        "hermes: created 2, updated 0, unchanged 0",
        "  created agent hermes",
        "  created agents/hermes/agent.toml (no agent caps yet)",
    ]
    assert err == "atlas: failed: File exists: agents/atlas/personas\n"
    assert message == "could not provision atlas; fix the cause above and run reprovision again"
    assert list(Agent.objects.values_list("id", flat=True)) == ["hermes"]


def test_an_agent_id_is_required_without_all() -> None:
    _, _, message = run_failing()

    assert message == "name at least one agent id, or use --all"


def test_all_covers_agent_folders_and_agent_rows(data_dir: Path) -> None:
    (data_dir / "agents" / "from-disk" / "personas").mkdir(parents=True)
    (data_dir / "agents" / "Not_An_Id").mkdir(parents=True)
    Agent.objects.create(id="from-db")

    out, err = run("--all")

    assert out.splitlines() == [
        "from-db: created 2, updated 0, unchanged 0",
        "  created agents/from-db/agent.toml (no agent caps yet)",
        "from-disk: created 2, updated 0, unchanged 0",
        "  created agent from-disk",
        "  created agents/from-disk/agent.toml (no agent caps yet)",
    ]
    assert err == "skipped folder 'agents/Not_An_Id': the folder name is not a valid agent id\n"
    assert sorted(p.name for p in (data_dir / "agents" / "Not_An_Id").iterdir()) == []
    assert sorted(Agent.objects.values_list("id", flat=True)) == ["from-db", "from-disk"]


def test_all_without_any_agent_says_so_and_writes_nothing(data_dir: Path) -> None:
    out, err = run("--all")

    assert out.strip() == (
        "no agents yet (no agent folder, no agent in the database): "
        "name one to create it, e.g. reprovision hermes"
    )
    assert err == ""
    assert list(data_dir.iterdir()) == []


def test_an_agent_named_twice_is_provisioned_once(data_dir: Path) -> None:
    out, _ = run("hermes", "hermes")

    assert out.splitlines() == [
        "hermes: created 2, updated 0, unchanged 0",
        "  created agent hermes",
        "  created agents/hermes/agent.toml (no agent caps yet)",
    ]


def test_files_whose_names_are_not_ids_are_skipped_with_a_warning(data_dir: Path) -> None:
    run("hermes")
    (folder(data_dir) / "My Persona.toml").write_text('[persona]\nid = "x"\n')

    out, err = run("hermes")

    assert out.strip() == "hermes: created 0, updated 0, unchanged 2"
    assert "skipped My Persona.toml" in err
