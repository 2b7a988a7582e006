"""The agent and platform scopes of a check: their caps, their spend, their locks.

Counters stay owned by the persona (``SpendCounter``): there is no agent or platform row
that every charge would update, so charges of different personas never queue behind one
hot row. An agent's spend is the sum of its personas' counters, the platform's the sum of
every persona's, read only when that scope has a window cap: inside the persona's own
statement on a check's hot path (``usage_read``), else in one statement for both.
Each scope's day and month are cut in its own timezone: the charge service keeps its
personas' counters in those zones too (``bump(..., zones=...)``). A persona without a
counter there (never charged in that window, a zone that just changed, counters dropped
by an import) is named by the statement, and its charges are summed by id apart
(``missing_spend``), so the sum is never short.
Holds belong to a persona; a scope's held amount is the sum of its personas' active holds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Literal

from django.conf import settings
from django.db import connection
from django.db.models import F, Q, Sum, Value
from django.db.models.functions import Coalesce

from budgets import rules
from budgets.models import Charge, Hold
from budgets.services.counters import ACTIVE_HOLD, _counter_joins, _keys, _rebuild
from budgets.services.windows import Windows, windows_at
from hal0.statements import fetch_one, prepared_statements, stamp_of
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

    # Derived once per budget (a budget is cached per file signature and read by every
    # check): computed again on each check they were a tenth of its extra time.
    @cached_property
    def caps(self) -> rules.Caps:
        return caps_of(self.spec)

    @cached_property
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

    @cached_property
    def needs_lock(self) -> bool:
        """Reserves under it must serialize: it can block on a window."""
        return self.spec.hard_cap and self.has_window_caps

    @cached_property
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
_PATHS: dict[tuple[str, ScopeFile], str] = {}


def _path_of(scope: ScopeFile) -> str:
    key = (os.fspath(settings.HAL0_DATA_DIR), scope)
    found = _PATHS.get(key)
    if found is None:
        found = str(scope.path)
        if len(_PATHS) >= _CACHE_MAX:
            _PATHS.clear()
        _PATHS[key] = found
    return found


def scope_budget(scope: ScopeFile) -> ScopeBudget:
    """The scope's caps: one ``os.stat`` while its file is unchanged, no query."""
    key = _path_of(scope)
    try:
        sig = signature(key)
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

# The counter joins' aliases, one per window: day, month, lifetime.
_ALIASES = ("d", "m", "l")
# Per window, the counter's columns summed and the suffix each sum is named by.
_SPEND_COLUMNS = (("spent_nanos", "s"), ("tokens", "t"))


def _lacking(vendor: str, aliases: Sequence[str]) -> str:
    """An aggregate over the scope's personas: ``id:aliases`` for each persona lacking one
    of these counters (``12:dm``: no day and no month counter), comma-separated; NULL when
    none lacks one. What those personas spent is then summed apart (``missing_spend``)."""
    return f"{_text_agg(vendor)}({_lacking_item(aliases)}, ',')"


def _text_agg(vendor: str) -> str:
    """The aggregate that joins texts with a separator."""
    return "STRING_AGG" if vendor == "postgresql" else "GROUP_CONCAT"


def _lacking_item(aliases: Sequence[str]) -> str:
    """``id:aliases`` for a persona row ``p`` lacking one of these counters, else NULL."""
    qn = connection.ops.quote_name
    flags = " || ".join(
        f"(CASE WHEN {a}.{qn('persona_id')} IS NULL THEN '{a}' ELSE '' END)" for a in aliases
    )
    lacking = " OR ".join(f"{a}.{qn('persona_id')} IS NULL" for a in aliases)
    return f"CASE WHEN {lacking} THEN CAST(p.{qn('id')} AS TEXT) || ':' || {flags} END"


def _counter_join(*aliases: str) -> str:
    """``counters._counter_joins`` for the scope's persona rows ``p``."""
    return _counter_joins(f"p.{connection.ops.quote_name('id')}", aliases)


