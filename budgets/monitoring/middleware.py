"""Times every request into ``hal0_http_request_duration_seconds`` by route template."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from budgets.monitoring.metrics import REQUEST_SECONDS


class RequestMetricsMiddleware:
    """First in ``MIDDLEWARE``, so the time covers the whole chain.

    The label is the URL pattern that matched (``route``), never the raw path: a path
    holds ids, and a label per id would grow without bound. Unmatched paths share one
    label.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "(unmatched)"
        REQUEST_SECONDS.labels(request.method or "", route, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response
