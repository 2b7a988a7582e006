"""Template filters for the operators' pages: money in nano-USD shown as dollars."""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from hal0.money import to_decimal

register = template.Library()

NOT_RECORDED = "not recorded"


def format_usd(nanos: int | None) -> str:
    """``$1,234.50``, ``$0.0421``: exact, never rounded away; ``None`` is "not recorded".

    At least two decimals (so dollars read as dollars), more only when the amount has
    them: a charge of $0.000125 must not show as $0.00.
    """
    if nanos is None:
        return NOT_RECORDED
    value = to_decimal(nanos)
    if value.as_tuple().exponent > -2:  # type: ignore[operator]
        value = value.quantize(Decimal("0.01"))
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,}"


@register.filter
def usd(nanos: int | None) -> str | SafeString:
    if nanos is None:
        return format_html('<span class="hal0-not-recorded">{}</span>', NOT_RECORDED)
    return format_usd(nanos)


@register.filter
def tokens(count: int | None) -> str:
    """``1,200,000``: a token count with thousands separated; ``None`` is "no cap"."""
    return "no cap" if count is None else f"{count:,}"


@register.filter
def usd_plain(nanos: int | None) -> str:
    return format_usd(nanos)


def format_cents(nanos: int) -> str:
    """``$12.35``: rounded to the cent for KPIs, banners and gauges (half away from zero);
    an amount under half a cent but not zero reads ``<$0.01``, never ``$0.00``."""
    value = to_decimal(nanos)
    if value and abs(value) < Decimal("0.005"):
        return "<$0.01" if value > 0 else "-<$0.01"
    rounded = value.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,}"


@register.filter
def cents(nanos: int | None) -> str | SafeString:
    """A KPI amount in cents with the exact figure in its title (shown on hover)."""
    if nanos is None:
        return format_html('<span class="hal0-not-recorded">{}</span>', NOT_RECORDED)
    short, exact = format_cents(nanos), format_usd(nanos)
    if short == exact:
        return short
    return format_html('<span title="{}">{}</span>', exact, short)
