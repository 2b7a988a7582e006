"""The one page outside the admin and the API: ``/``, which says where to go."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """A small landing page: the admin for operators, the API description for agents."""
    return render(request, "home.html")
