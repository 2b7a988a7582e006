"""Read-only queries behind the operators' pages: spend per window, charts, breakdowns.

Lists (agents, personas, the Spend page, the banner) read the window counters of many
personas in one query and their active holds in another; a persona whose lifetime
counter is missing (no charge yet, or dropped after a bulk import) is summed from its
charges with the ``(persona, ts)`` index, and if it has charges its counters are rebuilt
(the counters service, as a check would), so that sum is paid once and not on every page
the banner shows on. Nothing here writes a charge or a persona file.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from budgets import rules
from budgets.models import Charge, Hold, SpendCounter
from budgets.rules import STATUS_ORDER, worst
from budgets.services import counters
from budgets.services.windows import LIFETIME_START, windows_at
from hal0.money import to_nanos
from personas.models import Persona

EPOCH = LIFETIME_START
WINDOWS = (
    ("daily", "day", "Today", "daily_cap_nanos"),
    ("monthly", "month", "This month", "monthly_cap_nanos"),
    ("lifetime", "lifetime", "Lifetime", "lifetime_cap_nanos"),
)


@dataclass(frozen=True)
class Spent:
    day: int = 0
    month: int = 0
    lifetime: int = 0

    def of(self, window: str) -> int:
        return {"daily": self.day, "monthly": self.month, "lifetime": self.lifetime}[window]


@dataclass
class WindowView:
    """One window of one persona, ready for a gauge."""

    key: str  # daily | monthly | lifetime
    label: str
    spent_nanos: int
    cap_nanos: int | None
    held_nanos: int
    warn_at: Decimal
    resets_at: dt.datetime | None
    status: str = "none"
    remaining_nanos: int | None = None

    def __post_init__(self) -> None:
        # Status and remaining come from the rules module, as the API's do.
        ws = rules.window(
            self.key, "usd", self.cap_nanos, self.spent_nanos, self.held_nanos, self.warn_at
        )
        self.status = ws.status
        self.remaining_nanos = ws.remaining

    @property
    def has_cap(self) -> bool:
        return self.cap_nanos is not None

    @property
    def percent(self) -> float:
        """Share of the cap spent, 0-100 for the bar (the text shows the real figure)."""
        if not self.cap_nanos:
            return 100.0 if self.cap_nanos == 0 and self.spent_nanos else 0.0
        return min(100.0, 100.0 * self.spent_nanos / self.cap_nanos)

    @property
    def percent_label(self) -> str:
        if self.cap_nanos is None:
            return ""
        if self.cap_nanos == 0:
            return "cap of zero"
        return f"{100 * self.spent_nanos / self.cap_nanos:.0f} %"

    @property
    def held_percent(self) -> float:
        if not self.cap_nanos:
            return 0.0
        return max(0.0, min(100.0 - self.percent, 100.0 * self.held_nanos / self.cap_nanos))

    @property
    def warn_percent(self) -> float:
        return float(self.warn_at) * 100


# ---------------------------------------------------------------------------------------
# Windows and counters


def window_starts(tz_name: str, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """The local dates the persona's current day and month windows start on."""
    w = windows_at(tz_name, now)
    return w.day, w.month


def resets_at(tz_name: str, now: dt.datetime) -> dict[str, dt.datetime | None]:
    w = windows_at(tz_name, now)
    return {"daily": w.day_end, "monthly": w.month_end, "lifetime": None}


def current_spend(personas: Sequence[Persona], now: dt.datetime) -> dict[int, Spent]:
    """Spend in each current window of each persona: one query over the counters."""
    if not personas:
        return {}
    earliest = min(window_starts(p.effective_timezone, now)[1] for p in personas)
    rows = SpendCounter.objects.filter(persona__in=[p.pk for p in personas]).filter(
        Q(window=SpendCounter.Window.LIFETIME) | Q(start__gte=earliest)
    )
    found: dict[tuple[int, str, str, dt.date], int] = {
        (r.persona_id, r.window, r.tz, r.start): r.spent_nanos
        for r in rows.only("persona_id", "window", "tz", "start", "spent_nanos")
    }
    result: dict[int, Spent] = {}
    missing: list[Persona] = []
    for p in personas:
        tz = p.effective_timezone
        day, month = window_starts(tz, now)
        lifetime = found.get((p.pk, "lifetime", "", EPOCH))
        if lifetime is None:
            missing.append(p)
            continue
        result[p.pk] = Spent(
            day=found.get((p.pk, "day", tz, day), 0),
            month=found.get((p.pk, "month", tz, month), 0),
            lifetime=lifetime,
        )
    summed, charged = _summed(missing, now)
    result.update(summed)
    for p in missing:
        if p.pk in charged:
            # Counters dropped by a bulk insert (an import): rebuild them now, once, the
            # way a check does; until then every page with the banner would sum this
            # persona's whole ledger again. Personas without charges need no counter.
            w = counters.window_spend(p, windows_at(p.effective_timezone, now))
            result[p.pk] = Spent(day=w.day, month=w.month, lifetime=w.lifetime)
    return result


