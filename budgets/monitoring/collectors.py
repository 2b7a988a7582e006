"""Gauges computed from the database when Prometheus scrapes: spend, caps and holds per
scope and window, and the webhook backlog. Nothing is kept in process memory, so it does
not matter which gunicorn worker answers the scrape.

Cost: four queries whatever the number of personas (personas; their current window
counters; active holds grouped by persona; deliveries grouped by state, and attempts by
outcome), then a pass in Python. docs/alerts.md gives the figures for 1,000 personas.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from budgets.events.models import Delivery, DeliveryAttempt
from budgets.models import Hold, SpendCounter
from budgets.services.windows import LIFETIME_START, windows_at
from personas.models import Persona

WINDOWS = (("daily", "day"), ("monthly", "month"), ("lifetime", "lifetime"))
LABELS = ["scope", "agent", "persona", "window"]
Key = tuple[str, str, str, str]  # scope, agent, persona, window


def _usd(nanos: int) -> float:
    # A float is what the exposition format carries; the exact Decimal would only be
    # converted back (and costs 20 µs a series at 8,000 series a scrape).
    return nanos / 1e9


def spend_gauges(now: dt.datetime) -> dict[str, dict[Key, int]]:
    """{"spent"|"cap"|"held": {(scope, agent, persona, window): nano-USD}}.

    Persona rows come from the window counters of each persona's current day and month
    (cut in its own timezone) and lifetime; agent and platform rows sum their personas.
    A window without a counter has had no charge in it since the counter's start and is
    left out rather than shown as a made-up zero.
    """
    personas = list(
        Persona.objects.values_list(
            "pk",
            "agent_id",
            "slug",
            "timezone",
            "daily_cap_nanos",
            "monthly_cap_nanos",
            "lifetime_cap_nanos",
        )
    )
    zones = {p[3] or "UTC" for p in personas}
    current = {tz: windows_at(tz, now) for tz in zones}
    match = Q(window=SpendCounter.Window.LIFETIME, tz="", start=LIFETIME_START)
    for tz, w in current.items():
        match |= Q(window=SpendCounter.Window.DAY, tz=tz, start=w.day)
        match |= Q(window=SpendCounter.Window.MONTH, tz=tz, start=w.month)
    counters: dict[tuple[int, str, str, dt.date], int] = {
        (pk, window, tz, start): spent
        for pk, window, tz, start, spent in SpendCounter.objects.filter(match).values_list(
            "persona_id", "window", "tz", "start", "spent_nanos"
        )
    }
    held = dict(
        Hold.objects.filter(state=Hold.State.ACTIVE, expires_at__gt=now)
        .values("persona_id")
        .annotate(total=Sum("amount_nanos"))
        .values_list("persona_id", "total")
    )
    out: dict[str, dict[Key, int]] = {"spent": {}, "cap": {}, "held": {}}
    totals: dict[str, dict[Key, int]] = {"spent": defaultdict(int), "held": defaultdict(int)}
    for pk, agent_id, slug, tz, daily, monthly, lifetime in personas:
        w = current[tz or "UTC"]
        caps: dict[str, int | None] = {"daily": daily, "monthly": monthly, "lifetime": lifetime}
        starts = {
            "daily": (SpendCounter.Window.DAY, tz or "UTC", w.day),
            "monthly": (SpendCounter.Window.MONTH, tz or "UTC", w.month),
            "lifetime": (SpendCounter.Window.LIFETIME, "", LIFETIME_START),
        }
        for window, _ in WINDOWS:
            key: Key = ("persona", agent_id, slug, window)
            spent = counters.get((pk, *starts[window]))
            if spent is not None:
                out["spent"][key] = spent
                totals["spent"][("agent", agent_id, "", window)] += spent
                totals["spent"][("platform", "", "", window)] += spent
            cap = caps[window]
            if cap is not None:
                out["cap"][key] = cap
            if pk in held:
                out["held"][key] = int(held[pk])
                totals["held"][("agent", agent_id, "", window)] += int(held[pk])
                totals["held"][("platform", "", "", window)] += int(held[pk])
    for name in ("spent", "held"):
        out[name].update(totals[name])
    return out


class DatabaseCollector(Collector):
    """Registered on the registry that ``/metrics`` renders (never the default one, so
    importing this module runs no query)."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        gauges = spend_gauges(now)
        help_texts = {
            "spent": "Spent in the scope's current window (USD), from the window counters",
            "cap": "The window's cap (USD); absent when the window has no cap",
            "held": "Active holds of the scope (USD); they count against every window",
        }
        for name, values in gauges.items():
            family = GaugeMetricFamily(f"hal0_{name}_usd", help_texts[name], labels=LABELS)
            for key, nanos in values.items():
                family.add_metric(list(key), _usd(nanos))
            yield family
        yield from webhook_metrics(now)


def webhook_metrics(now: dt.datetime) -> Iterator[Metric]:
    states = dict(
        Delivery.objects.values("state").annotate(n=Count("id")).values_list("state", "n")
    )
    deliveries = GaugeMetricFamily(
        "hal0_webhook_deliveries", "Webhook deliveries by state", labels=["state"]
    )
    for state in Delivery.State.values:
        deliveries.add_metric([state], states.get(state, 0))
    yield deliveries
    outcomes: dict[Any, int] = dict(
        DeliveryAttempt.objects.values("ok").annotate(n=Count("id")).values_list("ok", "n")
    )
    attempts = CounterMetricFamily(
        "hal0_webhook_attempts",
        "Webhook delivery attempts by outcome (success: a 2xx answer)",
        labels=["outcome"],
    )
    attempts.add_metric(["success"], outcomes.get(True, 0))
    attempts.add_metric(["failure"], outcomes.get(False, 0))
    yield attempts
    oldest = Delivery.objects.filter(state=Delivery.State.PENDING).aggregate(at=Min("created_at"))[
        "at"
    ]
    backlog = GaugeMetricFamily(
        "hal0_webhook_oldest_pending_seconds",
        "Age of the oldest undelivered webhook delivery (0 when none is pending)",
    )
    backlog.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    yield backlog
