"""gunicorn settings for hal0: ``gunicorn hal0.wsgi -c hal0/gunicorn.conf.py``.

Prometheus multiprocess mode: every worker writes its metrics to files in
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up. The folder is emptied when the
server starts (figures of a previous run must not count) and a dead worker's live gauges
are dropped (docs/alerts.md).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any


def on_starting(server: Any) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        path = Path(folder)
        if path.is_dir():
            shutil.rmtree(path)
        path.mkdir(parents=True)


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
