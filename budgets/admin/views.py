"""Operator pages beyond the admin's list and change views: the Spend overview, and the
spend panel of the persona page. Server-rendered; the month chart is inline SVG.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from budgets.models import Hold
from budgets.reports import selectors as q
from budgets.services import budget_state
from budgets.templatetags.spend import format_usd
from personas.models import Persona

SPEND_PAGE_PERSONAS = 200


@dataclass
class Chart:
    """Cumulative spend over the current month, laid out for an inline ``<svg>``."""

    width: int = 640
    height: int = 220
    left: int = 64
    right: int = 14
    top: int = 14
    bottom: int = 28
    line: str = ""
    area: str = ""
    ticks: list[tuple[float, str]] = field(default_factory=list)
    xlabels: list[tuple[float, str]] = field(default_factory=list)
    cap_y: float | None = None
    cap_label: str = ""
    warn_y: float | None = None
    today_x: float = 0.0
    today_y: float = 0.0
    total_nanos: int = 0
    empty: bool = True
    title: str = ""

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def center_x(self) -> float:
        return (self.left + self.plot_right) / 2


def _nice_step(value: int) -> int:
    """The smallest round step (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten)
    that is >= value, in nanos: gridlines at amounts a person would pick."""
    magnitude = 10 ** max(0, len(str(max(value, 1))) - 1)
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if int(step * magnitude) >= value:
            return int(step * magnitude)
    return 10 * magnitude


def _short_usd(nanos: int) -> str:
    value = Decimal(nanos) / 1_000_000_000
    if value >= 1000:
        return f"${value / 1000:,.1f}k".replace(".0k", "k")
    text = f"{value:,.3f}".rstrip("0").rstrip(".")
    if "." in text and len(text.split(".")[1]) == 1:
        text += "0"  # $0.50, not $0.5
    return f"${text}"


def month_chart(
    per_day: list[int],
    days: int,
    *,
    cap_nanos: int | None = None,
    warn_at: Decimal | None = None,
    title: str = "",
) -> Chart:
    chart = Chart(title=title)
    cumulative = [0]
    for amount in per_day:
        cumulative.append(cumulative[-1] + amount)
    chart.total_nanos = cumulative[-1]
    chart.empty = chart.total_nanos == 0 and cap_nanos is None
    top_value = max(chart.total_nanos, cap_nanos or 0, 1_000_000_000 if chart.empty else 1)
    # Four gridlines at round amounts, with a little room above the highest value.
    step = _nice_step(-(-int(top_value * 1.05) // 4))
    y_max = 4 * step
    plot_w = chart.plot_right - chart.left
    plot_h = chart.plot_bottom - chart.top

    def x(day: float) -> float:
        return round(chart.left + plot_w * day / days, 1)

    def y(nanos: int | float) -> float:
        return round(chart.plot_bottom - plot_h * min(nanos, y_max) / y_max, 1)

    points = [(x(i), y(v)) for i, v in enumerate(cumulative)]
    chart.line = "M" + " L".join(f"{px},{py}" for px, py in points)
    chart.area = (
        f"M{points[0][0]},{chart.plot_bottom} L"
        + " L".join(f"{px},{py}" for px, py in points)
        + f" L{points[-1][0]},{chart.plot_bottom} Z"
    )
    chart.today_x, chart.today_y = points[-1]
    chart.ticks = [(y(step * i), _short_usd(step * i)) for i in range(5)]
    marks = sorted({1, 8, 15, 22, days})
    chart.xlabels = [(x(d - 0.5), str(d)) for d in marks]
    if cap_nanos is not None:
        chart.cap_y = y(cap_nanos)
        chart.cap_label = f"cap {format_usd(cap_nanos)}"
        if warn_at is not None and cap_nanos:
            chart.warn_y = y(int(cap_nanos * warn_at))
    return chart


def persona_spend_context(persona: Persona, now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything the persona page shows about spend (a handful of indexed queries)."""
    now = now or timezone.now()
    # The same numbers as GET .../budget: the budget service reads (and if need be
    # rebuilds) the counters; the gauges are laid out from its answer.
    state = budget_state(persona=persona, now=now)
    view = q.spend_views([persona], now, spent={persona.pk: q.spent_from_state(state)})[0]
    per_day, days, _ = q.daily_totals(persona, now)
    monthly = view.window("monthly")
    return {
        "state": state,
        "spend": view,
        "chart": month_chart(
            per_day,
            days,
            cap_nanos=monthly.cap_nanos,
            warn_at=persona.effective_warn_at,
            title=f"{persona} this month",
        ),
        "models": q.by_model(persona, now),
        "latest": q.latest_charges(persona, 10),
        "holds": list(
            Hold.objects.filter(
                persona=persona, state=Hold.State.ACTIVE, expires_at__gt=now
            ).order_by("expires_at")[:10]
        ),
        "per_call_cap": persona.per_call_cap_nanos,
        "hard_cap": persona.hard_cap,
        "now": now,
    }


def spend_overview(request: HttpRequest, *, site: AdminSite) -> HttpResponse:
    now = timezone.now()
    personas = list(
        Persona.objects.select_related("agent").order_by("agent_id", "slug")[
            : SPEND_PAGE_PERSONAS + 1
        ]
    )
    truncated = len(personas) > SPEND_PAGE_PERSONAS
    views = q.spend_views(personas[:SPEND_PAGE_PERSONAS], now)
    # Worst first: what needs an operator's eye is at the top.
    views.sort(key=lambda v: (-q.STATUS_ORDER[v.status], not v.has_caps, str(v.persona)))
    per_day, days, _ = q.daily_totals(None, now)
    context = {
        **site.each_context(request),
        "is_nav_sidebar_enabled": False,  # the page needs the width; the top bar has links
        "title": "Spend",
        "subtitle": None,
        "views": views,
        "truncated": truncated,
        "count": {
            "exceeded": sum(v.status == "exceeded" for v in views),
            "warn": sum(v.status == "warn" for v in views),
            "uncapped": sum(not v.has_caps for v in views),
        },
        "today_nanos": sum(v.window("daily").spent_nanos for v in views),
        "month_nanos": sum(v.window("monthly").spent_nanos for v in views),
        "held_nanos": sum(v.held_nanos for v in views),
        "holds": sum(v.holds for v in views),
        "chart": month_chart(per_day, days, title="All personas this month (UTC days)"),
        "models": q.by_model(None, now),
        "latest": q.latest_charges(None, 10),
        "now": now,
    }
    return TemplateResponse(request, "admin/hal0/spend.html", context)
