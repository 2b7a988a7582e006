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
    override: Price | None
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
    return _Found(None, catalogue.lookup(model, surface))


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
    if found.override is not None:
        return found.override
    entry = found.entry
    if entry is None:
        return None
    return Price(
        model=model,
        surface=surface,
        # Catalogue prices can change on a date (a new price list): chosen at ``at``.
        rates=entry.rates_at(at),
        source="catalogue",
        version=catalogue.VERSION,
        provider=entry.provider,
        catalogue_model=entry.model_id,
    )


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
