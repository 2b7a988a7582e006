"""The distribution: ``pip install ./client`` works, needs nothing else, runs on Python 3.9."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from client_support import LiveService

CLIENT_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip install ./client`` into a folder of its own, as a user would (pip fetches the
    build backend, setuptools, from the package index)."""
    target = tmp_path_factory.mktemp("installed")
    build = tmp_path_factory.mktemp("build")
    # pip builds in the source tree's build/ folder; a copy keeps the tree clean.
    source = build / "client"
    shutil.copytree(
        CLIENT_DIR, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info")
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return target


def test_the_installed_package_is_typed_and_declares_no_dependency(installed: Path) -> None:
    assert (installed / "hal0_client" / "py.typed").is_file()
    (metadata,) = installed.glob("hal0_client-*.dist-info/METADATA")
    text = metadata.read_text()
    assert "Name: hal0-client" in text
    assert "Requires-Python: >=3.9" in text
    assert "Requires-Dist" not in text


def test_it_imports_with_nothing_but_the_standard_library(installed: Path) -> None:
    # -S: no site-packages at all, so no third-party package can be what makes it work.
    done = subprocess.run(
        [sys.executable, "-S", "-c", "import hal0_client; print(hal0_client.__file__)"],
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(installed))


def _python39() -> str | None:
    """A Python 3.9 interpreter on this machine, if there is one."""
    candidates = [
        os.environ.get("HAL0_PYTHON39", ""),
        shutil.which("python3.9") or "",
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9"))),
        "/usr/bin/python3.9",
    ]
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 9))"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if done.stdout.strip() == "True":
            return candidate
    return None


PY39_AGENT = textwrap.dedent(
    """
    import asyncio, json, sys
    from hal0_client import AsyncSpendClient, BudgetExceeded, SpendClient, extract_usage

    base, key, persona = sys.argv[1:4]
    spend = SpendClient(base, key=key, agent="hermes", persona=persona)
    with spend.guard(surface="s", model="m", estimated_cost_usd=0.05) as call:
        call.record({"usage": {"prompt_tokens": 10, "completion_tokens": 2, "cost": 0.02}})
    try:
        spend.guard(surface="s", model="m", estimated_cost_usd=5).open()
        refused = None
    except BudgetExceeded as exc:
        refused = exc.limit

    async def agent():
        aspend = AsyncSpendClient(base, key=key, agent="hermes", persona=persona)
        async with aspend.guard(surface="s", model="m", estimated_cost_usd=0.01) as acall:
            acall.record(cost_usd=0.01)
        return acall.request_id

    print(json.dumps({
        "version": list(sys.version_info[:2]),
        "request_ids": [call.request_id, asyncio.run(agent())],
        "refused": refused,
        "anthropic": extract_usage(
            {"type": "message", "usage": {"input_tokens": 1, "output_tokens": 2,
             "cache_read_input_tokens": 3, "cache_creation_input_tokens": 4}}
        ).input_tokens,
    }))
    """
)


def test_the_client_runs_on_python_3_9(
    installed: Path, service: LiveService, persona: Callable[..., str]
) -> None:
    python = _python39()
    if python is None:
        pytest.skip("no Python 3.9 interpreter here (set HAL0_PYTHON39 to one)")
    pid = persona("daily_usd = 1.0")
    done = subprocess.run(
        [python, "-c", PY39_AGENT, service.base_url, service.agent_key, pid],
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["version"] == [3, 9]
    assert out["refused"] == "daily"
    assert out["anthropic"] == 8
    assert [row[0] for row in service.charges(pid)] == out["request_ids"]
