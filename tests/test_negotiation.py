"""Content negotiation: the shortcut for the usual Accept headers answers exactly what
DRF's own negotiation answers, for every header, view and query string tried."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import Http404
from django.test import RequestFactory
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIClient

from budgets.views import CheckView
from hal0.negotiation import UsualAcceptNegotiation

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "",
    "text/html",
    "application/json; indent=4",
    "application/*",
    "text/html, */*;q=0.1",
    "application/json, text/html",
    "application/yaml",
    "image/png",
]
QUERIES = ["", "format=json", "format=html", "x=1"]


def _renderers(view: Any) -> list[BaseRenderer]:
    return [cls() for cls in view.renderer_classes]


def _answer(negotiation: DefaultContentNegotiation, request: Request, view: Any) -> Any:
    try:
        renderer, media_type = negotiation.select_renderer(request, _renderers(view))
    except exceptions.NotAcceptable:
        return "406"
    except Http404:  # ?format= naming a format the view does not render
        return "404"
    return type(renderer), media_type


@pytest.mark.parametrize("view", [CheckView, SpectacularAPIView], ids=["check", "schema"])
@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_shortcut_answers_as_drf_does(accept: str | None, query: str, view: Any) -> None:
    headers: dict[str, Any] = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(RequestFactory().get(f"/api/x?{query}" if query else "/api/x", **headers))
    assert _answer(UsualAcceptNegotiation(), request, view) == _answer(
        DefaultContentNegotiation(), request, view
    )


def test_the_api_uses_it_and_still_refuses_what_it_cannot_render(db: None, settings: Any) -> None:
    from rest_framework.settings import api_settings

    assert api_settings.DEFAULT_CONTENT_NEGOTIATION_CLASS is UsualAcceptNegotiation
    assert CheckView.renderer_classes == [JSONRenderer]
    client = APIClient()
    url = "/api/agents/hermes/personas/hermes/budget"
    assert client.get(url, HTTP_ACCEPT="text/html").json()["error"]["code"] == (
        "request.not_acceptable"
    )
