"""Settings from the environment: production refuses to start without a secret, passes
Django's deployment checks, and SQLite runs in WAL mode with IMMEDIATE transactions."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection, transaction

ROOT = Path(__file__).resolve().parents[1]


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py in a child process with a clean, production-like environment."""
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "HAL0_VAR_DIR": str(tmp_path / "var"),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off(tmp_path: Path) -> None:
    result = manage(tmp_path, "check")
    assert result.returncode != 0
    assert result.stderr == (
        "manage.py: SECRET_KEY is required when DEBUG is off; set it in the environment.\n"
    )
    assert result.returncode == 1


def test_the_traceback_of_a_settings_error_is_there_when_asked_for(tmp_path: Path) -> None:
    result = manage(tmp_path, "check", "--traceback")
    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_it_starts_without_a_secret_key_in_debug(tmp_path: Path) -> None:
    result = manage(tmp_path, "check", DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    result = manage(
        tmp_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY="a-production-secret-" + "x7Q2p9Lm4Rt8Vw1Zb6Nc3Hd5Jf0Kg" * 2,
        ALLOWED_HOSTS="spend.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode_with_immediate_transactions() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


@pytest.mark.django_db(transaction=True)
def test_sqlite_takes_the_write_lock_at_begin_and_waits_for_a_busy_database() -> None:
    """Real locks on the real test database file: a second connection cannot start
    writing while a Django transaction is open, even one that has only read so far."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite only")
    timeout_s = connection.settings_dict["OPTIONS"]["timeout"]
    assert timeout_s > 0
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == timeout_s * 1000
    other = sqlite3.connect(connection.settings_dict["NAME"], timeout=0, isolation_level=None)
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again once the transaction ended
        other.execute("ROLLBACK")
    finally:
        other.close()
