"""Operator pages beyond the admin's list and change views: the Spend overview, and the
spend panel of the persona page. Server-rendered; the month chart is inline SVG.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.admin import AdminSite
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from budgets.events.endpoints import failing_endpoints
from budgets.models import Hold
from budgets.reports import refused
from budgets.reports import selectors as q
from budgets.reports.scopes import spend_page_scopes
from budgets.services import budget_state
from budgets.services.windows import zone
from budgets.templatetags.spend import format_cents, format_usd
from hal0.errors import ApiError
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


def persona_spend_context(
    persona: Persona, now: dt.datetime | None = None, *, params: Any = None
) -> dict[str, Any]:
    """Everything the persona page shows about spend (a handful of indexed queries)."""
    now = now or timezone.now()
    # The same numbers as GET .../budget: the budget service reads (and if need be
    # rebuilds) the counters; the gauges are laid out from its answer.
    state = budget_state(persona=persona, now=now)
    view = q.spend_views([persona], now, spent={persona.pk: q.spent_from_state(state)})[0]
    per_day, days, _ = q.daily_totals(persona, now)
    monthly = view.window("monthly")
    panel = range_panel(
        params or {},
        tz=persona.effective_timezone,
        now=now,
        agent=persona.agent_id,
        persona=persona.slug,
        top=False,
    )
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
        "forecasts": forecasts([view], now),
        **panel,
        "refused": refused.refused(
            start=panel["range"].start, end=panel["range"].end, persona_pk=persona.pk
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
    scope_rows, scopes_truncated = spend_page_scopes(now)
    panel = range_panel(request.GET, tz="UTC", now=now)
    context = {
        **site.each_context(request),
        "scopes": scope_rows,
        "scopes_truncated": scopes_truncated,
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
        "forecasts": forecasts(views, now),
        "failing_webhooks": failing_endpoints(settings.HAL0_WEBHOOK_FAILING_AFTER),
        **panel,
        "refused": refused.refused(start=panel["range"].start, end=panel["range"].end),
    }
    return TemplateResponse(request, "admin/hal0/spend.html", context)


# ---------------------------------------------------------------------------------------
# The range panel: a picked range of days with the period before it, a breakdown, a CSV


BREAKDOWNS = (
    ("model", "Model"),
    ("surface", "Surface"),
    ("persona", "Persona"),
    ("agent", "Agent"),
)


@dataclass
class Bar:
    x: float
    width: float
    y: float
    height: float
    prev_y: float
    prev_height: float
    day: dt.date
    nanos: int
    prev_nanos: int
    label: str = ""


@dataclass
class Bars:
    """Spend per day of the range, with the previous period's day at the same position."""

    width: int = 640
    height: int = 200
    left: int = 64
    right: int = 10
    top: int = 12
    bottom: int = 26
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    title: str = ""

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom


