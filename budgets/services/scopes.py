"""The agent and platform scopes of a check: their caps, their spend, their locks.

Counters stay owned by the persona (``SpendCounter``): there is no agent or platform row
that every charge would update, so charges of different personas never queue behind one
hot row. An agent's spend is the sum of its personas' counters, the platform's the sum of
every persona's, read in ONE extra statement and only when that scope has a window cap.
Each scope's day and month are cut in its own timezone: the charge service keeps its
personas' counters in those zones too (``bump(..., zones=...)``), and a counter that is
missing there (a zone that just changed, counters dropped by an import) falls back to an
indexed SUM of that persona's charges inside the statement, so the sum is never short.
Holds belong to a persona; a scope's held amount is the sum of its personas' active holds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from django.db import connection

from budgets import rules
from budgets.models import Charge, Hold, SpendCounter
from budgets.services.counters import _keys
from budgets.services.windows import Windows, windows_at
from personas.models import Agent, Persona, Platform
from personas.services.scopes import (
    PLATFORM,
    ScopeFile,
    agent_scope,
    file_signature,
    sync_scope,
)
from personas.toml_store import BudgetSpec, budget_spec_from_persona

Kind = Literal["agent", "platform"]


def caps_of(spec: BudgetSpec) -> rules.Caps:
    """The rules' view of a budget block (persona, agent or platform)."""
    return rules.Caps(
        per_call=spec.per_call_nanos,
        daily=spec.daily_nanos,
        monthly=spec.monthly_nanos,
        lifetime=spec.lifetime_nanos,
        per_call_tokens=spec.per_call_tokens,
        daily_tokens=spec.daily_tokens,
        monthly_tokens=spec.monthly_tokens,
        lifetime_tokens=spec.lifetime_tokens,
        hard_cap=spec.hard_cap,
        warn_at=spec.warn_at,
        paused=spec.paused,
    )


def usage_of(spend: Any, held_nanos: int = 0, held_tokens: int = 0) -> rules.Usage:
    """``rules.Usage`` from a ``WindowSpend`` (or anything with its attributes)."""
    return rules.Usage(
        daily=spend.day,
        monthly=spend.month,
        lifetime=spend.lifetime,
        daily_tokens=spend.day_tokens,
        monthly_tokens=spend.month_tokens,
        lifetime_tokens=spend.lifetime_tokens,
        held=held_nanos,
        held_tokens=held_tokens,
    )


@dataclass(frozen=True)
class ScopeBudget:
    """An agent's or the platform's last good caps, as a check needs them."""

    kind: Kind
    spec: BudgetSpec
    timezone: str
    load_error: str

    @property
    def caps(self) -> rules.Caps:
        return caps_of(self.spec)

    @property
    def has_window_caps(self) -> bool:
        """Whether its spend matters: a per-call cap or a pause alone needs no sums."""
        spec = self.spec
        return any(
            cap is not None
            for cap in (
                spec.daily_nanos,
                spec.monthly_nanos,
                spec.lifetime_nanos,
                spec.daily_tokens,
                spec.monthly_tokens,
                spec.lifetime_tokens,
            )
        )

    @property
    def needs_lock(self) -> bool:
        """Reserves under it must serialize: it can block on a window."""
        return self.spec.hard_cap and self.has_window_caps


# Per worker: the caps each file held at a stat signature. The file is the truth and every
# write changes its signature, so an entry can only be stale for a file that moved on,
# and then its signature no longer matches. Keyed by the path (the data folder included).
_CACHE: dict[str, tuple[str, ScopeBudget]] = {}
_CACHE_MAX = 10_000


def scope_budget(scope: ScopeFile) -> ScopeBudget:
    """The scope's caps: one ``os.stat`` while its file is unchanged, no query."""
    key = str(scope.path)
    sig = file_signature(scope)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == sig:
        return cached[1]
    row = sync_scope(scope)
    found = ScopeBudget(
        kind=scope.kind,
        spec=budget_spec_from_persona(row),
        timezone=row.effective_timezone,
        load_error=row.load_error,
    )
    if row.file_signature == sig:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = (sig, found)
    return found


