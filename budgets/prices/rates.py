"""Prices as plain numbers, and the arithmetic that turns tokens into nano-USD.

Pure code: no ORM, no settings, no files. A rate is USD per million tokens, exact
(``Decimal``), with the catalogue's optional tiers; a :class:`Rates` holds the four
components a call is priced by. The arithmetic follows genai-prices' own rules (the
catalogue's semantics), so a cost computed here equals ``genai_prices.calc_price`` on
the same usage, rounded up at the nano-USD.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, localcontext

# Enough digits for 2**31 tokens x 1,000,000 USD per MTok with 12 decimals, exactly.
_PRECISION = 60
# USD per million tokens -> nano-USD per token: x 1e9 / 1e6.
_NANOS_PER_MTOK_USD = 1000


@dataclass(frozen=True)
class Rate:
    """USD per million tokens; ``tiers`` are ``(start, price)``, start in input tokens.

    The catalogue's tiers are cliffs: once a call's *input* tokens exceed a tier's start,
    that tier's price applies to all of the component's tokens (genai-prices' rule).
    """

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...] = ()

    def at(self, input_tokens: int) -> Decimal:
        """The price that applies to a call with ``input_tokens`` input tokens."""
        for start, price in reversed(self.tiers):
            if input_tokens > start:
                return price
        return self.base

    def worst_up_to(self, input_tokens: int) -> Decimal:
        """The highest price any call with at most ``input_tokens`` input tokens can pay."""
        return max([self.base, *(price for start, price in self.tiers if input_tokens > start)])

    def to_json(self) -> float:
        return float(self.base)


@dataclass(frozen=True)
class Rates:
    """The components a call is priced by. ``None`` = no separate rate: for the cache
    components, those tokens are billed as plain input (genai-prices' rule); ``0`` is a
    real rate of zero."""

    input: Rate | None
    output: Rate | None
    cache_read: Rate | None = None
    cache_write: Rate | None = None

    @property
    def prices_text(self) -> bool:
        """Can this price a text call at all (an input or an output rate)?"""
        return self.input is not None or self.output is not None


@dataclass(frozen=True)
class Usage:
    """Token counts of one call. ``input_tokens`` counts every input token, cached or
    not; ``cache_read_tokens`` and ``cache_write_tokens`` are the parts of it that were
    read from or written to the provider's prompt cache (genai-prices' convention, and
    OpenAI's ``prompt_tokens``)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


class UsageInvalid(ValueError):
    """Cache token counts that do not fit inside the input tokens."""


def _ceil_nanos(per_mtok_total: Decimal) -> int:
    # Rounded up once, on the total: never below what the provider bills, never a
    # nano-USD more than the exact amount.
    return int((per_mtok_total * _NANOS_PER_MTOK_USD).to_integral_value(rounding=ROUND_CEILING))


def cost_nanos(rates: Rates, usage: Usage) -> int:
    """What ``usage`` costs at ``rates``, in nano-USD, rounded up at the nano-USD."""
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    if cached > usage.input_tokens:
        raise UsageInvalid(
            "cache_read_tokens + cache_write_tokens must not exceed input_tokens "
            "(input_tokens counts every input token, cached or not)"
        )
    tier = usage.input_tokens
    # Cache tokens without a rate of their own stay in the plain input count.
    plain = usage.input_tokens
    parts: list[tuple[Rate | None, int]] = [(rates.output, usage.output_tokens)]
    if rates.cache_read is not None:
        plain -= usage.cache_read_tokens
        parts.append((rates.cache_read, usage.cache_read_tokens))
    if rates.cache_write is not None:
        plain -= usage.cache_write_tokens
        parts.append((rates.cache_write, usage.cache_write_tokens))
    parts.append((rates.input, plain))
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        total = sum(
            (rate.at(tier) * count for rate, count in parts if rate is not None and count),
            Decimal(0),
        )
        return _ceil_nanos(total)


def worst_case_nanos(rates: Rates, *, input_tokens: int, max_output_tokens: int) -> int:
    """The most a call with at most these tokens can cost: an estimate that never falls
    short when the real usage stays within it.

    Every input token at the dearest input-side rate (a cache write costs more than plain
    input at some providers), every output token at the output rate, each at the highest
    tier the input can reach.
    """
    input_side = [r for r in (rates.input, rates.cache_read, rates.cache_write) if r is not None]
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        total = Decimal(0)
        if input_side and input_tokens:
            total += max(r.worst_up_to(input_tokens) for r in input_side) * input_tokens
        if rates.output is not None and max_output_tokens:
            total += rates.output.worst_up_to(input_tokens) * max_output_tokens
        return _ceil_nanos(total)
