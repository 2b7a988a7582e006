"""``/healthz``, ``/readyz``: plain Django views (no API key, no session, no database for
``/healthz``), answered in JSON; a failure uses the API's error envelope."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

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
