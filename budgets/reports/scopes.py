"""The agent and platform scopes as the operators' pages show them: gauges, the Spend
page's rows, the banner's items, and which scope is the tightest for a persona.

Caps come from the scope's file (``scope_budget``: one ``os.stat`` while unchanged); spend
and holds from the check's own read (``scope_usage``: one statement per scope, summing the
personas' window counters cut in the scope's timezone); every status from
``rules.scope_status`` and the tightest scope from ``rules.tightest``. Nothing here
derives a status of its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import connection
from django.db.models import Q, Sum
from django.urls import reverse
from django.utils import timezone

from budgets import rules
from budgets.models import Charge, Hold, SpendCounter
from budgets.reports.selectors import WINDOWS, ScopeAlert, WindowView
from budgets.services import scopes
from budgets.services.counters import _keys, spend_and_held
from budgets.services.windows import LIFETIME_START, windows_at
from personas.models import Agent, Persona, Platform
from personas.services.scopes import (
    NO_FILE,
    PLATFORM,
    ScopeFile,
    agent_scope,
    file_signature,
    sync_scope,
)
from personas.toml_store import budget_spec_from_persona

SPEND_PAGE_AGENTS = 100
WINDOW_LABELS = {key: label for key, _, label, _ in WINDOWS}


@dataclass
class ScopeSpend:
    """One agent's or the platform's caps, spend and status, laid out like a persona's
    (``windows``, ``held_nanos``, ``holds``), so the persona's gauge partials show it."""

    kind: str  # agent | platform
    agent_id: str | None
    budget: scopes.ScopeBudget
    status_of: rules.ScopeStatus
    windows: list[WindowView]
    held_nanos: int
    holds: int

    @property
    def name(self) -> str:
        return f"agent {self.agent_id}" if self.kind == "agent" else "platform"

    @property
    def url(self) -> str:
        if self.kind == "agent":
            return reverse("admin:personas_agent_change", args=[self.agent_id])
        return reverse("admin:personas_platform_changelist")

    @property
    def status(self) -> str:
        return self.status_of.status

    @property
    def has_caps(self) -> bool:
        return self.budget.caps.has_caps

    @property
    def paused(self) -> bool:
        return self.budget.spec.paused

    @property
    def hard_cap(self) -> bool:
        return self.budget.spec.hard_cap

    @property
    def per_call_cap(self) -> int | None:
        return self.budget.spec.per_call_nanos

    @property
    def token_windows(self) -> list[rules.WindowStatus]:
        """The token windows with a cap (the others have nothing to show)."""
        return [w for w in self.status_of.windows if w.unit == "tokens" and w.cap is not None]

    def window(self, key: str) -> WindowView:
        return next(w for w in self.windows if w.key == key)

    def worst_window(self) -> rules.WindowStatus | None:
        capped = [w for w in self.status_of.windows if w.cap is not None]
        if not capped:
            return None
        return max(capped, key=lambda w: (rules.STATUS_ORDER[w.status], w.fraction or 0.0))


def _views(
    budget: scopes.ScopeBudget, status: rules.ScopeStatus, now: dt.datetime
) -> list[WindowView]:
    w = windows_at(budget.timezone, now)
    resets = {"daily": w.day_end, "monthly": w.month_end, "lifetime": None}
    views = []
    for ws in status.usd_windows():
        view = WindowView(
            key=ws.window,
            label=WINDOW_LABELS[ws.window],
            spent_nanos=ws.spent,
            cap_nanos=ws.cap,
            held_nanos=ws.held,
            warn_at=status.warn_at,
            resets_at=resets[ws.window],
        )
        view.status = ws.status  # the rules' status, as computed for the scope
        views.append(view)
    return views


def _hold_count(agent_id: str | None, now: dt.datetime) -> int:
    holds = Hold.objects.filter(state=Hold.State.ACTIVE, expires_at__gt=now)
    if agent_id is not None:
        holds = holds.filter(persona__agent_id=agent_id)
    return holds.count()


