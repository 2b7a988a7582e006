"""The Prices page: the overrides of prices.toml in force, the file's state, and a
lookup of any model on any surface (the price a check or a charge would use)."""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from budgets.prices import catalogue, quote, store

MAX_QUERY = 200


def prices_page(request: HttpRequest, *, site: AdminSite) -> HttpResponse:
    state = store.current()
    model = request.GET.get("model", "").strip()[:MAX_QUERY]
    surface = request.GET.get("surface", "").strip()[:MAX_QUERY] or None
    looked_up: dict[str, Any] | None = None
    unknown = ""
    if model:
        price = quote.price_of(model, surface, at=timezone.now())
        if price is None:
            unknown = quote.price_unknown(model, surface).message
        else:
            looked_up = quote.price_json(price)
    context = {
        **site.each_context(request),
        "title": "Prices",
        "subtitle": None,
        "state": state,
        "catalogue_version": catalogue.VERSION,
        "surfaces": sorted(catalogue.SURFACE_PROVIDERS.items()),
        "model": model,
        "surface": surface or "",
        "price": looked_up,
        "unknown": unknown,
    }
    return TemplateResponse(request, "admin/hal0/prices.html", context)
