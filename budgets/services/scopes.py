"""The agent and platform scopes of a check: their caps, their spend, their locks.

Counters stay owned by the persona (``SpendCounter``): there is no agent or platform row
that every charge would update, so charges of different personas never queue behind one
hot row. An agent's spend is the sum of its personas' counters, the platform's the sum of
every persona's, read only when that scope has a window cap: inside the persona's own
statement on a check's hot path on SQLite (``usage_read``), else in one statement for both.
Each scope's day and month are cut in its own timezone: the charge service keeps its
personas' counters in those zones too (``bump(..., zones=...)``), and a counter that is
missing there (a zone that just changed, counters dropped by an import) falls back to an
indexed SUM of that persona's charges inside the statement, so the sum is never short.
Holds belong to a persona; a scope's held amount is the sum of its personas' active holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from django.conf import settings
from django.db import connection

from budgets import rules
from budgets.models import Charge, Hold, SpendCounter
from budgets.services.counters import _keys
from budgets.services.windows import Windows, windows_at
from personas.models import Agent, Persona, Platform
from personas.services.scopes import (
    NO_FILE,
    PLATFORM,
    ScopeFile,
    agent_scope,
    sync_scope,
)
from personas.toml_store import BudgetSpec, budget_spec_from_persona, signature

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

    @property
    def alerts(self) -> bool:
        """Whether its charges can cross a threshold: it caps a USD window (budget.warn
        and budget.exceeded are about USD windows, as the persona's are)."""
        spec = self.spec
        return any(
            cap is not None for cap in (spec.daily_nanos, spec.monthly_nanos, spec.lifetime_nanos)
        )


# Per worker: the caps each file held at a stat signature. The file is the truth and every
# write changes its signature, so an entry can only be stale for a file that moved on,
# and then its signature no longer matches. Keyed by the path (the data folder included).
_CACHE: dict[str, tuple[str, ScopeBudget]] = {}
_CACHE_MAX = 10_000


# Per worker: each scope file's path in a data folder (building it with pathlib cost more
# than the stat itself on every check).
_PATHS: dict[tuple[Path, ScopeFile], tuple[str, Path]] = {}


def _path_of(scope: ScopeFile) -> tuple[str, Path]:
    key = (Path(settings.HAL0_DATA_DIR), scope)
    found = _PATHS.get(key)
    if found is None:
        path = scope.path
        found = (str(path), path)
        if len(_PATHS) >= _CACHE_MAX:
            _PATHS.clear()
        _PATHS[key] = found
    return found


def scope_budget(scope: ScopeFile) -> ScopeBudget:
    """The scope's caps: one ``os.stat`` while its file is unchanged, no query."""
    key, path = _path_of(scope)
    try:
        sig = signature(path)
    except (FileNotFoundError, NotADirectoryError):
        sig = NO_FILE  # as ``file_signature`` says it
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
    locks to decide (a reserve reads a scope's spend and holds and adds a hold, which must
    not interleave with another reserve of the same scope); a charge or a release only
    lowers what a reserve could see as free or replaces a hold by its cost, in one commit,
    so it needs its persona's lock alone (its alerts take a lock of their own:
    ``statuses_after_charge``), and an uncapped agent or platform serializes nothing. On
    SQLite the IMMEDIATE transaction already holds the database's write lock.
    """
    if not connection.features.has_select_for_update:
        return
    with connection.cursor() as cursor:
        if agent.needs_lock:
            cursor.execute(_lock_sql(connection.vendor, "agent"), [agent_id])
        if platform.needs_lock:
            cursor.execute(_lock_sql(connection.vendor, "platform"), [Platform.ID])


def _alerts_key(kind: Kind, agent_id: str) -> int:
    """A 64-bit advisory lock key per scope's alerts (a collision only serializes more)."""
    name = f"hal0:alerts:{kind}:{agent_id if kind == 'agent' else ''}"
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


def _lock_alerts(agent_id: str, kinds: list[Kind]) -> None:
    """PostgreSQL: a transaction-scoped advisory lock per scope whose alerts this charge
    computes, all in one statement. Only charges take these (after their persona's lock,
    always in this statement's order), and a reserve's row locks are other locks: neither
    waits for the other, so no deadlock. SQLite: the IMMEDIATE transaction already
    serializes every charge."""
    if connection.vendor != "postgresql":
        return
    calls = ", ".join("pg_advisory_xact_lock(%s)" for _ in kinds)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {calls}", [_alerts_key(k, agent_id) for k in kinds])


@lru_cache(maxsize=4)
def _lock_sql(vendor: str, kind: Kind) -> str:
    qn = connection.ops.quote_name
    table = qn((Agent if kind == "agent" else Platform)._meta.db_table)
    return f"SELECT {qn('id')} FROM {table} WHERE {qn('id')} = %s FOR UPDATE"  # noqa: S608


# ---------------------------------------------------------------------------------------
# Spend and holds of a scope: one statement for both scopes


