"""The README and the docs as a newcomer pastes them: the agent walkthrough runs whole
against a live service, commands work in a fresh shell, local settings stay out of git."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from budgets.models import Charge, Hold
from personas.services import provision_agent
from tests.server_support import current_database_url

ROOT = Path(settings.BASE_DIR)
README = (ROOT / "README.md").read_text(encoding="utf-8")
SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def json_values(text: str) -> list[Any]:
    """The JSON answers curl printed one after the other (no newline between them)."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) != -1:
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


@pytest.mark.django_db(transaction=True)
def test_the_agent_walkthrough_runs_whole_when_pasted(live_server: Any, settings: Any) -> None:
    settings.HAL0_REQUIRE_API_KEY = True
    provision_agent("hermes")  # what `make run` does before serving
    blocks = SHELL_BLOCK.findall(section(README, "Calling it from an agent"))
    # Every block but the last (a `tail` of the mirror under var/), pasted one after the
    # other into one shell, as a reader does; only the address differs.
    script = "\n".join(blocks[:-1]).replace("http://127.0.0.1:8000", live_server.url)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "SECRET_KEY")} | {
        "DATABASE_URL": current_database_url(),
        "HAL0_DATA_DIR": str(settings.HAL0_DATA_DIR),
    }

    done = subprocess.run(
        ["bash", "-c", f"set -eu\n{script}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    answers = json_values(done.stdout)
    assert not [a for a in answers if "error" in a], done.stdout
    assert answers[-1]["hold"]["state"] == "settled"  # 3a ran, and 3b did not undo it
    assert sorted(Charge.objects.values_list("request_id", flat=True)) == ["req_001", "req_002"]
    assert list(Hold.objects.values_list("state", flat=True)) == ["settled"]


@pytest.mark.parametrize(
    "doc", ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))]
)
def test_every_manage_py_command_uses_the_checkouts_venv(doc: str) -> None:
    path = ROOT / doc if doc == "README.md" else ROOT / "docs" / doc
    commands = [
        line
        for block in SHELL_BLOCK.findall(path.read_text(encoding="utf-8"))
        for line in block.splitlines()
        if re.search(r"(^|[\s($])python3? manage\.py", line)
    ]

    # A fresh shell has no `python` with Django on its path; `make run` builds .venv.
    assert commands == [], f"{doc}: use .venv/bin/python manage.py"


def test_local_settings_are_kept_out_of_git() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()

    assert "/.env" in ignored or ".env" in ignored