def budgets_above(agent_id: str) -> tuple[ScopeBudget, ScopeBudget]:
    """The agent's and the platform's caps, in evaluation order."""
    return scope_budget(agent_scope(agent_id)), scope_budget(PLATFORM)


def zones_of(*budgets: ScopeBudget) -> tuple[str, ...]:
    """The zones whose day and month counters a charge keeps besides the persona's own."""
    return tuple(b.timezone for b in budgets if b.has_window_caps)


# ---------------------------------------------------------------------------------------
# Locks


def lock_above(agent_id: str, agent: ScopeBudget, platform: ScopeBudget) -> None:
    """Row-lock the agent and then the platform, each only when it can block on a window.

    Lock order, everywhere money moves: persona (``lock_persona``), then agent, then
    platform. Every transaction that takes more than one of these takes them in that
    order, and the cap writers take one row each, so no two transactions can each hold a
    lock the other waits for: no deadlock. Only reserves take the agent and platform
    locks (a reserve reads a scope's spend and holds and adds a hold, which must not
    interleave with another reserve of the same scope); a charge or a release only lowers
    what a reserve could see as free or replaces a hold by its cost, in one commit, so it
    needs its persona's lock alone, and an uncapped agent or platform serializes nothing.
    On SQLite the IMMEDIATE transaction already holds the database's write lock.
    """
    if not connection.features.has_select_for_update:
        return
    with connection.cursor() as cursor:
        if agent.needs_lock:
            cursor.execute(_lock_sql(connection.vendor, "agent"), [agent_id])
        if platform.needs_lock:
            cursor.execute(_lock_sql(connection.vendor, "platform"), [Platform.ID])


@lru_cache(maxsize=4)
def _lock_sql(vendor: str, kind: Kind) -> str:
    qn = connection.ops.quote_name
    table = qn((Agent if kind == "agent" else Platform)._meta.db_table)
    return f"SELECT {qn('id')} FROM {table} WHERE {qn('id')} = %s FOR UPDATE"  # noqa: S608


# ---------------------------------------------------------------------------------------
# Spend and holds of a scope: one statement for both scopes


@lru_cache(maxsize=8)
def _spend_sql(vendor: str, agent: bool, platform: bool) -> str:
    """One row: per wanted scope, day/month/lifetime spend and tokens, then held nanos and
    tokens. Only quoted constant identifiers are formatted in; values are parameters."""
    qn = connection.ops.quote_name
    persona_t = qn(Persona._meta.db_table)
    counter_t = qn(SpendCounter._meta.db_table)
    charge_t = qn(Charge._meta.db_table)
    hold_t = qn(Hold._meta.db_table)
    pid = f"p.{qn('id')}"
    tokens_expr = f"COALESCE(c.{qn('input_tokens')}, 0) + COALESCE(c.{qn('output_tokens')}, 0)"

    def fallback(expr: str, ranged: bool) -> str:
        # Only evaluated for a persona whose counter in this zone is missing (COALESCE
        # stops at the first non-NULL): an indexed range of that persona's charges.
        where = f"c.{qn('persona_id')} = {pid}"
        if ranged:
            where += f" AND c.{qn('ts')} >= %s AND c.{qn('ts')} < %s"
        return f"(SELECT COALESCE(SUM({expr}), 0) FROM {charge_t} c WHERE {where})"  # noqa: S608

    def spend(filtered: bool) -> str:
        columns = []
        joins = []
        for alias, ranged in (("d", True), ("m", True), ("l", False)):
            joins.append(
                f"LEFT JOIN {counter_t} {alias} ON {alias}.{qn('persona_id')} = {pid} "
                f"AND {alias}.{qn('window')} = %s AND {alias}.{qn('tz')} = %s "
                f"AND {alias}.{qn('start')} = %s"
            )
            cost = fallback(f"c.{qn('cost_nanos')}", ranged)
            columns.append(f"COALESCE({alias}.{qn('spent_nanos')}, {cost}) AS {alias}s")
            columns.append(
                f"COALESCE({alias}.{qn('tokens')}, {fallback(tokens_expr, ranged)}) AS {alias}t"
            )
        where = f"WHERE p.{qn('agent_id')} = %s" if filtered else ""
        inner = f"SELECT {', '.join(columns)} FROM {persona_t} p {' '.join(joins)} {where}"  # noqa: S608
        sums = ", ".join(f"COALESCE(SUM(x.{a}{u}), 0) AS {a}{u}" for a in "dml" for u in "st")
        return f"(SELECT {sums} FROM ({inner}) x)"  # noqa: S608

    def held(filtered: bool) -> str:
        active = f"h.{qn('state')} = %s AND h.{qn('expires_at')} > %s"
        if filtered:
            source = (
                f"{hold_t} h JOIN {persona_t} p ON p.{qn('id')} = h.{qn('persona_id')} "
                f"WHERE p.{qn('agent_id')} = %s AND {active}"
            )
        else:
            source = f"{hold_t} h WHERE {active}"
        return (
            f"(SELECT COALESCE(SUM(h.{qn('amount_nanos')}), 0) AS hn, "  # noqa: S608
            f"COALESCE(SUM(h.{qn('amount_tokens')}), 0) AS ht FROM {source})"
        )

    parts = []
    if agent:
        parts += [f"{spend(True)} a", f"{held(True)} ah"]
    if platform:
        parts += [f"{spend(False)} t", f"{held(False)} th"]
    return f"SELECT * FROM {', '.join(parts)}"  # noqa: S608