def scope_spend(
    scope: ScopeFile,
    now: dt.datetime | None = None,
    *,
    count_holds: bool = True,
    budget: scopes.ScopeBudget | None = None,
    usage: rules.Usage | None = None,
) -> ScopeSpend:
    """One scope's caps (``budget``, or read from its file), spend (the check's read: one
    statement) and status."""
    now = now or timezone.now()
    budget = budget or scopes.scope_budget(scope)
    agent_id = scope.agent_id
    if usage is not None:
        pass  # read for many agents at once (agents_usage)
    elif scope.kind == "agent":
        usage = scopes.scope_usage(agent_id or "", budget, None, now)[0]
    else:
        usage = scopes.scope_usage("", None, budget, now)[1]
    assert usage is not None
    status = rules.scope_status(rules.Scope(scope.kind, budget.caps, usage))
    return ScopeSpend(
        kind=scope.kind,
        agent_id=agent_id,
        budget=budget,
        status_of=status,
        windows=_views(budget, status, now),
        held_nanos=usage.held,
        holds=_hold_count(agent_id, now) if count_holds else 0,
    )


def _capped(q_prefix: str = "") -> Q:
    columns = (
        "daily_cap_nanos",
        "monthly_cap_nanos",
        "lifetime_cap_nanos",
        "daily_cap_tokens",
        "monthly_cap_tokens",
        "lifetime_cap_tokens",
    )
    found = Q()
    for column in columns:
        found |= Q(**{f"{q_prefix}{column}__isnull": False})
    return found


@lru_cache(maxsize=8)
def _agents_sql(vendor: str, n: int) -> str:
    """Day, month and lifetime spend and tokens of ``n`` agents, one row per agent: the
    check's read (``budgets.services.scopes``) grouped by agent. A persona's counter in the
    agents' zone that is missing falls back to an indexed SUM of its charges, as there."""
    qn = connection.ops.quote_name
    persona_t = qn(Persona._meta.db_table)
    counter_t = qn(SpendCounter._meta.db_table)
    charge_t = qn(Charge._meta.db_table)
    pid = f"p.{qn('id')}"
    tokens_expr = f"COALESCE(c.{qn('input_tokens')}, 0) + COALESCE(c.{qn('output_tokens')}, 0)"

    def fallback(expr: str, ranged: bool) -> str:
        where = f"c.{qn('persona_id')} = {pid}"
        if ranged:
            where += f" AND c.{qn('ts')} >= %s AND c.{qn('ts')} < %s"
        return f"(SELECT COALESCE(SUM({expr}), 0) FROM {charge_t} c WHERE {where})"  # noqa: S608

    columns, joins = [], []
    for alias, ranged in (("d", True), ("m", True), ("l", False)):
        joins.append(
            f"LEFT JOIN {counter_t} {alias} ON {alias}.{qn('persona_id')} = {pid} "
            f"AND {alias}.{qn('window')} = %s AND {alias}.{qn('tz')} = %s "
            f"AND {alias}.{qn('start')} = %s"
        )
        cost = fallback(f"c.{qn('cost_nanos')}", ranged)
        tokens = fallback(tokens_expr, ranged)
        columns.append(f"COALESCE(SUM(COALESCE({alias}.{qn('spent_nanos')}, {cost})), 0)")
        columns.append(f"COALESCE(SUM(COALESCE({alias}.{qn('tokens')}, {tokens})), 0)")
    agent = f"p.{qn('agent_id')}"
    marks = ", ".join(["%s"] * n)
    return (
        f"SELECT {agent}, {', '.join(columns)} FROM {persona_t} p {' '.join(joins)} "  # noqa: S608
        f"WHERE {agent} IN ({marks}) GROUP BY {agent}"
    )


