"""``prices.toml``: the operator's prices, which win over the catalogue. Pure code.

Text -> :class:`Overrides`, with no files, settings or database (the file is read by
:mod:`budgets.prices.store`). Format (docs/api.md, "Pricing")::

    [[price]]
    model = "llama-3.3-70b"        # as clients send it (compared without case)
    surface = "local"              # optional: only for this surface
    input_per_mtok_usd = 0
    output_per_mtok_usd = 0
    cache_read_per_mtok_usd = 0    # optional, also cache_write_per_mtok_usd

An override replaces the catalogue's price as a whole: a cache rate it leaves out is not
taken from the catalogue (a partial mix of two price lists is nobody's price); cache
tokens are then billed at its input rate. Every problem is reported, each naming the
entry (``price #2``) and the key; a message never contains a path.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from budgets.prices.rates import Rate, Rates

MAX_TEXT = 200
# USD per million tokens; far above any real price, low enough that no cost overflows.
MAX_RATE = Decimal(1_000_000)
RATE_KEYS = {
    "input_per_mtok_usd": "input",
    "output_per_mtok_usd": "output",
    "cache_read_per_mtok_usd": "cache_read",
    "cache_write_per_mtok_usd": "cache_write",
}
REQUIRED_RATES = ("input_per_mtok_usd", "output_per_mtok_usd")
KNOWN_KEYS = ("model", "surface", *RATE_KEYS)


class PricesInvalid(ValueError):
    """prices.toml cannot be used; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Override:
    model: str
    surface: str | None
    rates: Rates
    index: int  # 1-based position in the file, for messages and the admin


@dataclass(frozen=True)
class Overrides:
    """The valid overrides of one prices.toml text; ``version`` names that text."""

    entries: tuple[Override, ...] = ()
    version: str = ""
    _index: dict[tuple[str, str | None], Override] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, entries: tuple[Override, ...], version: str) -> Overrides:
        index = {(e.model.lower(), e.surface.lower() if e.surface else None): e for e in entries}
        return cls(entries, version, index)

    def find(self, model: str, surface: str | None) -> Override | None:
        """The surface's own override first, then the one for every surface."""
        key = model.lower()
        if surface:
            found = self._index.get((key, surface.lower()))
            if found is not None:
                return found
        return self._index.get((key, None))


EMPTY = Overrides()


def _text(entry: dict[str, Any], key: str, where: str, errors: list[str]) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{where}: '{key}' must be a non-empty string")
        return None
    if len(value) > MAX_TEXT:
        errors.append(f"{where}: '{key}' must be at most {MAX_TEXT} characters")
        return None
    return value.strip()


def _rate(entry: dict[str, Any], key: str, where: str, errors: list[str]) -> Rate | None:
    if key not in entry:
        if key in REQUIRED_RATES:
            errors.append(f"{where}: '{key}' is required (USD per million tokens; 0 for free)")
        return None
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        errors.append(f"{where}: '{key}' must be a number (USD per million tokens)")
        return None
    number = Decimal(value)
    if not number.is_finite() or number < 0:
        errors.append(f"{where}: '{key}' must be a finite number >= 0")
        return None
    if number > MAX_RATE:
        errors.append(f"{where}: '{key}' must be at most {MAX_RATE} USD per million tokens")
        return None
    return Rate(number)


def parse_prices(text: str) -> Overrides:
    """Validate prices.toml text; raise :class:`PricesInvalid` listing every problem."""
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise PricesInvalid([f"not valid TOML: {exc}"]) from exc
    raw = data.get("price", [])
    if not isinstance(raw, list):
        raise PricesInvalid(["'price' must be an array of tables: write each as [[price]]"])
    errors: list[str] = []
    entries: list[Override] = []
    seen: dict[tuple[str, str | None], int] = {}
    for number, entry in enumerate(raw, start=1):
        where = f"price #{number}"
        if not isinstance(entry, dict):
            errors.append(f"{where}: must be a table ([[price]])")
            continue
        for key in sorted(entry.keys() - set(KNOWN_KEYS)):
            errors.append(f"{where}: unknown key '{key}' (known: {', '.join(KNOWN_KEYS)})")
        model = _text(entry, "model", where, errors)
        if model is None and "model" not in entry:
            errors.append(f"{where}: 'model' is required")
        surface = _text(entry, "surface", where, errors)
        rates = {ours: _rate(entry, key, where, errors) for key, ours in RATE_KEYS.items()}
        if model is None:
            continue
        key = (model.lower(), surface.lower() if surface else None)
        if key in seen:
            on = f" on surface '{surface}'" if surface else ""
            errors.append(f"{where}: model '{model}'{on} is already priced by price #{seen[key]}")
            continue
        seen[key] = number
        entries.append(Override(model, surface, Rates(**rates), number))
    if errors:
        raise PricesInvalid(errors)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return Overrides.of(tuple(entries), f"prices.toml {digest}")