@lru_cache(maxsize=16)
def _spend_sql(vendor: str, agent: bool, platform: bool, joined: bool = False) -> str:
    """One row: per wanted scope, day/month/lifetime spend and tokens summed from its
    personas' counters, the personas lacking a counter (``_lacking``), then held nanos and
    tokens. Only quoted constant identifiers are formatted in; values are parameters.

    No charge is read here: a persona without a counter in the scope's zone (never
    charged there, or its counters invalidated) is named, and its charges summed by id
    in a statement of their own. Summed inside this one, for any persona id, PostgreSQL
    planned a sequential scan of the whole ledger (docs/benchmarks.md)."""
    qn = connection.ops.quote_name
    persona_t = qn(Persona._meta.db_table)
    hold_t = qn(Hold._meta.db_table)

    def spend(filtered: bool) -> str:
        joins = _counter_join(*_ALIASES)
        sums = ", ".join(
            f"COALESCE(SUM({a}.{qn(column)}), 0) AS {a}{unit}"
            for a in _ALIASES
            for column, unit in _SPEND_COLUMNS
        )
        where = f"WHERE p.{qn('agent_id')} = %s" if filtered else ""
        return (
            f"(SELECT {sums}, {_lacking(vendor, _ALIASES)} AS miss "  # noqa: S608
            f"FROM {persona_t} p {joins} {where})"
        )

    def held(filtered: bool) -> str:
        active = f"h.{qn('state')} = {ACTIVE_HOLD} AND h.{qn('expires_at')} > %s"
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


@lru_cache(maxsize=4)
def _shared_sql(vendor: str, joined: bool) -> str:
    """``_spend_sql`` for both scopes when they cut their windows in the same zone: one
    aggregate over the rows of every persona's counters and of every active hold (a
    UNION ALL: one derived table, not one per pass), each row flagged ``mine`` when its
    persona is the agent's, so the agent's sums are picked out by that flag and the
    platform's take every row. The same columns in the same order as
    ``_spend_sql(vendor, True, True)``."""
    qn = connection.ops.quote_name
    persona_t = qn(Persona._meta.db_table)
    hold_t = qn(Hold._meta.db_table)
    mine = f"p.{qn('agent_id')} = %s AS mine"
    # Each counter column read, by the name the sums know it by (``ds``: day, spent).
    read = {f"{a}{unit}": f"{a}.{qn(column)}" for a in _ALIASES for column, unit in _SPEND_COLUMNS}
    cells = list(read)
    counter_rows = (
        f"SELECT {mine}, "
        + ", ".join(f"{column} AS {cell}" for cell, column in read.items())
        + f", {_lacking_item(_ALIASES)} AS miss, NULL AS hn, NULL AS ht "
        f"FROM {persona_t} p {_counter_join(*_ALIASES)}"
    )
    hold_rows = (
        f"SELECT {mine}, "
        + ", ".join(f"NULL AS {cell}" for cell in cells)
        + f", NULL AS miss, h.{qn('amount_nanos')} AS hn, h.{qn('amount_tokens')} AS ht "
        f"FROM {hold_t} h JOIN {persona_t} p ON p.{qn('id')} = h.{qn('persona_id')} "
        f"WHERE h.{qn('state')} = {ACTIVE_HOLD} AND h.{qn('expires_at')} > %s"
    )
    sums = []
    for scope, only in (("a", "x.mine"), ("t", "")):
        for cell in [*cells, "hn", "ht"]:
            value = f"CASE WHEN {only} THEN x.{cell} END" if only else f"x.{cell}"
            sums.append(f"COALESCE(SUM({value}), 0) AS {scope}_{cell}")
        value = f"CASE WHEN {only} THEN x.miss END" if only else "x.miss"
        sums.append(f"{_text_agg(vendor)}({value}, ',') AS {scope}_miss")
    rows = f"{counter_rows} UNION ALL {hold_rows}"
    derived = f"(SELECT {', '.join(sums)} FROM ({rows}) x) s"  # noqa: S608
    if joined:
        return f"CROSS JOIN {derived}"
    return f"SELECT {_shared_columns()} FROM {derived}"  # noqa: S608


