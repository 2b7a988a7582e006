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
def usd_plain(nanos: int | None) -> str:
    return format_usd(nanos)
