"""Money from tokens for the check and the charge, and the prices API's answer.

The check's estimate and the charge's cost are decided here, so the budget services
only receive nano-USD and a source. Every lookup goes through
:func:`budgets.prices.resolve.resolve_price` with the overrides in force.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from budgets.prices import catalogue, store
from budgets.prices.rates import Usage, UsageInvalid, cost_nanos, worst_case_nanos
from budgets.prices.resolve import Price, resolve_price
from hal0.errors import ApiError, BadRequest, NotFound
from hal0.money import MAX_USD, NANOS_PER_USD, usd_number

EstimateSource = Literal["client", "catalogue", "override"]
CostSource = Literal["reported", "catalogue", "override", "unpriced"]


def price_of(model: str, surface: str | None, *, at: dt.datetime) -> Price | None:
    return resolve_price(model, surface, overrides=store.current().overrides, at=at)


def _unknown_message(model: str, surface: str | None) -> str:
    on = f" on surface {surface!r}" if surface else ""
    where = f'surface = "{surface}", ' if surface else ""
    return (
        f"no price for model {model!r}{on}: send estimated_cost_usd, or add it to "
        f'prices.toml ([[price]] model = "{model}", {where}input_per_mtok_usd = ..., '
        "output_per_mtok_usd = ...)"
    )


def price_unknown(model: str, surface: str | None, *, status: int = 400) -> ApiError:
    error: type[ApiError] = BadRequest if status == 400 else NotFound
    return error(
        _unknown_message(model, surface),
        code="price.unknown",
        details={"model": model, "surface": surface},
    )


@dataclass(frozen=True)
class Estimate:
    nanos: int
    source: EstimateSource

    def to_json(self) -> dict[str, Any]:
        return {"usd": usd_number(self.nanos), "source": self.source}


def client_estimate(nanos: int) -> Estimate:
    return Estimate(nanos, "client")


def token_estimate(
    *,
    model: str,
    surface: str | None,
    input_tokens: int,
    max_output_tokens: int,
    at: dt.datetime,
) -> Estimate:
    """The worst case of a call with these tokens; 400 ``price.unknown`` if unpriced."""
    price = price_of(model, surface, at=at)
    if price is None:
        raise price_unknown(model, surface)
    nanos = worst_case_nanos(
        price.rates, input_tokens=input_tokens, max_output_tokens=max_output_tokens
    )
    if nanos > MAX_USD * NANOS_PER_USD:
        raise BadRequest(
            f"the worst case of these tokens is more than {MAX_USD} USD",
            code="budget.invalid_estimate",
            details={"key": "max_output_tokens"},
        )
    return Estimate(nanos, price.source)


@dataclass(frozen=True)
class Cost:
    """What a charge records: nano-USD (``None`` = not known), where it came from, and
    the price list it was computed from ("" for a reported cost or none)."""

    nanos: int | None
    source: CostSource
    version: str = ""


def charge_cost(
    *,
    model: str,
    surface: str,
    reported_nanos: int | None,
    usage: Usage | None,
    at: dt.datetime,
) -> Cost:
    """A reported cost always wins (OpenRouter's ``usage.cost`` is the bill); otherwise
    the tokens are priced, and a model nobody prices is recorded as unpriced, never $0."""
    if reported_nanos is not None:
        return Cost(reported_nanos, "reported")
    if usage is None:
        raise BadRequest(
            "cost_usd is required (or send input_tokens / output_tokens to have it priced)",
            code="budget.invalid_charge",
            details={"key": "cost_usd"},
        )
    price = price_of(model, surface, at=at)
    if price is None:
        return Cost(None, "unpriced")
    try:
        nanos = cost_nanos(price.rates, usage)
    except UsageInvalid as exc:
        raise BadRequest(
            str(exc), code="budget.invalid_charge", details={"key": "cache_read_tokens"}
        ) from exc
    if nanos > MAX_USD * NANOS_PER_USD:
        raise BadRequest(
            f"these tokens cost more than {MAX_USD} USD at {price.version}",
            code="budget.invalid_charge",
            details={"key": "output_tokens"},
        )
    return Cost(nanos, price.source, price.version)


def price_json(price: Price) -> dict[str, Any]:
    """``GET /api/prices``: DESIGN.md's shape, plus where the catalogue price came from."""
    r = price.rates

    def rate(value: Any) -> float | None:
        return None if value is None else value.to_json()

    out: dict[str, Any] = {
        "model": price.model,
        "surface": price.surface,
        "input_per_mtok_usd": rate(r.input),
        "output_per_mtok_usd": rate(r.output),
        "cache_read_per_mtok_usd": rate(r.cache_read),
        "cache_write_per_mtok_usd": rate(r.cache_write),
        "source": price.source,
        "catalogue_version": catalogue.VERSION,
    }
    tiers = {
        name: [{"above_input_tokens": start, "per_mtok_usd": float(p)} for start, p in rate_.tiers]
        for name, rate_ in (
            ("input", r.input),
            ("output", r.output),
            ("cache_read", r.cache_read),
            ("cache_write", r.cache_write),
        )
        if rate_ is not None and rate_.tiers
    }
    if tiers:
        out["tiers"] = tiers
    if price.provider is not None:
        out["catalogue_provider"] = price.provider
        out["catalogue_model"] = price.catalogue_model
    return out
