"""Money inside the service: integer nano-USD (1e-9 USD). Never a binary float.

Values arrive as ``Decimal`` (JSON bodies are parsed with exact decimals), ``int``, or
TOML floats; they leave as JSON numbers through :func:`usd_number`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

NANOS_PER_USD = 1_000_000_000
# Anything above a billion dollars is a client bug, not a budget.
MAX_USD = Decimal(1_000_000_000)
# The most one persona's charges (and its charges plus active holds) may add up to. Window
# counters and sums are 64-bit integers of nano-USD, which end at about 9.22 billion USD:
# past that PostgreSQL refuses the update (the charge would be lost with a 500) and SQLite
# turns the counter into a float. Ten charges of a billion would get there.
LEDGER_MAX_NANOS = 9_000_000_000 * NANOS_PER_USD
_NANO = Decimal("1e-9")


class MoneyError(ValueError):
    """A value that is not an acceptable amount of money; the message says why."""


def parse_usd(raw: object, *, field: str) -> int:
    """Validate a USD amount from JSON or TOML and return it in nano-USD.

    Refuses booleans, strings, ``None``, NaN, infinities, negatives and absurd values.
    Sub-nano fractions are rounded half-to-even (banker's rounding: no drift over many
    charges).
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        raise MoneyError(f"{field} must be a number")
    value = _as_decimal(raw)
    if not value.is_finite():
        raise MoneyError(f"{field} must be a finite number")
    if value < 0:
        raise MoneyError(f"{field} must be >= 0")
    if value > MAX_USD:
        raise MoneyError(f"{field} must be at most {MAX_USD} USD")
    return to_nanos(value)


def _as_decimal(raw: int | float | Decimal) -> Decimal:
    if isinstance(raw, Decimal):
        return raw
    if isinstance(raw, float):
        # str() gives the shortest text that round-trips, so 0.1 becomes Decimal("0.1"),
        # not 0.1000000000000000055511151231257827.
        return Decimal(str(raw))
    return Decimal(raw)


def to_nanos(value: Decimal | int | float) -> int:
    try:
        return int(_as_decimal(value).quantize(_NANO, rounding=ROUND_HALF_EVEN) * NANOS_PER_USD)
    except InvalidOperation as exc:
        raise MoneyError("not a finite amount") from exc


def to_decimal(nanos: int) -> Decimal:
    """Exact USD for an amount in nano-USD, normalised (``Decimal('9.58')``)."""
    value = (Decimal(nanos) / NANOS_PER_USD).normalize()
    # normalize() turns 10 into 1E+1; put it back to plain notation.
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


def usd_number(nanos: int) -> float:
    """The JSON number for an amount: ``9.58``, never ``9.579999999999998``.

    Amounts are exact in nano-USD; the float made from their decimal text is the nearest
    double, and JSON encoders print the shortest text that maps back to it, so clients see
    exactly the decimal we hold (for amounts below 2**53 nano-USD, about 9 million USD).
    """
    return float(to_decimal(nanos))
