"""What ``/readyz`` checks: the database, the data folder and the worker's heartbeat.

Each check returns ``None`` when it passes, else a short reason with no absolute path in
it (the answer may be read by anyone who can reach the probe).
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from budgets.events.worker import latest_beat


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return f"the database does not answer ({type(exc).__name__})"
    return None


def check_data_dir() -> str | None:
    """Create, write, fsync and remove a small file in the data folder."""
    root = Path(settings.HAL0_DATA_DIR)
    if not root.is_dir():
        return "the data folder is missing or not a folder"
    try:
        fd, name = tempfile.mkstemp(prefix=".readyz-", dir=root)
        try:
            os.write(fd, b"ok\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        # strerror only: str(exc) would carry the absolute path.
        return f"the data folder is not writable ({exc.strerror or type(exc).__name__})"
    return None


def check_worker(now: dt.datetime | None = None) -> str | None:
    if not settings.HAL0_READY_REQUIRES_WORKER:
        return None
    now = now or timezone.now()
    try:
        beat_at = latest_beat()
    except DatabaseError:
        return "unknown: the database does not answer"
    if beat_at is None:
        return "no worker has run (start manage.py worker)"
    age = (now - beat_at).total_seconds()
    if age > settings.HAL0_WORKER_STALE_S:
        return f"the last worker heartbeat is {int(age)} s old (start manage.py worker)"
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "database": check_database,
    "data_dir": check_data_dir,
    "worker": check_worker,
}


def readiness() -> dict[str, str]:
    """Every check by name: ``"ok"`` or the reason it failed. The database goes first: the
    worker check reads it."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        if name == "worker" and results.get("database", "ok") != "ok":
            results[name] = "unknown: the database does not answer"
            continue
        results[name] = check() or "ok"
    return results