def _summed(personas: Sequence[Persona], now: dt.datetime) -> tuple[dict[int, Spent], set[int]]:
    """Personas without a lifetime counter: no charge yet, or counters dropped after a
    bulk import. Summed from the charges, one grouped query per timezone, through the
    ``(persona, ts)`` index. Returns the sums and the personas that have charges.
    """
    by_tz: dict[str, list[Persona]] = defaultdict(list)
    for p in personas:
        by_tz[p.effective_timezone].append(p)
    result = {p.pk: Spent() for p in personas}
    charged: set[int] = set()
    for tz_name, group in by_tz.items():
        w = windows_at(tz_name, now)
        rows = (
            Charge.objects.filter(persona__in=[p.pk for p in group])
            .values("persona_id")
            .annotate(
                lifetime=Sum("cost_nanos"),
                month=Sum("cost_nanos", filter=Q(ts__gte=w.month_begin)),
                day=Sum("cost_nanos", filter=Q(ts__gte=w.day_begin)),
            )
            .order_by()
        )
        for r in rows:
            charged.add(r["persona_id"])
            result[r["persona_id"]] = Spent(
                day=int(r["day"] or 0), month=int(r["month"] or 0), lifetime=int(r["lifetime"] or 0)
            )
    return result, charged


def active_holds(persona_ids: Iterable[int], now: dt.datetime) -> dict[int, tuple[int, int]]:
    """(amount held, number of holds) per persona, active and not expired."""
    rows = (
        Hold.objects.filter(persona__in=list(persona_ids), state=Hold.State.ACTIVE)
        .filter(expires_at__gt=now)
        .values("persona_id")
        .annotate(total=Sum("amount_nanos"), n=Count("id"))
        .order_by()
    )
    return {r["persona_id"]: (int(r["total"] or 0), int(r["n"])) for r in rows}


@dataclass
class PersonaSpend:
    persona: Persona
    windows: list[WindowView]
    held_nanos: int
    holds: int

    @property
    def status(self) -> str:
        return worst(w.status for w in self.windows)

    @property
    def has_window_caps(self) -> bool:
        """A daily, monthly or lifetime cap in USD: what the status and gauges are of."""
        return any(w.has_cap for w in self.windows)

    @property
    def has_caps(self) -> bool:
        """Any cap that can refuse a check: a window's, the per-call cap, a token cap."""
        p = self.persona
        others = (
            p.per_call_cap_nanos,
            p.per_call_cap_tokens,
            p.daily_cap_tokens,
            p.monthly_cap_tokens,
            p.lifetime_cap_tokens,
        )
        return self.has_window_caps or any(v is not None for v in others)

    def window(self, key: str) -> WindowView:
        return next(w for w in self.windows if w.key == key)


def spent_from_state(state: Any) -> Spent:
    """``Spent`` from a ``budget_state`` answer (its numbers map back to exact nanos)."""
    spend = state["spend"]
    return Spent(
        day=to_nanos(spend["today_usd"]),
        month=to_nanos(spend["mtd_usd"]),
        lifetime=to_nanos(spend["lifetime_usd"]),
    )


def spend_views(
    personas: Sequence[Persona],
    now: dt.datetime | None = None,
    *,
    spent: dict[int, Spent] | None = None,
) -> list[PersonaSpend]:
    """Gauges for many personas: two queries in all (counters, holds).

    ``spent`` (per persona pk, e.g. from :func:`spent_from_state`) replaces the
    counter read.
    """
    now = now or timezone.now()
    if spent is None:
        spent = current_spend(personas, now)
    holds = active_holds((p.pk for p in personas), now)
    views = []
    for p in personas:
        held, n = holds.get(p.pk, (0, 0))
        resets = resets_at(p.effective_timezone, now)
        windows = [
            WindowView(
                key=key,
                label=label,
                spent_nanos=spent[p.pk].of(key),
                cap_nanos=getattr(p, cap_attr),
                held_nanos=held,
                warn_at=p.effective_warn_at,
                resets_at=resets[key],
            )
            for key, _, label, cap_attr in WINDOWS
        ]
        views.append(PersonaSpend(persona=p, windows=windows, held_nanos=held, holds=n))
    return views