def day_bars(current: list[tuple[dt.date, int]], previous: list[int], title: str) -> Bars:
    bars = Bars(title=title)
    top_value = max([1_000_000_000 // 100, *(n for _, n in current), *previous])
    step = _nice_step(-(-int(top_value * 1.05) // 4))
    y_max = 4 * step
    plot_w = bars.width - bars.left - bars.right
    plot_h = bars.plot_bottom - bars.top
    slot = plot_w / max(1, len(current))
    width = max(1.0, round(slot * 0.7, 1))

    def y(n: int) -> float:
        return round(bars.plot_bottom - plot_h * min(n, y_max) / y_max, 1)

    every = max(1, -(-len(current) // 8))  # at most about eight day labels
    for i, (day, nanos) in enumerate(current):
        prev = previous[i] if i < len(previous) else 0
        x = round(bars.left + slot * i + (slot - width) / 2, 1)
        bars.bars.append(
            Bar(
                x=x,
                width=width,
                y=y(nanos),
                height=round(bars.plot_bottom - y(nanos), 1),
                prev_y=y(prev),
                prev_height=round(bars.plot_bottom - y(prev), 1),
                day=day,
                nanos=nanos,
                prev_nanos=prev,
                label=f"{day:%-d %b}" if i % every == 0 else "",
            )
        )
    bars.ticks = [(y(step * i), _short_usd(step * i)) for i in range(5)]
    return bars


def _breakdown(params: Any) -> str:
    by = params.get("by")
    return by if isinstance(by, str) and by in dict(BREAKDOWNS) else "model"


@dataclass
class BreakdownRow:
    key: tuple[str, ...]
    totals: Any
    share: float


def _report(
    start: dt.date,
    end: dt.date,
    tz: str,
    group_by: tuple[str, ...],
    agent: str | None,
    persona: str | None,
) -> q.Report:
    query = q.ReportQuery(
        start=start, end=end, tz=tz, group_by=group_by, agent=agent, persona=persona
    )
    return q.spend_report(query)


def range_panel(
    params: Any,
    *,
    tz: str,
    now: dt.datetime,
    agent: str | None = None,
    persona: str | None = None,
    top: bool = True,
) -> dict[str, Any]:
    """Everything the range section shows: three grouped reads of the rollups."""
    from urllib.parse import urlencode

    from budgets.reports import ranges

    today = now.astimezone(zone(tz)).date()
    picked = ranges.pick(params, today)
    by = _breakdown(params)
    days = _report(picked.previous_start, picked.end, tz, ("day",), agent, persona)
    per_day = {key[0]: totals.cost_nanos for key, totals in days.rows.items()}

    def series(start: dt.date, n: int) -> list[tuple[dt.date, int]]:
        out = []
        for i in range(n):
            day = start + dt.timedelta(days=i)
            out.append((day, per_day.get(day.isoformat(), 0)))
        return out

    current = series(picked.start, picked.days)
    previous_days = (picked.previous_end - picked.previous_start).days + 1
    previous = series(picked.previous_start, previous_days)
    total = sum(n for _, n in current)
    previous_total = sum(n for _, n in previous)
    breakdown = _report(picked.start, picked.end, tz, (by,), agent, persona)
    rows = sorted(breakdown.rows.items(), key=lambda kv: (-kv[1].cost_nanos, kv[0]))
    grand = breakdown.total.cost_nanos
    context: dict[str, Any] = {
        "range": picked,
        "presets": ranges.PRESETS,
        "breakdowns": BREAKDOWNS,
        "by": by,
        "tz": tz,
        "bars": day_bars(current, [n for _, n in previous], f"Spend per day, {picked.label}"),
        "range_total": total,
        "range_tokens": (breakdown.total.input_tokens, breakdown.total.output_tokens),
        "range_unpriced": breakdown.total.unpriced,
        "previous_total": previous_total,
        "change_percent": (
            None if not previous_total else round(100 * (total - previous_total) / previous_total)
        ),
        "breakdown": [
            BreakdownRow(key, totals, 100.0 * totals.cost_nanos / grand if grand else 0.0)
            for key, totals in rows
        ],
        "breakdown_columns": breakdown.columns,
    }
    csv_params = {
        "range": picked.preset,
        "from": picked.start.isoformat(),
        "to": picked.end.isoformat(),
        "by": by,
        "tz": tz,
    }
    if agent:
        csv_params["agent"] = agent
    if persona:
        csv_params["persona"] = persona
    context["csv_query"] = urlencode(csv_params)
    if top:
        spenders = _report(picked.start, picked.end, tz, ("persona",), agent, persona)
        context["top_spenders"] = sorted(
            spenders.rows.items(), key=lambda kv: (-kv[1].cost_nanos, kv[0])
        )[:5]
    return context


def breakdown_csv(request: HttpRequest) -> HttpResponse:
    """The range panel's breakdown as CSV: the report API's columns and rows."""
    import csv

    from budgets.reports import ranges

    params = request.GET
    tz = params.get("tz") or "UTC"
    try:
        zone(tz)
    except Exception:
        tz = "UTC"
    picked = ranges.pick({**params.dict(), "range": "custom"}, timezone.now().date())
    by = _breakdown(params)
    try:
        report = _report(
            picked.start,
            picked.end,
            tz,
            (by,),
            params.get("agent") or None,
            params.get("persona") or None,
        )
    except ApiError as exc:  # an agent or persona that does not exist
        raise Http404(str(exc.detail)) from exc
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"spend-by-{by}-{picked.start:%Y%m%d}-{picked.end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response, lineterminator="\r\n")
    writer.writerow(report.csv_header())
    writer.writerows(report.csv_rows())
    return response


@dataclass
class ForecastRow:
    persona: Persona
    window: str
    text: str
    level: str  # exceeded | warn | ok


def forecasts(views: list[q.PersonaSpend], now: dt.datetime) -> list[ForecastRow]:
    """Per capped persona and window: where this pace takes it by the window's end."""
    from budgets.reports.forecast import forecast
    from budgets.services.windows import windows_at

    out: list[ForecastRow] = []
    for v in views:
        tz = v.persona.effective_timezone
        w = windows_at(tz, now)
        for key, begin, end in (
            ("daily", w.day_begin, w.day_end),
            ("monthly", w.month_begin, w.month_end),
        ):
            window = v.window(key)
            if window.cap_nanos is None or not window.spent_nanos:
                continue  # no cap to reach, or no pace yet
            f = forecast(
                window=key,
                spent=window.spent_nanos,
                cap=window.cap_nanos,
                begin=begin,
                end=end,
                now=now,
            )
            if f is None:
                continue
            name = "daily" if key == "daily" else "monthly"
            if f.already_over:
                text, level = f"over the {name} cap", "exceeded"
            elif f.reaches_cap_at is not None:
                local = f.reaches_cap_at.astimezone(zone(tz))
                when = f"{local:%H:%M}" if key == "daily" else f"{local:%-d %b %H:%M}"
                text = f"at this pace the {name} cap is reached around {when} {local:%Z}"
                level = "warn"
            else:
                text = (
                    f"at this pace {format_cents(f.projected_nanos)} by the end of the {name} "
                    f"window, under the cap"
                )
                level = "ok"
            out.append(ForecastRow(v.persona, key, text, level))
    order = {"exceeded": 0, "warn": 1, "ok": 2}
    out.sort(key=lambda r: (order[r.level], str(r.persona), r.window))
    return out