@lru_cache(maxsize=1)
def _shared_columns() -> str:
    """``_shared_sql``'s columns in ``_spend_sql``'s order: the agent's, then the platform's."""
    out = []
    for scope in ("a", "t"):
        out += [f"s.{scope}_{a}{unit}" for a in _ALIASES for _, unit in _SPEND_COLUMNS]
        out += [f"s.{scope}_miss", f"s.{scope}_hn", f"s.{scope}_ht"]
    return ", ".join(out)


def _shared_params(vendor: str, agent_id: str, w: Windows, now: dt.datetime) -> list[Any]:
    """``_shared_sql``'s values in its placeholders' order: the counter rows' (the
    agent's id, the counter joins), then the hold rows' (the agent's id, the instant)."""
    return [agent_id, *_window_params(vendor, w), agent_id, stamp_of(now)]


def _scope_aliases(agent: bool, platform: bool) -> str:
    """The columns of ``_spend_sql(..., joined=True)``, in the standalone order."""
    aliases = (["a", "ah"] if agent else []) + (["t", "th"] if platform else [])
    return ", ".join(f"{alias}.*" for alias in aliases)


def _spend_params(vendor: str, w: Windows, agent_id: str | None, now: dt.datetime) -> list[Any]:
    """In the order of ``_spend_sql``'s placeholders for one scope: the counter joins, the
    agent's id (its personas), then the holds' (the agent's id again, the instant)."""
    joins = _window_params(vendor, w)
    if agent_id is None:
        return [*joins, stamp_of(now)]
    return [*joins, agent_id, agent_id, stamp_of(now)]


# Per process and zone: the counter joins' values for the windows last asked for. They
# are the same all day long (``windows_at`` hands out the same object until the day
# ends), so adapted once per zone and day rather than on every check.
_WINDOW_PARAMS: dict[tuple[str, str], tuple[Windows, tuple[Any, ...]]] = {}


def _window_params(vendor: str, w: Windows) -> tuple[Any, ...]:
    found = _WINDOW_PARAMS.get((vendor, w.tz))
    if found is not None and found[0] is w:
        return found[1]
    ops = connection.ops
    params: list[Any] = []
    for window, tz, start in _keys(w):
        params += [str(window), tz, ops.adapt_datefield_value(start)]
    if len(_WINDOW_PARAMS) >= _CACHE_MAX:
        _WINDOW_PARAMS.clear()
    _WINDOW_PARAMS[(vendor, w.tz)] = (w, tuple(params))
    return tuple(params)


def _shares(agent: ScopeBudget | None, platform: ScopeBudget | None) -> bool:
    """Whether both scopes are read and in one pass (same zone: the same counters)."""
    return agent is not None and platform is not None and agent.timezone == platform.timezone


def _usage_sql(
    vendor: str, agent: ScopeBudget | None, platform: ScopeBudget | None, joined: bool
) -> str:
    if _shares(agent, platform):
        return _shared_sql(vendor, joined)
    return _spend_sql(vendor, agent is not None, platform is not None, joined)


def _usage_params(
    vendor: str,
    agent_id: str,
    agent: ScopeBudget | None,
    platform: ScopeBudget | None,
    now: dt.datetime,
) -> list[Any]:
    if agent is not None and _shares(agent, platform):
        return _shared_params(vendor, agent_id, windows_at(agent.timezone, now), now)
    params: list[Any] = []
    if agent is not None:
        params += _spend_params(vendor, windows_at(agent.timezone, now), agent_id, now)
    if platform is not None:
        params += _spend_params(vendor, windows_at(platform.timezone, now), None, now)
    return params


def _parse_lacking(text: str | None) -> dict[str, set[int]]:
    """``_lacking``'s list as {alias: persona ids lacking that counter}."""
    found: dict[str, set[int]] = {}
    for item in (text or "").split(","):
        if not item:
            continue
        persona_id, aliases = item.split(":")
        for alias in aliases:
            found.setdefault(alias, set()).add(int(persona_id))
    return found


