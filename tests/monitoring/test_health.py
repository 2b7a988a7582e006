"""/healthz answers without the database; /readyz checks the database, the data folder and
the worker's heartbeat, and names what fails in the error envelope with a 503."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from budgets.events.worker import beat


def test_healthz_answers_without_touching_the_database() -> None:
    # No db fixture: pytest-django makes any query here an error.
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_refuses_other_methods() -> None:
    assert Client().post("/healthz").status_code == 405


@pytest.fixture
def worker_beating(db: None) -> None:
    now = timezone.now()
    beat("test-worker", started_at=now, now=now)


def test_readyz_is_ready_with_database_data_folder_and_a_recent_heartbeat(
    worker_beating: None,
) -> None:
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "data_dir": "ok", "worker": "ok"},
    }
    assert "no-cache" in response["Cache-Control"]


def test_readyz_503_when_no_worker_ever_ran(db: None) -> None:
    response = Client().get("/readyz")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    assert error["details"]["failing"] == ["worker"]
    assert "manage.py worker" in error["message"]


def test_readyz_503_when_the_heartbeat_is_stale(db: None, settings: Any) -> None:
    settings.HAL0_WORKER_STALE_S = 30
    long_ago = timezone.now() - dt.timedelta(seconds=45)
    beat("stale-worker", started_at=long_ago, now=long_ago)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["details"]["checks"]["worker"].startswith(
        "the last worker heartbeat is 4"
    )


def test_readyz_ignores_the_worker_when_told_to(db: None, settings: Any) -> None:
    settings.HAL0_READY_REQUIRES_WORKER = False
    assert Client().get("/readyz").status_code == 200


def test_readyz_503_when_the_data_folder_is_a_file(worker_beating: None, data_dir: Path) -> None:
    shutil.rmtree(data_dir)
    data_dir.write_text("not a folder")
    response = Client().get("/readyz")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["details"]["failing"] == ["data_dir"]
    assert error["details"]["checks"]["database"] == "ok"
    assert str(data_dir) not in response.content.decode()


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` refuse new files, for root too (``chattr +i``) or by mode bits."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], check=False).returncode:
        pytest.skip("running as root on a filesystem without chattr +i: cannot make it read-only")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def test_readyz_503_when_the_data_folder_is_not_writable(
    worker_beating: None, data_dir: Path
) -> None:
    with read_only(data_dir):
        response = Client().get("/readyz")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["details"]["failing"] == ["data_dir"]
    assert error["message"].startswith("data_dir: the data folder is not writable (")
    assert str(data_dir) not in response.content.decode()
    # Once writable again, ready again.
    assert Client().get("/readyz").status_code == 200
    assert [p.name for p in data_dir.iterdir() if p.name.startswith(".readyz-")] == []