# ---------------------------------------------------------------------------------------
# The banner


@dataclass
class AlertItem:
    persona_pk: int
    agent_id: str
    persona_slug: str
    status: str
    window_label: str
    spent_nanos: int
    cap_nanos: int
    # False: warn only (the persona's caps never block a call), shown apart from hard caps.
    hard_cap: bool = True


@dataclass
class ScopeAlert:
    """An agent or the platform in warn or exceeded (``budgets.reports.scopes``)."""

    kind: str  # agent | platform
    name: str  # "agent hermes" | "platform"
    url: str
    status: str
    window_label: str
    unit: str  # usd | tokens
    spent: int
    cap: int
    hard_cap: bool = True


@dataclass
class Alerts:
    items: list[AlertItem] = field(default_factory=list)
    warn: int = 0
    exceeded: int = 0
    more: int = 0
    # Agents and the platform at or past a cap, worst first.
    scopes: list[ScopeAlert] = field(default_factory=list)
    # Charges recorded without a cost (no price known), ever: from the lifetime counters.
    unpriced: int = 0

    def __bool__(self) -> bool:
        return bool(self.warn or self.exceeded or self.scopes or self.unpriced)

    @property
    def scopes_exceeded(self) -> int:
        return sum(s.status == "exceeded" for s in self.scopes)

    @property
    def platform(self) -> ScopeAlert | None:
        return next((s for s in self.scopes if s.kind == "platform"), None)

    @property
    def agents_exceeded(self) -> int:
        return sum(s.kind == "agent" and s.status == "exceeded" for s in self.scopes)

    @property
    def agents_warn(self) -> int:
        return sum(s.kind == "agent" and s.status == "warn" for s in self.scopes)


BANNER_ITEMS = 5


def capped_personas() -> list[Persona]:
    capped = (
        Q(daily_cap_nanos__isnull=False)
        | Q(monthly_cap_nanos__isnull=False)
        | Q(lifetime_cap_nanos__isnull=False)
    )
    return list(Persona.objects.filter(capped))


def alerts(now: dt.datetime | None = None) -> Alerts:
    """Personas whose caps are in warn or exceeded, worst first (two or three queries)."""
    found = Alerts()
    hits: list[AlertItem] = []
    for view in spend_views(capped_personas(), now):
        status = view.status
        if status not in ("warn", "exceeded"):
            continue
        if status == "exceeded":
            found.exceeded += 1
        else:
            found.warn += 1
        w = max(
            (w for w in view.windows if w.cap_nanos is not None),
            key=lambda w: (STATUS_ORDER[w.status], w.percent),
        )
        assert w.cap_nanos is not None
        hits.append(
            AlertItem(
                persona_pk=view.persona.pk,
                agent_id=view.persona.agent_id,
                persona_slug=view.persona.slug,
                status=status,
                window_label=w.label.lower(),
                spent_nanos=w.spent_nanos,
                cap_nanos=w.cap_nanos,
                hard_cap=view.persona.hard_cap,
            )
        )
    hits.sort(key=lambda a: (-STATUS_ORDER[a.status], a.agent_id, a.persona_slug))
    found.items = hits[:BANNER_ITEMS]
    found.more = max(0, len(hits) - BANNER_ITEMS)
    return found


# ---------------------------------------------------------------------------------------
# Agents


def agent_spend(agent_ids: Sequence[str], now: dt.datetime | None = None) -> dict[str, Spent]:
    """Today's, this month's and lifetime spend per agent: the sum over its personas.

    "Today" is each persona's own day (its timezone), as its daily cap sees it.
    """
    now = now or timezone.now()
    personas = list(Persona.objects.filter(agent_id__in=list(agent_ids)))
    spent = current_spend(personas, now)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for p in personas:
        s = spent[p.pk]
        t = totals[p.agent_id]
        t[0] += s.day
        t[1] += s.month
        t[2] += s.lifetime
    return {a: Spent(*totals[a]) for a in agent_ids}


