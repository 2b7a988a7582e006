"""Template filters for the operators' pages: money in nano-USD shown as dollars."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.timesince import timesince, timeuntil

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


PAUSED_TITLE = "an operator paused this budget: every check is refused"


def status_pill_html(view: Any) -> SafeString:
    """A persona's status pill (a ``PersonaSpend``): the rules' status when a window has a
    cap; otherwise the per-call cap it has, so a persona capped per call only never reads
    as "no caps"; "no caps" only when no rule can refuse it. A warn-only persona's pill is
    outlined and says so (it never blocks); the stop switch outranks everything."""
    persona = view.persona
    if persona.paused:
        return format_html('<span class="hal0-pill paused" title="{}">paused</span>', PAUSED_TITLE)
    soft = not persona.hard_cap
    if view.has_window_caps:
        label, css = view.status, view.status
    elif persona.per_call_cap_nanos is not None:
        label, css = f"per call {format_usd(persona.per_call_cap_nanos)}", "percall"
    elif view.has_caps:
        label, css = "token caps", "percall"
    else:
        return format_html('<span class="hal0-pill none">{}</span>', "no caps")
    if soft:
        return format_html(
            '<span class="hal0-pill {} soft" title="{}">{} · warn only</span>',
            css,
            "warn only: this persona's caps warn but never block a call",
            label,
        )
    return format_html('<span class="hal0-pill {}">{}</span>', css, label)


@register.filter
def status_pill(view: Any) -> SafeString:
    return status_pill_html(view)


@register.filter
def ago(moment: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """``3 minutes ago``; under a minute ``just now`` (never "0 minutes ago"); a time in
    the future (a clock a little ahead) reads ``just now`` too."""
    if moment is None:
        return ""
    now = now or timezone.now()
    if (now - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment, now)} ago"


@register.filter
def until(moment: dt.datetime | None, now: dt.datetime | None = None) -> str:
    """``in 3 minutes``; under a minute ``in under a minute`` (never "in 0 minutes")."""
    if moment is None:
        return ""
    now = now or timezone.now()
    if (moment - now).total_seconds() < 60:
        return "in under a minute"
    return f"in {timeuntil(moment, now)}"
