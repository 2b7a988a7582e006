"""The parent side of ``manage.py bench``: one child process per throwaway database.

Each child gets a fresh temporary folder (SQLite file, data folder, var folder) and, for
PostgreSQL, a database created for the run and dropped after it. Everything is removed
when the run ends, whether it succeeded or not.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.conf import settings

from budgets.bench.child import Config
from budgets.bench.databases import sqlite_url, throwaway_postgres

# Variables of the caller's environment a child must not inherit: a test run's marker
# (it changes the settings) and anything that would point it at a real database.
_DROPPED = ("PYTEST_VERSION", "PYTEST_CURRENT_TEST", "DATABASE_URL", "HAL0_DATA_DIR")


class BenchFailed(RuntimeError):
    pass


def child_env(database_url: str, folder: Path) -> dict[str, str]:
    """Production-like settings for the child, all state under ``folder``."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    (folder / "var" / "static").mkdir(parents=True, exist_ok=True)
    env.update(
        DATABASE_URL=database_url,
        HAL0_DATA_DIR=str(folder / "data"),
        HAL0_VAR_DIR=str(folder / "var"),
        SECRET_KEY=secrets.token_urlsafe(50),
        DEBUG="false",
        # Plain HTTP on 127.0.0.1: no redirect to https, cookies not marked secure.
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        HAL0_REQUIRE_API_KEY="true",
        LOG_LEVEL="WARNING",
    )
    env.setdefault("DJANGO_SETTINGS_MODULE", "hal0.settings")
    return env


@contextlib.contextmanager
def _database(kind: str, folder: Path, postgres_url: str | None) -> Iterator[str]:
    if kind == "sqlite":
        yield sqlite_url(folder)
        return
    if not postgres_url:
        raise BenchFailed("PostgreSQL needs --database-url or DATABASE_URL=postgres://...")
    with throwaway_postgres(postgres_url) as (url, _version):
        yield url


def run(
    configs: list[Config],
    *,
    postgres_url: str | None,
    say: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Run each config (one per database) in its own child; returns their raw results."""
    results = []
    root = Path(tempfile.mkdtemp(prefix="hal0-bench-"))
    try:
        for config in configs:
            folder = root / config.database
            folder.mkdir()
            logs = folder / "logs"
            logs.mkdir()
            config = Config(**{**asdict(config), "log_dir": str(logs)})
            with _database(config.database, folder, postgres_url) as url:
                say(f"{config.database}: throwaway database and data folder under {folder}")
                config_path = folder / "config.json"
                out_path = folder / "results.json"
                config_path.write_text(json.dumps(asdict(config)))
                done = subprocess.run(  # noqa: S603 - our interpreter, our module
                    [sys.executable, "-m", "budgets.bench.child", str(config_path), str(out_path)],
                    cwd=settings.BASE_DIR,
                    env=child_env(url, folder),
                    check=False,
                )
                if done.returncode != 0:
                    raise BenchFailed(f"the {config.database} run failed (exit {done.returncode})")
                results.append(json.loads(out_path.read_text()))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results