def agents_usage(
    budgets: list[tuple[str, scopes.ScopeBudget]], now: dt.datetime
) -> dict[str, rules.Usage]:
    """The spend and holds of many agents: one statement per timezone among them (their
    days and months are cut there) and one for all their holds, whatever their number."""
    by_tz: dict[str, list[str]] = {}
    for agent_id, budget in budgets:
        by_tz.setdefault(budget.timezone, []).append(agent_id)
    spent: dict[str, list[int]] = {}
    ops = connection.ops
    for tz, ids in by_tz.items():
        w = windows_at(tz, now)
        params: list[Any] = []
        for begin, end in ((w.day_begin, w.day_end), (w.month_begin, w.month_end)):
            span = [ops.adapt_datetimefield_value(begin), ops.adapt_datetimefield_value(end)]
            params += span + span  # the spent and the tokens fallbacks
        for window, key_tz, start in _keys(w):
            params += [str(window), key_tz, ops.adapt_datefield_value(start)]
        params += ids
        with connection.cursor() as cursor:
            cursor.execute(_agents_sql(connection.vendor, len(ids)), params)
            for row in cursor.fetchall():
                spent[row[0]] = [int(v) for v in row[1:]]
    held = {
        r["persona__agent_id"]: (int(r["n"] or 0), int(r["t"] or 0))
        for r in Hold.objects.filter(
            persona__agent_id__in=[a for a, _ in budgets],
            state=Hold.State.ACTIVE,
            expires_at__gt=now,
        )
        .values("persona__agent_id")
        .annotate(n=Sum("amount_nanos"), t=Sum("amount_tokens"))
        .order_by()
    }
    found = {}
    for agent_id, _ in budgets:
        ds, dt_, ms, mt, ls, lt = spent.get(agent_id, [0] * 6)
        hn, ht = held.get(agent_id, (0, 0))
        found[agent_id] = rules.Usage(
            daily=ds,
            monthly=ms,
            lifetime=ls,
            daily_tokens=dt_,
            monthly_tokens=mt,
            lifetime_tokens=lt,
            held=hn,
            held_tokens=ht,
        )
    return found


def capped_scopes(now: dt.datetime | None = None) -> list[ScopeSpend]:
    """The platform and the agents that have a window cap (what the banner watches):
    one statement each for their spend and holds (the check's read of the counters)."""
    now = now or timezone.now()
    found = []
    # No platform.toml and never had one: no caps, and no row to create from a page view.
    never = file_signature(PLATFORM) == NO_FILE and not Platform.objects.filter(_capped()).exists()
    if not never and scopes.scope_budget(PLATFORM).has_window_caps:
        found.append(scope_spend(PLATFORM, now, count_holds=False))
    capped = [(a, b) for a, b in agent_budgets() if b.has_window_caps]
    # All capped agents at once: a statement per timezone, not one per agent.
    usage = agents_usage(capped, now) if capped else {}
    for agent_id, budget in capped:
        found.append(
            scope_spend(
                agent_scope(agent_id), now, count_holds=False, budget=budget, usage=usage[agent_id]
            )
        )
    return found


def agent_budgets() -> list[tuple[str, scopes.ScopeBudget]]:
    """Every agent's caps: one query for all the rows and one ``os.stat`` per agent.toml;
    a file that changed since its row (a hand edit) is taken in (and audited) first, as a
    check would, so a cap set by hand shows before any check has run."""
    found = []
    for row in Agent.objects.order_by("pk"):
        scope = agent_scope(row.pk)
        if file_signature(scope) != row.file_signature:
            synced = sync_scope(scope)
            assert isinstance(synced, Agent)
            row = synced
        budget = scopes.ScopeBudget(
            kind="agent",
            spec=budget_spec_from_persona(row),
            timezone=row.effective_timezone,
            load_error=row.load_error,
        )
        found.append((row.pk, budget))
    return found


def scope_alerts(now: dt.datetime | None = None) -> list[ScopeAlert]:
    """The banner's agents and platform in warn or exceeded, worst first; each names its
    worst window (the rules' status, then the share of the cap spent)."""
    found = []
    for s in capped_scopes(now):
        w = s.worst_window()
        if w is None or w.cap is None or w.status not in ("warn", "exceeded"):
            continue
        label = WINDOW_LABELS[w.window].lower()
        found.append(
            ScopeAlert(
                kind=s.kind,
                name=s.name,
                url=s.url,
                status=s.status,
                window_label=label if w.unit == "usd" else f"{label} tokens",
                unit=w.unit,
                spent=w.spent,
                cap=w.cap,
                hard_cap=s.hard_cap,
            )
        )
    # The platform first (it stops everyone), then agents, worst first.
    found.sort(key=lambda a: (a.kind != "platform", -rules.STATUS_ORDER[a.status], a.name))
    return found