@lru_cache(maxsize=16)
def _spend_sql(vendor: str, agent: bool, platform: bool, joined: bool = False) -> str:
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
    if joined:
        # To ride along another one-row statement (``find_persona_with_spend``): its FROM
        # gets these as CROSS JOINs, its SELECT list their columns after its own.
        return " ".join(f"CROSS JOIN {part}" for part in parts)
    return f"SELECT * FROM {', '.join(parts)}"  # noqa: S608


def _scope_aliases(agent: bool, platform: bool) -> str:
    """The columns of ``_spend_sql(..., joined=True)``, in the standalone order."""
    aliases = (["a", "ah"] if agent else []) + (["t", "th"] if platform else [])
    return ", ".join(f"{alias}.*" for alias in aliases)


def _spend_params(w: Windows, agent_id: str | None, now: dt.datetime) -> list[Any]:
    out = list(_window_params(connection.vendor, w))
    if agent_id is not None:
        out.append(agent_id)
    held: list[Any] = []
    if agent_id is not None:
        held.append(agent_id)
    held += [Hold.State.ACTIVE, connection.ops.adapt_datetimefield_value(now)]
    return out + held


@lru_cache(maxsize=64)
def _window_params(vendor: str, w: Windows) -> tuple[Any, ...]:
    """The placeholders' values a scope's windows give ``_spend_sql``: the same all day
    long, so adapted once per zone and day rather than on every check."""
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
    return (*columns, *params)


def _usage_params(
    agent_id: str, agent: ScopeBudget | None, platform: ScopeBudget | None, now: dt.datetime
) -> list[Any]:
    params: list[Any] = []
    if agent is not None:
        params += _spend_params(windows_at(agent.timezone, now), agent_id, now)
    if platform is not None:
        params += _spend_params(windows_at(platform.timezone, now), None, now)
    return params


def _usage_of_values(
    values: Sequence[Any], agent: ScopeBudget | None, platform: ScopeBudget | None
) -> tuple[rules.Usage | None, rules.Usage | None]:
    ints = [int(v) for v in values]
    found: list[rules.Usage | None] = []
    for wanted in (agent, platform):
        if wanted is None:
            found.append(None)
            continue
        ds, dt_, ms, mt, ls, lt, hn, ht = ints[:8]
        ints = ints[8:]
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
    params = _usage_params(agent_id, agent, platform, now)
    with connection.cursor() as cursor:
        cursor.execute(
            _spend_sql(connection.vendor, agent is not None, platform is not None), params
        )
        values = cursor.fetchone()
    return _usage_of_values(values, agent, platform)


@dataclass(frozen=True)
class UsageRead:
    """The agent's and the platform's part of a check's one statement: CROSS JOINs and
    their columns for another one-row query (``counters.find_persona_with_spend``), and
    how to read them back. Built only for scopes whose spend matters (a window cap)."""

    agent_id: str
    agent: ScopeBudget | None
    platform: ScopeBudget | None
    joins: str
    columns: str
    params: list[Any]

    def usage(self, values: Sequence[Any]) -> tuple[rules.Usage | None, rules.Usage | None]:
        return _usage_of_values(values, self.agent, self.platform)


def usage_read(
    agent_id: str, agent: ScopeBudget, platform: ScopeBudget, now: dt.datetime
) -> UsageRead | None:
    """What ``check_scopes`` would read for these scopes, to be folded into the persona's
    statement; ``None`` when neither scope has a window cap (nothing to read) or on
    PostgreSQL (then ``check_scopes`` reads it in a statement of its own)."""
    if connection.vendor != "sqlite":
        # PostgreSQL plans every statement afresh, and planning the persona's read with
        # these joined (8 relations: an exhaustive join search) took 2.6-3.1 ms against
        # 0.5 + 1.4 ms for the two statements apart, more than a round trip saves
        # (docs/benchmarks.md). SQLite's plans are cached per statement text.
        return None
    wanted_agent = agent if agent.has_window_caps else None
    wanted_platform = platform if platform.has_window_caps else None
    if wanted_agent is None and wanted_platform is None:
        return None
    a, t = wanted_agent is not None, wanted_platform is not None
    return UsageRead(
        agent_id=agent_id,
        agent=wanted_agent,
        platform=wanted_platform,
        joins=_spend_sql(connection.vendor, a, t, joined=True),
        columns=_scope_aliases(a, t),
        params=_usage_params(agent_id, wanted_agent, wanted_platform, now),
    )


# ---------------------------------------------------------------------------------------
# After a charge: the agent's and the platform's statuses, for their alerts


