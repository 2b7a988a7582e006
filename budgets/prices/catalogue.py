"""The price catalogue: the data bundled in the ``genai-prices`` package.

Read from the installed package only (``genai_prices.data``), never fetched: the
package can also download fresh prices (``UpdatePrices``), and the library's own
``calc_price`` follows whatever such a download installed, so this module reads the
bundled list itself and never starts an updater. What a charge was priced at is
therefore fixed by the installed version, recorded as :data:`VERSION` on every priced
charge (pyproject.toml pins the range).

Which provider's price applies is decided by the charge's ``surface`` (the table
:data:`SURFACE_PROVIDERS`, documented in docs/api.md); a surface that names no provider
matches the model across providers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib.metadata import version
from typing import Any

from budgets.prices.rates import Rate, Rates

VERSION = f"genai-prices {version('genai-prices')}"

# Surfaces (lower-cased) that name a catalogue provider. ``None``: a surface that runs
# models on the operator's own hardware, which no catalogue can price (a Groq price for
# a local Llama would be invented money): prices.toml prices them, or they are unpriced.
# Any other surface that is a catalogue provider's id is that provider; the rest match
# the model across providers.
SURFACE_PROVIDERS: dict[str, str | None] = {
    "openai": "openai",
    "azure": "azure",
    "azure-openai": "azure",
    "anthropic": "anthropic",
    "openrouter": "openrouter",
    "google": "google",
    "gemini": "google",
    "vertex": "google",
    "vertex-ai": "google",
    "bedrock": "aws",
    "aws": "aws",
    "mistral": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "together": "together",
    "fireworks": "fireworks",
    "cohere": "cohere",
    "xai": "x-ai",
    "x-ai": "x-ai",
    "perplexity": "perplexity",
    "cerebras": "cerebras",
    "moonshot": "moonshotai",
    "local": None,
    "ollama": None,
    "lmstudio": None,
    "llamacpp": None,
    "vllm": None,
}

# Catalogue price keys -> our components (others, such as audio or web searches, are
# not priced from token counts and count zero here, as in genai-prices without them).
_COMPONENTS = {
    "input": "input_mtok",
    "output": "output_mtok",
    "cache_read": "cache_read_mtok",
    "cache_write": "cache_write_mtok",
}


@dataclass(frozen=True)
class CatalogueEntry:
    """A model's catalogue prices: each option is (constraint or None, rates), in the
    catalogue's order; the last whose constraint holds at a time applies."""

    provider: str
    model_id: str
    options: tuple[tuple[Any, Rates], ...]

    def rates_at(self, at: dt.datetime) -> Rates:
        # genai-prices' ModelInfo.get_prices: later prices win; the first is the default.
        for constraint, rates in reversed(self.options):
            if constraint is None or constraint.active(at):
                return rates
        return self.options[0][1]


def _rate(value: Any) -> Rate | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return Rate(value)
    # genai_prices.types.TieredPrices: a base and (start, price) cliffs.
    return Rate(value.base, tuple((int(t.start), t.price) for t in value.tiers))


def _rates(model_price: Any) -> Rates:
    return Rates(
        **{ours: _rate(getattr(model_price, key, None)) for ours, key in _COMPONENTS.items()}
    )


@cache
def _snapshot() -> Any:
    # Imported on first use: the bundled data is a large module (about half a second).
    from genai_prices.data import providers
    from genai_prices.data_snapshot import DataSnapshot

    return DataSnapshot(providers=providers, from_auto_update=False)


def providers() -> Sequence[Any]:
    return list(_snapshot().providers)


def provider_for_surface(surface: str | None) -> tuple[bool, str | None]:
    """``(known, provider)``: whether the surface decides the provider, and which one
    (``None`` with known=True: a local surface with no catalogue price)."""
    if not surface:
        return False, None
    key = surface.strip().lower()
    if key in SURFACE_PROVIDERS:
        return True, SURFACE_PROVIDERS[key]
    if any(p.id == key for p in _snapshot().providers):
        return True, key
    return False, None


def _entry(provider: Any, model: Any) -> CatalogueEntry:
    prices = model.prices
    if isinstance(prices, list):
        options = tuple((cp.constraint, _rates(cp.prices)) for cp in prices)
    else:
        options = ((None, _rates(prices)),)
    return CatalogueEntry(provider=provider.id, model_id=model.id, options=options)


def _in_provider(snapshot: Any, model: str, provider_id: str) -> CatalogueEntry | None:
    try:
        provider, info = snapshot.find_provider_model(model, None, provider_id, None)
    except LookupError:
        # "openai/gpt-4o" sent to the openai surface: try the name after the vendor.
        _, _, name = model.partition("/")
        return _in_provider(snapshot, name, provider_id) if name else None
    return _entry(provider, info)


def _across(snapshot: Any, model: str) -> CatalogueEntry | None:
    # 1. genai-prices' own guess of the provider from the model's name.
    try:
        provider, info = snapshot.find_provider_model(model, None, None, None)
        return _entry(provider, info)
    except LookupError:
        pass
    # 2. "vendor/model", as gateways spell it: the vendor's own price.
    vendor, _, name = model.partition("/")
    if name:
        try:
            provider, info = snapshot.find_provider_model(name, None, vendor, None)
            return _entry(provider, info)
        except LookupError:
            pass
    # 3. The first provider, in catalogue order, that lists the model.
    for provider in snapshot.providers:
        info = provider.find_model(model)
        if info is not None:
            return _entry(provider, info)
    return None


def lookup(model: str, surface: str | None) -> CatalogueEntry | None:
    """The catalogue's prices for ``model`` as sent on ``surface``, or ``None``.

    A scan of the catalogue: callers cache the answer (see :mod:`budgets.prices.resolve`).
    """
    snapshot = _snapshot()
    known, provider_id = provider_for_surface(surface)
    if known:
        found = None if provider_id is None else _in_provider(snapshot, model, provider_id)
    else:
        found = _across(snapshot, model)
    if found is None or not any(rates.prices_text for _, rates in found.options):
        return None
    return found