def spend_page_scopes(now: dt.datetime | None = None) -> tuple[list[ScopeSpend], bool]:
    """The Spend page's scope rows: the platform, then up to ``SPEND_PAGE_AGENTS`` agents,
    worst first. Returns the rows and whether agents were left out."""
    now = now or timezone.now()
    agents = agent_budgets()
    shown = agents[:SPEND_PAGE_AGENTS]
    usage = agents_usage(shown, now) if shown else {}
    rows = [
        scope_spend(agent_scope(a), now, budget=budget, count_holds=False, usage=usage[a])
        for a, budget in shown
    ]
    rows.sort(key=lambda s: (-rules.STATUS_ORDER[s.status], not s.has_caps, s.agent_id or ""))
    return [scope_spend(PLATFORM, now), *rows], len(agents) > SPEND_PAGE_AGENTS


def unpriced_charges() -> int:
    """How many charges have no recorded cost, all personas, ever: the lifetime counters'
    ``unpriced`` summed (one query over the counters, never the ledger)."""
    total = SpendCounter.objects.filter(
        window=SpendCounter.Window.LIFETIME, tz="", start=LIFETIME_START
    ).aggregate(n=Sum("unpriced"))["n"]
    return int(total or 0)


# ---------------------------------------------------------------------------------------
# The tightest scope of a persona


@dataclass
class Tightest:
    """The scope with the least headroom on one window of a persona's check."""

    window: str  # daily | monthly | lifetime
    unit: str  # usd | tokens
    kind: str  # persona | agent | platform
    name: str
    url: str | None  # None: the persona itself (this page)
    headroom: int
    cap: int

    @property
    def label(self) -> str:
        name = self.window.capitalize()
        return name if self.unit == "usd" else f"{name} (tokens)"


def tightest_scopes(persona: Persona, now: dt.datetime | None = None) -> list[Tightest]:
    """Per capped window, which scope (persona, agent, platform) leaves this persona the
    least: the check's own scopes and read, and ``rules.tightest``."""
    from budgets.services.budget import check_scopes

    now = now or timezone.now()
    spend, held = spend_and_held(persona, windows_at(persona.effective_timezone, now), now)
    statuses = [rules.scope_status(s) for s in check_scopes(persona, spend, held, now)]
    by_kind = {s.kind: s for s in statuses}
    names: dict[str, tuple[str, str | None]] = {
        "persona": (f"persona {persona}", None),
        "agent": (
            f"agent {persona.agent_id}",
            reverse("admin:personas_agent_change", args=[persona.agent_id]),
        ),
        "platform": ("platform", reverse("admin:personas_platform_changelist")),
    }
    found = []
    for unit in rules.UNITS:
        for window in rules.WINDOWS:
            kind = rules.tightest(statuses, window, unit)
            if kind is None:
                continue
            w = by_kind[kind].window(window, unit)
            assert w.headroom is not None
            assert w.cap is not None
            name, url = names[kind]
            found.append(Tightest(window, unit, kind, name, url, w.headroom, w.cap))
    return found


def tightest_overall(rows: list[Tightest]) -> Tightest | None:
    """Of the USD windows, the one with the least headroom: what stops this persona first."""
    usd = [r for r in rows if r.unit == "usd"]
    return min(usd, key=lambda r: r.headroom) if usd else None


__all__: list[Any] = [
    "ScopeSpend",
    "Tightest",
    "capped_scopes",
    "scope_alerts",
    "scope_spend",
    "spend_page_scopes",
    "tightest_overall",
    "tightest_scopes",
    "unpriced_charges",
]
