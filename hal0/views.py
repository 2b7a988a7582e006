"""The one page outside the admin and the API: ``/``, which says where to go."""

from __future__ import annotations

from pathlib import Path

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """A small landing page: the admin for operators, the API description for agents."""
    return render(request, "home.html")


FAVICON = Path(__file__).resolve().parent.parent / "budgets" / "static" / "hal0" / "favicon.ico"


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``: browsers ask for it on every site, so it is served, not a 404."""
    response = HttpResponse(FAVICON.read_bytes(), content_type="image/x-icon")
    response["Cache-Control"] = "public, max-age=86400"
    return response