# ---------------------------------------------------------------------------------------
# Month chart, by-model breakdown, latest charges


def month_bounds(tz_name: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime, int]:
    w = windows_at(tz_name, now)
    return w.month_begin, w.month_end, calendar.monthrange(w.month.year, w.month.month)[1]


def _charges(persona: Persona | None) -> Any:
    if persona is not None:
        return Charge.objects.filter(persona=persona)
    # Naming every persona lets the (persona, ts) index serve a time range across all of
    # them; without it a month's range is a scan of the whole ledger.
    return Charge.objects.filter(persona__in=list(Persona.objects.values_list("pk", flat=True)))


def daily_totals(
    persona: Persona | None, now: dt.datetime | None = None
) -> tuple[list[int], int, int]:
    """Spend per day of the current month (persona's timezone; UTC for all personas).

    Returns (per-day nanos, days in the month, today's day number). One query: a filtered
    SUM per day over the month's range of the ``(persona, ts)`` index.
    """
    now = now or timezone.now()
    tz_name = persona.effective_timezone if persona is not None else "UTC"
    w = windows_at(tz_name, now)
    days = calendar.monthrange(w.month.year, w.month.month)[1]
    today = w.day.day

    def midnight(after_days: int) -> dt.datetime:
        # Built from the local date, so a DST change inside the month moves nothing.
        local = w.month + dt.timedelta(days=after_days)
        return dt.datetime.combine(local, dt.time(), ZoneInfo(w.tz)).astimezone(dt.UTC)

    aggregates = {
        f"d{d}": Sum("cost_nanos", filter=Q(ts__gte=midnight(d - 1), ts__lt=midnight(d)))
        for d in range(1, today + 1)
    }
    sums = (
        _charges(persona)
        .filter(ts__gte=w.month_begin, ts__lt=midnight(today))
        .aggregate(**aggregates)
    )
    per_day = [int(sums.get(f"d{d}") or 0) for d in range(1, today + 1)]
    return per_day, days, today


@dataclass
class ModelRow:
    model: str
    surface: str
    charges: int
    cost_nanos: int | None  # None: no charge of this model had its cost recorded
    not_recorded: int
    share: float = 0.0


def by_model(
    persona: Persona | None, now: dt.datetime | None = None, limit: int = 12
) -> list[ModelRow]:
    """This month's spend per (model, surface), biggest first."""
    now = now or timezone.now()
    tz_name = persona.effective_timezone if persona is not None else "UTC"
    start, end, _ = month_bounds(tz_name, now)
    rows = (
        _charges(persona)
        .filter(ts__gte=start, ts__lt=end)
        .values("model", "surface")
        .annotate(
            n=Count("id"),
            cost=Sum("cost_nanos"),
            missing=Count("id", filter=Q(cost_nanos__isnull=True)),
        )
        .order_by(F("cost").desc(nulls_last=True), "model")[:limit]
    )
    result = [
        ModelRow(
            model=r["model"],
            surface=r["surface"],
            charges=r["n"],
            cost_nanos=None if r["cost"] is None else int(r["cost"]),
            not_recorded=r["missing"],
        )
        for r in rows
    ]
    total = sum(r.cost_nanos or 0 for r in result)
    for r in result:
        r.share = 100.0 * (r.cost_nanos or 0) / total if total else 0.0
    return result


def latest_charges(persona: Persona | None, limit: int = 10) -> list[Charge]:
    """A persona's newest charges by time (its ``(persona, ts)`` index, backwards); for all
    personas the latest recorded (the primary key, backwards): across personas only ids
    are ordered by an index. The two differ only for charges imported with earlier
    timestamps after newer ones were recorded.
    """
    if persona is not None:
        ordered = Charge.objects.filter(persona=persona).order_by("-ts", "-id")
    else:
        ordered = _charges(None).order_by("-id")
    return list(ordered.select_related("persona")[:limit])


# ---------------------------------------------------------------------------------------
# Spend reports (GET /api/spend and the Spend page's breakdowns): budgets.reports.spend_report

from budgets.reports.spend_report import (  # noqa: E402
    Report,
    ReportQuery,
    spend_report,
)
from budgets.reports.spend_report import parse_query as parse_report_query  # noqa: E402

__all__ = ["Report", "ReportQuery", "parse_report_query", "spend_report"]
