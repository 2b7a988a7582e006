"""``make run`` as a newcomer types it: it says where to go next, ``/`` points there, and
``HOST=0.0.0.0`` serves another machine once its name for this one is in ALLOWED_HOSTS
(and says so in JSON when it is not)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from budgets.bench.http import free_port, roundtrip

ROOT = Path(settings.BASE_DIR)
OTHER_NAME = "192.0.2.50"  # how another machine on the network names this one


def get(port: int, path: str, host: str) -> tuple[int, bytes]:
    raw = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    return roundtrip(port, raw.encode())


def make_run(tmp_path: Path, *args: str) -> Iterator[tuple[int, list[str]]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "DATABASE_URL")}
    env |= {"HAL0_VAR_DIR": str(tmp_path / "var"), "HAL0_REQUIRE_API_KEY": "false"}
    env.pop("ALLOWED_HOSTS", None)
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", "HOST=0.0.0.0", f"PORT={port}", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: make, manage.py and the reloader
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if "Quit the server with" in line:
                yield port, lines
                return
        pytest.fail("make run did not start:\n" + "\n".join(lines))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.fixture
def plain_run(tmp_path: Path) -> Iterator[tuple[int, list[str]]]:
    yield from make_run(tmp_path)


def test_make_run_says_where_to_go_next(plain_run: tuple[int, list[str]]) -> None:
    port, lines = plain_run
    output = "\n".join(lines)

    assert f"admin:     http://127.0.0.1:{port}/admin/" in output
    assert f"API docs:  http://127.0.0.1:{port}/api/docs/" in output
    assert "ALLOWED_HOSTS" in output  # HOST=0.0.0.0: what another machine needs
    status, body = get(port, "/", f"127.0.0.1:{port}")
    assert status == 200
    assert b'href="/admin/"' in body


def test_another_machine_is_told_which_setting_names_it(
    plain_run: tuple[int, list[str]],
) -> None:
    port, _ = plain_run

    status, body = get(port, "/api/agents", f"{OTHER_NAME}:{port}")

    assert status == 400
    error = json.loads(body)["error"]  # JSON even with DEBUG on, not the HTML debug page
    assert f"add '{OTHER_NAME}' to the ALLOWED_HOSTS setting" in error["message"]


def test_another_machine_is_served_once_its_name_is_allowed(tmp_path: Path) -> None:
    for port, _ in make_run(tmp_path, f"ALLOWED_HOSTS={OTHER_NAME},127.0.0.1,localhost"):
        status, body = get(port, "/api/agents", f"{OTHER_NAME}:{port}")

        assert status == 200, body
        assert [a["id"] for a in json.loads(body)["agents"]] == ["hermes"]