def _spend_params(w: Windows, agent_id: str | None, now: dt.datetime) -> list[Any]:
    ops = connection.ops
    params: list[Any] = []
    spans = {"day": (w.day_begin, w.day_end), "month": (w.month_begin, w.month_end)}
    for window, tz, start in _keys(w):
        params += [str(window), tz, ops.adapt_datefield_value(start)]
    # The columns' fallbacks, in the order they appear: day spent, day tokens, month...
    columns: list[Any] = []
    for window in ("day", "month", "lifetime"):
        span = spans.get(window)
        one = [] if span is None else [ops.adapt_datetimefield_value(t) for t in span]
        columns += one + one
    # Placeholders appear in the text in this order: the columns (their fallbacks), then
    # the joins, then the WHERE.
    out = columns + params
    if agent_id is not None:
        out.append(agent_id)
    held: list[Any] = []
    if agent_id is not None:
        held.append(agent_id)
    held += [Hold.State.ACTIVE, ops.adapt_datetimefield_value(now)]
    return out + held


def scope_usage(
    agent_id: str,
    agent: ScopeBudget | None,
    platform: ScopeBudget | None,
    now: dt.datetime,
) -> tuple[rules.Usage | None, rules.Usage | None]:
    """The agent's and the platform's spend and holds (``None`` for a scope not asked
    for), in one statement; none at all when neither is asked for."""
    if agent is None and platform is None:
        return None, None
    params: list[Any] = []
    if agent is not None:
        params += _spend_params(windows_at(agent.timezone, now), agent_id, now)
    if platform is not None:
        params += _spend_params(windows_at(platform.timezone, now), None, now)
    with connection.cursor() as cursor:
        cursor.execute(
            _spend_sql(connection.vendor, agent is not None, platform is not None), params
        )
        values = [int(v) for v in cursor.fetchone()]
    found: list[rules.Usage | None] = []
    for wanted in (agent, platform):
        if wanted is None:
            found.append(None)
            continue
        ds, dt_, ms, mt, ls, lt, hn, ht = values[:8]
        values = values[8:]
        found.append(
            rules.Usage(
                daily=ds,
                monthly=ms,
                lifetime=ls,
                daily_tokens=dt_,
                monthly_tokens=mt,
                lifetime_tokens=lt,
                held=hn,
                held_tokens=ht,
            )
        )
    return found[0], found[1]
