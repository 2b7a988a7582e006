"""``/healthz``, ``/readyz``, ``/metrics``: plain Django views (no session; no database for
``/healthz``). Health answers in JSON, a failure in the API's error envelope."""

from __future__ import annotations

import os
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from budgets.monitoring.access import may_read_metrics
from budgets.monitoring.collectors import DatabaseCollector
from budgets.monitoring.health import readiness
from hal0.errors import envelope

_COMPACT = {"separators": (",", ":")}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers. Touches nothing else, so a slow database never restarts it."""
    return JsonResponse({"status": "ok"}, json_dumps_params=_COMPACT)


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: database reachable, data folder writable, a worker beating."""
    checks = readiness()
    failing = [name for name, result in checks.items() if result != "ok"]
    if not failing:
        return JsonResponse({"status": "ready", "checks": checks}, json_dumps_params=_COMPACT)
    message = "; ".join(f"{name}: {checks[name]}" for name in failing)
    body = envelope("not_ready", message, {"failing": failing, "checks": checks})
    return JsonResponse(body, status=503, json_dumps_params=_COMPACT)


class _ProcessCollector(Collector):
    """This process's own metrics (the default registry), when not in multiprocess mode."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. Under gunicorn (multiprocess mode) the counters are the sum
    over every worker's files; the spend gauges are computed here from the database."""
    allowed, status = may_read_metrics(request)
    if not allowed:
        code, message = (
            ("auth.missing", "send an operator API key as a Bearer token")
            if status == 401
            else ("auth.forbidden", "only an operator API key may read metrics")
        )
        return JsonResponse(envelope(code, message), status=status, json_dumps_params=_COMPACT)
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessCollector())
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