def missing_spend(lacking: dict[str, set[int]], w: Windows) -> dict[str, tuple[int, int]]:
    """What the personas lacking a counter spent in that counter's window, in nano-USD and
    tokens, per alias (``d``, ``m``, ``l``): one aggregate over their charges, by id (an
    index range per persona, whatever the ledger's statistics say of other personas).

    Read only: filling the counters in here would make a read a write, and a charge
    computing its alerts (``_usd_spent``) under its persona's lock would then wait for
    other personas' locks, which is how two charges deadlock."""
    spans = {"d": (w.day_begin, w.day_end), "m": (w.month_begin, w.month_end)}
    tokens = Coalesce(F("input_tokens"), Value(0)) + Coalesce(F("output_tokens"), Value(0))
    sums: dict[str, Any] = {}
    for alias, ids in lacking.items():
        where = Q(persona_id__in=sorted(ids))
        if alias in spans:
            begin, end = spans[alias]
            where &= Q(ts__gte=begin, ts__lt=end)
        sums[f"{alias}s"] = Sum("cost_nanos", filter=where)
        sums[f"{alias}t"] = Sum(tokens, filter=where)
    every = sorted(set().union(*lacking.values()))
    found = Charge.objects.filter(persona_id__in=every).aggregate(**sums)
    return {a: (int(found[f"{a}s"] or 0), int(found[f"{a}t"] or 0)) for a in lacking}


def fill_lacking(lacking: dict[str, set[int]], w: Windows) -> None:
    """Build the counters ``lacking`` names, each from its persona's charges, so the next
    check of the scope finds them all and sums nothing apart: a persona never charged in
    a window costs this once per window, not on every check.

    Only for a check's read (``UsageRead``), which holds no lock: each counter is built
    in a transaction of its own that waits, if need be, for a charge of that persona to
    commit (``counters._create``), so it can neither deadlock with charges nor count one
    twice. A reserve or a charge reads under its persona's lock, and building there would
    wait for other personas' locks while holding its own: they leave it to the checks."""
    keys = dict(zip(_ALIASES, _keys(w).items(), strict=True))
    for alias, ids in lacking.items():
        key, span = keys[alias]
        for persona_id in sorted(ids):
            _rebuild(persona_id, key, span)


# One scope's columns: day, month, lifetime spend and tokens, the lacking list, held.
_WIDTH = 9


