"""One lookup for every reader: what does ``model`` cost on ``surface``?

:func:`resolve_price` is pure given the overrides (prices.toml beats the catalogue; a
surface's own override beats one for every surface) and cached per
``(model, surface, overrides version)``: a priced check or charge costs a dict lookup,
never a TOML parse or a catalogue scan. The check, the charge, ``GET /api/prices``,
``manage.py prices`` and the admin all ask it, so they all show the same price.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Literal

from budgets.prices import catalogue
from budgets.prices.overrides import Overrides
from budgets.prices.rates import Rates

Source = Literal["catalogue", "override"]


@dataclass(frozen=True)
class Price:
    """A model's price on a surface, with where it came from."""

    model: str
    surface: str | None
    rates: Rates
    source: Source
    version: str  # "genai-prices 0.2.3" or "prices.toml <sha256[:12]>"
    provider: str | None = None  # the catalogue's provider and model id, when from it
    catalogue_model: str | None = None
    override_index: int | None = None  # the [[price]] entry, when from prices.toml


@dataclass(frozen=True)
class _Found:
    # ``price`` when it does not depend on the time (an override, or a catalogue entry
    # with one price list): built once, returned as is.
    price: Price | None
    entry: catalogue.CatalogueEntry | None


# Bounded: clients may send any model name. When full the cache starts over (each entry
# is one catalogue scan away).
_CACHE_MAX = 10_000
_cache: dict[tuple[str, str, str], _Found] = {}
_cache_lock = threading.Lock()


def _find(model: str, surface: str | None, overrides: Overrides) -> _Found:
    override = overrides.find(model, surface)
    if override is not None:
        price = Price(
            model=model,
            surface=surface,
            rates=override.rates,
            source="override",
            version=overrides.version,
            override_index=override.index,
        )
        return _Found(price, None)
    entry = catalogue.lookup(model, surface)
    if entry is not None and len(entry.options) == 1:
        return _Found(_catalogue_price(model, surface, entry, entry.options[0][1]), None)
    return _Found(None, entry)


def _catalogue_price(
    model: str, surface: str | None, entry: catalogue.CatalogueEntry, rates: Rates
) -> Price:
    return Price(
        model=model,
        surface=surface,
        rates=rates,
        source="catalogue",
        version=catalogue.VERSION,
        provider=entry.provider,
        catalogue_model=entry.model_id,
    )


def resolve_price(
    model: str, surface: str | None, *, overrides: Overrides, at: dt.datetime
) -> Price | None:
    """The price of ``model`` on ``surface`` at ``at``, or ``None`` when nobody knows it."""
    key = (model, surface or "", overrides.version)
    found = _cache.get(key)
    if found is None:
        found = _find(model, surface, overrides)
        with _cache_lock:
            if len(_cache) >= _CACHE_MAX:
                _cache.clear()
            _cache[key] = found
    if found.price is not None:
        return found.price
    entry = found.entry
    if entry is None:
        return None
    # Catalogue prices that change on a date (a new price list): chosen at ``at``.
    return _catalogue_price(model, surface, entry, entry.rates_at(at))


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
