"""A command whose reader goes away (``manage.py apikey list | head``) stops quietly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings


@pytest.mark.parametrize("args", [["help"], ["ledger", "--help"], ["diffsettings"]])
def test_a_closed_pipe_ends_the_command_without_a_traceback(
    tmp_path: Path, args: list[str]
) -> None:
    # The pipe's reading end is closed before the command starts, so its first line of
    # output already finds no reader: exactly `| head` having read what it wanted.
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DEBUG": "true",
        "HAL0_VAR_DIR": str(tmp_path),
    }
    try:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)

    assert done.stderr == ""
    assert done.returncode == 141  # 128 + SIGPIPE, as a shell reports a tool cut off by head