def _usage_of_values(
    values: Sequence[Any],
    agent: ScopeBudget | None,
    platform: ScopeBudget | None,
    now: dt.datetime,
    *,
    fill: bool = False,
) -> tuple[rules.Usage | None, rules.Usage | None]:
    """The scopes' ``rules.Usage`` from their columns, with what personas lacking a
    counter spent; ``fill``: build those counters too (``fill_lacking``)."""
    found: list[rules.Usage | None] = []
    at = 0
    for wanted in (agent, platform):
        if wanted is None:
            found.append(None)
            continue
        row = values[at : at + _WIDTH]
        at += _WIDTH
        ds, dt_, ms, mt, ls, lt = map(int, row[:6])
        if row[6]:
            lacking = _parse_lacking(row[6])
            w = windows_at(wanted.timezone, now)
            more = missing_spend(lacking, w)
            if fill:
                fill_lacking(lacking, w)
            zero = (0, 0)
            ds, dt_ = ds + more.get("d", zero)[0], dt_ + more.get("d", zero)[1]
            ms, mt = ms + more.get("m", zero)[0], mt + more.get("m", zero)[1]
            ls, lt = ls + more.get("l", zero)[0], lt + more.get("l", zero)[1]
        found.append(
            rules.Usage(
                daily=ds,
                monthly=ms,
                lifetime=ls,
                daily_tokens=dt_,
                monthly_tokens=mt,
                lifetime_tokens=lt,
                held=int(row[7]),
                held_tokens=int(row[8]),
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
    vendor = connection.vendor
    params = _usage_params(vendor, agent_id, agent, platform, now)
    values = fetch_one(_usage_sql(vendor, agent, platform, False), params)
    assert values is not None  # aggregates only: always one row
    return _usage_of_values(values, agent, platform, now)


@dataclass(frozen=True)
class UsageRead:
    """The agent's and the platform's part of a check's one statement: CROSS JOINs and
    their columns for another one-row query (``counters.find_persona_with_spend``), and
    how to read them back. Built only for scopes whose spend matters (a window cap)."""

    agent_id: str
    agent: ScopeBudget | None
    platform: ScopeBudget | None
    now: dt.datetime
    joins: str
    columns: str
    params: list[Any]

    def usage(self, values: Sequence[Any]) -> tuple[rules.Usage | None, rules.Usage | None]:
        # A check's read, under no lock: it builds the counters it found missing.
        return _usage_of_values(values, self.agent, self.platform, self.now, fill=True)


def usage_read(
    agent_id: str, agent: ScopeBudget, platform: ScopeBudget, now: dt.datetime
) -> UsageRead | None:
    """What ``check_scopes`` would read for these scopes, to be folded into the persona's
    statement; ``None`` when neither scope has a window cap (nothing to read), or on
    PostgreSQL without prepared statements (then ``check_scopes`` reads it in a statement
    of its own: planned afresh on every execution, the persona's read with these joined
    took longer to plan than the two statements apart; docs/benchmarks.md)."""
    vendor = connection.vendor
    if vendor != "sqlite" and not prepared_statements(vendor):
        return None
    wanted_agent = agent if agent.has_window_caps else None
    wanted_platform = platform if platform.has_window_caps else None
    if wanted_agent is None and wanted_platform is None:
        return None
    a, t = wanted_agent is not None, wanted_platform is not None
    shared = _shares(wanted_agent, wanted_platform)
    return UsageRead(
        agent_id=agent_id,
        agent=wanted_agent,
        platform=wanted_platform,
        now=now,
        joins=_usage_sql(vendor, wanted_agent, wanted_platform, True),
        columns=_shared_columns() if shared else _scope_aliases(a, t),
        params=_usage_params(vendor, agent_id, wanted_agent, wanted_platform, now),
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
    """One row: per (scope kind, counter window) asked, the USD its personas spent in that
    window from their counters, and the personas lacking that counter (``_lacking``).
    Leaner than ``_spend_sql`` (no tokens, no holds, only capped windows): a charge runs
    it for the alerts of the scopes above the persona."""
    qn = connection.ops.quote_name
    persona_t = qn(Persona._meta.db_table)
    parts = []
    for at, (kind, _window) in enumerate(columns):
        scoped = f"WHERE p.{qn('agent_id')} = %s" if kind == "agent" else ""
        parts.append(
            f"(SELECT COALESCE(SUM(x.{qn('spent_nanos')}), 0) AS s, "  # noqa: S608
            f"{_lacking(vendor, ('x',))} AS miss "
            f"FROM {persona_t} p {_counter_join('x')} {scoped}) c{at}"
        )
    return f"SELECT * FROM {', '.join(parts)}"  # noqa: S608


def _usd_spent(agent_id: str, asked: list[tuple[str, Windows, tuple[str, ...]]]) -> list[int]:
    """The sums of ``_usd_spent_sql``, in the order asked, with what the personas lacking
    a counter spent (``missing_spend``)."""
    ops = connection.ops
    columns: list[tuple[str, str]] = []
    params: list[Any] = []
    for kind, w, names in asked:
        keys = {key[0]: key for key in _keys(w)}
        for name in names:
            window = _COUNTER_WINDOWS[name]
            columns.append((kind, window))
            counter_window, tz, start = keys[window]
            one = [str(counter_window), tz, ops.adapt_datefield_value(start)]
            if kind == "agent":
                one.append(agent_id)
            params += one
    values = fetch_one(_usd_spent_sql(connection.vendor, tuple(columns)), params)
    assert values is not None  # aggregates only: always one row
    sums: list[int] = []
    at = 0
    for _kind, w, names in asked:
        for name in names:
            spent, lacking = int(values[at]), _parse_lacking(values[at + 1])
            at += 2
            if lacking:
                # ``_lacking`` named them by the join's alias ``x``.
                alias = _COUNTER_WINDOWS[name][0]
                spent += missing_spend({alias: lacking["x"]}, w)[alias][0]
            sums.append(spent)
    return sums
