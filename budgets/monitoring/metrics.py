"""Prometheus metrics: what the processes count, and what the scrape computes.

Counted in the processes that serve requests (``prometheus-client``; in multiprocess
mode under gunicorn, see ``hal0/gunicorn.conf.py``, each worker writes its own files and
the scrape adds them up):

- ``hal0_http_request_duration_seconds{method,route,status}``: a histogram per route
  template (``api/agents/<str:agent_id>/...``, never the raw path); its ``_count`` is
  the request count;
- ``hal0_checks_total{decision}``, ``hal0_charges_total``,
  ``hal0_mirror_append_failures_total``.

Computed from the database at scrape time (``budgets.monitoring.collectors``): spend,
caps and holds per scope and window, and webhook deliveries by outcome.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUEST_SECONDS = Histogram(
    "hal0_http_request_duration_seconds",
    "HTTP requests by route template and status: latency (and, as _count, the number)",
    ["method", "route", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
CHECKS = Counter("hal0_checks", "Budget checks answered, by decision", ["decision"])
CHARGES = Counter("hal0_charges", "Charges recorded (replays of a request_id not counted)")
MIRROR_APPEND_FAILURES = Counter(
    "hal0_mirror_append_failures",
    "Charges whose JSONL mirror append failed (run `manage.py ledger repair`)",
)


def check_answered(decision: str) -> None:
    CHECKS.labels(decision).inc()


def charge_recorded() -> None:
    CHARGES.inc()


def mirror_append_failed(lines: int) -> None:
    MIRROR_APPEND_FAILURES.inc(lines)
