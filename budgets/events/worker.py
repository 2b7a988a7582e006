"""``manage.py worker``: the service's background work, in a loop.

Each turn beats this worker's heartbeat (``/readyz`` reports a worker that stopped
beating) and runs every job once; a turn that found no work sleeps ``poll_s``. Jobs are
plain functions returning how many items they handled, so a test can drive one turn with
``run_once()`` instead of a sleeping loop.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from budgets.events.models import WorkerHeartbeat

log = logging.getLogger(__name__)

Job = Callable[[str], int]


def new_worker_id() -> str:
    """Host, pid and a random suffix: unique even when a pid is reused after a restart."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{secrets.token_hex(4)}"


def beat(worker_id: str, *, started_at: dt.datetime, now: dt.datetime | None = None) -> None:
    now = now or timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        worker_id=worker_id,
        defaults={
            "host": socket.gethostname()[:200],
            "pid": os.getpid(),
            "started_at": started_at,
            "beat_at": now,
        },
    )


def latest_beat() -> dt.datetime | None:
    return WorkerHeartbeat.objects.order_by("-beat_at").values_list("beat_at", flat=True).first()


def prune_heartbeats(now: dt.datetime) -> int:
    """Forget workers silent for a day (a restarted worker gets a new id)."""
    deleted, _ = WorkerHeartbeat.objects.filter(beat_at__lt=now - dt.timedelta(days=1)).delete()
    return deleted


def default_jobs() -> Sequence[Job]:
    from budgets.events import delivery

    return (delivery.deliver_due,)


def run_once(worker_id: str, jobs: Sequence[Job] | None = None) -> int:
    """One turn of every job; returns how many items they handled in all."""
    done = 0
    for job in jobs if jobs is not None else default_jobs():
        done += job(worker_id)
    return done


class Worker:
    def __init__(self, *, poll_s: float | None = None, jobs: Sequence[Job] | None = None):
        self.worker_id = new_worker_id()
        self.poll_s = poll_s if poll_s is not None else settings.HAL0_WORKER_POLL_S
        self.jobs = jobs
        self.stopping = threading.Event()
        self.started_at = timezone.now()

    def stop(self, *_: Any) -> None:
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        # SIGTERM (systemd, docker stop) and Ctrl-C finish the current item, then exit.
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self) -> None:
        log.info("worker %s started", self.worker_id)
        last_beat: dt.datetime | None = None
        beat_every = dt.timedelta(seconds=settings.HAL0_WORKER_BEAT_S)
        while not self.stopping.is_set():
            # A connection the database closed while we slept is replaced, not reused.
            close_old_connections()
            try:
                now = timezone.now()
                if last_beat is None or now - last_beat >= beat_every:
                    beat(self.worker_id, started_at=self.started_at, now=now)
                    if last_beat is None:
                        prune_heartbeats(now)
                    last_beat = now
                done = run_once(self.worker_id, self.jobs)
            except Exception:
                # A database restart or a bug in one item must not end the worker: it logs,
                # waits a turn and tries again (a stopped worker is what /readyz reports).
                log.exception("worker turn failed")
                done = 0
            if not done:
                self.stopping.wait(self.poll_s)
        WorkerHeartbeat.objects.filter(worker_id=self.worker_id).delete()
        log.info("worker %s stopped", self.worker_id)
