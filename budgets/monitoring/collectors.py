"""Gauges computed from the database when Prometheus scrapes: spend, caps and holds per
scope and window, and the webhook backlog. Nothing is kept in process memory, so it does
not matter which gunicorn worker answers the scrape.

Cost: a fixed number of queries whatever the number of personas and agents (personas,
agents, the platform, their current window counters, active holds grouped by persona;
deliveries grouped by state, attempts by outcome, the oldest pending), then a pass in
Python. docs/alerts.md gives the figures for 1,000 personas.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from budgets.events.models import Delivery, DeliveryAttempt
from budgets.models import Hold, SpendCounter
from budgets.services.windows import LIFETIME_START, windows_at
from personas.models import Agent, Persona, Platform

WINDOWS = (("daily", "day"), ("monthly", "month"), ("lifetime", "lifetime"))
LABELS = ["scope", "agent", "persona", "window"]
Key = tuple[str, str, str, str]  # scope, agent, persona, window


def _usd(nanos: int) -> float:
    # A float is what the exposition format carries; the exact Decimal would only be
    # converted back (and costs 20 µs a series at 8,000 series a scrape).
    return nanos / 1e9


CapRow = tuple[str, int | None, int | None, int | None]  # timezone, daily, monthly, lifetime


def spend_gauges(now: dt.datetime) -> dict[str, dict[Key, int]]:
    """{"spent"|"cap"|"held": {(scope, agent, persona, window): nano-USD}}.

    Persona rows come from the window counters of each persona's current day and month
    (cut in its own timezone) and lifetime. An agent's and the platform's spend is the sum
    of their personas' counters of the scope's own current day and month, cut in the
    scope's timezone as its caps are (the charge service keeps counters in that zone while
    the scope caps a window; where it is the personas' zone, they are the same counters);
    their caps are their last loaded budget blocks (agent.toml, platform.toml). A window
    without a counter has had no charge in it since the counter's start and is left out
    rather than shown as a made-up zero.

    Five queries whatever the number of personas and agents: personas, agents, the
    platform, the current counters, the active holds.
    """
    columns = ("timezone", "daily_cap_nanos", "monthly_cap_nanos", "lifetime_cap_nanos")
    personas = list(Persona.objects.values_list("pk", "agent_id", "slug", *columns))
    agents: dict[str, CapRow] = {
        row[0]: row[1:] for row in Agent.objects.values_list("id", *columns)
    }
    platform: CapRow = Platform.objects.values_list(*columns).first() or ("", None, None, None)
    zones = {p[3] or "UTC" for p in personas}
    zones |= {a[0] or "UTC" for a in agents.values()} | {platform[0] or "UTC"}
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

    def starts(tz: str) -> dict[str, tuple[str, str, dt.date]]:
        """window -> the counter key (window, tz, start) of the current window in ``tz``."""
        w = current[tz or "UTC"]
        return {
            "daily": (SpendCounter.Window.DAY, tz or "UTC", w.day),
            "monthly": (SpendCounter.Window.MONTH, tz or "UTC", w.month),
            "lifetime": (SpendCounter.Window.LIFETIME, "", LIFETIME_START),
        }

    def caps_of(row: CapRow) -> dict[str, int | None]:
        return {"daily": row[1], "monthly": row[2], "lifetime": row[3]}

    out: dict[str, dict[Key, int]] = {"spent": {}, "cap": {}, "held": {}}
    platform_starts = starts(platform[0])
    agent_starts = {agent_id: starts(row[0]) for agent_id, row in agents.items()}
    for pk, agent_id, slug, tz, *caps in personas:
        own = starts(tz)
        scopes: list[tuple[Key, dict[str, tuple[str, str, dt.date]]]] = [
            (("persona", agent_id, slug, ""), own),
            (("agent", agent_id, "", ""), agent_starts.get(agent_id, own)),
            (("platform", "", "", ""), platform_starts),
        ]
        for window, _ in WINDOWS:
            for (kind, agent, persona, _), keys in scopes:
                key: Key = (kind, agent, persona, window)
                spent = counters.get((pk, *keys[window]))
                if spent is not None:
                    out["spent"][key] = out["spent"].get(key, 0) + spent
                if pk in held:
                    out["held"][key] = out["held"].get(key, 0) + int(held[pk])
            cap = caps_of((tz, *caps))[window]
            if cap is not None:
                out["cap"][("persona", agent_id, slug, window)] = cap
    for agent_id, row in agents.items():
        for window, cap in caps_of(row).items():
            if cap is not None:
                out["cap"][("agent", agent_id, "", window)] = cap
    for window, cap in caps_of(platform).items():
        if cap is not None:
            out["cap"][("platform", "", "", window)] = cap
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