def statuses_after_charge(
    agent_id: str,
    agent: ScopeBudget,
    platform: ScopeBudget,
    now: dt.datetime,
    *,
    settled: Callable[[Kind, Windows, tuple[str, ...]], bool] | None = None,
) -> list[tuple[rules.ScopeStatus, Windows]]:
    """The statuses the rules give the agent and the platform once this transaction's
    charge is counted, each with its windows (cut in its own zone); only for a scope that
    caps a USD window, so without one this costs no statement.

    ``settled(kind, windows, capped)`` may say a scope has nothing left to announce (both
    thresholds of every capped window already written): it is then left out, lock and
    read included.

    Call it after the charge's counters are bumped. The lock is what makes a threshold
    alert certain under concurrency: without it, two charges of two personas (each under
    its own persona lock) could each read the scope's sum without the other's uncommitted
    spend, both see "ok", and together cross the line with no alert. Taken after the bump
    and held to the commit, the last of them to take it reads after the others committed
    (PostgreSQL's READ COMMITTED gives each statement a fresh snapshot) and sees the sum of
    all. It covers only this read and the event inserts, so charges of one scope queue
    for about two statements and a commit, not for the whole charge (docs/benchmarks.md).
    """
    asked = [
        (budget, windows_at(budget.timezone, now), _capped_usd_windows(budget))
        for budget in (agent, platform)
        if budget.alerts
    ]
    if settled is not None:
        # A scope whose every capped window has both its alerts written already (this
        # process saw them commit) has nothing left to announce in these windows.
        asked = [a for a in asked if not settled(a[0].kind, a[1], a[2])]
    if not asked:
        return []
    _lock_alerts(agent_id, [budget.kind for budget, _, _ in asked])
    spent = iter(_usd_spent(agent_id, [(b.kind, w, names) for b, w, names in asked]))
    found = []
    for budget, w, names in asked:
        sums = {name: next(spent) for name in names}
        # Only the USD windows the alerts are about: the token caps are left out, so their
        # windows read "none" rather than a status of a spend this read did not sum.
        caps = dataclasses.replace(
            budget.caps, daily_tokens=None, monthly_tokens=None, lifetime_tokens=None
        )
        usage = rules.Usage(**sums)
        found.append((rules.scope_status(rules.Scope(budget.kind, caps, usage)), w))
    return found


_COUNTER_WINDOWS = {"daily": "day", "monthly": "month", "lifetime": "lifetime"}


def _capped_usd_windows(budget: ScopeBudget) -> tuple[str, ...]:
    spec = budget.spec
    caps = {
        "daily": spec.daily_nanos,
        "monthly": spec.monthly_nanos,
        "lifetime": spec.lifetime_nanos,
    }
    return tuple(name for name, cap in caps.items() if cap is not None)


@lru_cache(maxsize=64)
def _usd_spent_sql(vendor: str, columns: tuple[tuple[str, str], ...]) -> str:
    """One row: per (scope kind, rule window) asked, the USD its personas spent in that
    window, from their counters (a missing counter: an indexed SUM of that persona's
    charges). Leaner than ``_spend_sql`` (no tokens, no holds, only capped windows): a
    charge runs it for the alerts of the scopes above the persona."""
    qn = connection.ops.quote_name
    persona_t = qn(Persona._meta.db_table)
    counter_t = qn(SpendCounter._meta.db_table)
    charge_t = qn(Charge._meta.db_table)
    pid = f"p.{qn('id')}"
    parts = []
    for kind, window in columns:
        where = f"c.{qn('persona_id')} = {pid}"
        if window != "lifetime":
            where += f" AND c.{qn('ts')} >= %s AND c.{qn('ts')} < %s"
        fallback = (
            f"(SELECT COALESCE(SUM(c.{qn('cost_nanos')}), 0) FROM {charge_t} c WHERE {where})"  # noqa: S608
        )
        join = (
            f"LEFT JOIN {counter_t} x ON x.{qn('persona_id')} = {pid} "
            f"AND x.{qn('window')} = %s AND x.{qn('tz')} = %s AND x.{qn('start')} = %s"
        )
        scoped = f"WHERE p.{qn('agent_id')} = %s" if kind == "agent" else ""
        parts.append(
            f"(SELECT COALESCE(SUM(COALESCE(x.{qn('spent_nanos')}, {fallback})), 0) "  # noqa: S608
            f"FROM {persona_t} p {join} {scoped})"
        )
    return f"SELECT {', '.join(parts)}"


def _usd_spent(agent_id: str, asked: list[tuple[str, Windows, tuple[str, ...]]]) -> list[int]:
    """The sums of ``_usd_spent_sql``, in the order asked."""
    ops = connection.ops
    columns: list[tuple[str, str]] = []
    params: list[Any] = []
    for kind, w, names in asked:
        keys = {key[0]: key for key in _keys(w)}
        spans = {"day": (w.day_begin, w.day_end), "month": (w.month_begin, w.month_end)}
        for name in names:
            window = _COUNTER_WINDOWS[name]
            columns.append((kind, window))
            # In the order the placeholders appear: the fallback's range, the join, WHERE.
            span = spans.get(window)
            if span is not None:
                params += [ops.adapt_datetimefield_value(t) for t in span]
            counter_window, tz, start = keys[window]
            params += [str(counter_window), tz, ops.adapt_datefield_value(start)]
            if kind == "agent":
                params.append(agent_id)
    with connection.cursor() as cursor:
        cursor.execute(_usd_spent_sql(connection.vendor, tuple(columns)), params)
        return [int(v) for v in cursor.fetchone()]
