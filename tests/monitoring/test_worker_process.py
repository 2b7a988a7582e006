"""``manage.py worker`` as a real process: it beats a heartbeat /readyz sees, and stops
cleanly on SIGTERM (taking its heartbeat with it)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from django.test import Client

from budgets.events.models import WorkerHeartbeat
from tests.process_support import child_env, manage, wait_for


@pytest.mark.django_db(transaction=True)
def test_a_running_worker_makes_readyz_ready_and_sigterm_stops_it(data_dir: Path) -> None:
    assert Client().get("/readyz").status_code == 503
    worker = manage("worker", "--poll", "0.2", env=child_env(data_dir))
    try:
        wait_for(lambda: WorkerHeartbeat.objects.exists())
        assert Client().get("/readyz").status_code == 200
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, out
    assert "stopped" in out
    assert not WorkerHeartbeat.objects.exists()
    assert Client().get("/readyz").status_code == 503
