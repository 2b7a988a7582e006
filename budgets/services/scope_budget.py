"""The agent's and the platform's budget as the API shows and sets it, and the ``scopes``
object of a persona's GET.

``GET/PUT /api/agents/{a}/budget`` and ``GET/PUT /api/platform/budget`` answer the
persona budget's shape, with the spend summed over the scope's personas: the same sums a
check reads (``scopes.scope_usage``, counters kept in the scope's own timezone), so a GET
never disagrees with the check that follows it. Statuses come from ``budgets.rules``.
Writes go through ``write_scope_budget``, the one writer of ``agent.toml`` and
``platform.toml``; its audit row makes the ``budget.changed`` event (budgets.events.hooks).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any, TypedDict

from django.db import connection
from django.utils import timezone

from budgets import rules
from budgets.models import Charge, SpendCounter
from budgets.services.budget import _state
from budgets.services.counters import Held, WindowSpend, _keys, spend_and_held
from budgets.services.scopes import ScopeBudget, budgets_above, caps_of, scope_usage
from budgets.services.windows import Windows, windows_at
from hal0.money import usd_number
from personas.models import Persona
from personas.services import write_budget
from personas.services.scopes import (
    PLATFORM,
    ScopeFile,
    agent_scope,
    require_good_scope_budget,
    sync_scope,
    write_scope_budget,
)
from personas.toml_store import BudgetSpec, budget_spec_from_persona


class ScopeSummary(TypedDict):
    """One scope in a persona GET's ``scopes`` object."""

    budget: dict[str, Any]
    spend: dict[str, float | int]
    status: str


class ScopeBudgetState(TypedDict):
    """The GET shape of an agent's or the platform's budget."""

    budget: dict[str, Any]
    spend: dict[str, float | int]
    remaining: dict[str, float | int]
    held_usd: float
    held_tokens: int
    status: str
    resets_at: dict[str, str]
    unpriced_charges: dict[str, int]


def scope_file(kind: str, agent_id: str | None = None) -> ScopeFile:
    return agent_scope(agent_id or "") if kind == "agent" else PLATFORM


def _iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).isoformat()


def _spend(usage: rules.Usage) -> dict[str, float | int]:
    # hal0's three keys first, then the tokens of the same windows (input + output).
    return {
        "today_usd": usd_number(usage.daily),
        "mtd_usd": usd_number(usage.monthly),
        "lifetime_usd": usd_number(usage.lifetime),
        "today_tokens": usage.daily_tokens,
        "mtd_tokens": usage.monthly_tokens,
        "lifetime_tokens": usage.lifetime_tokens,
    }


def _remaining(status: rules.ScopeStatus) -> dict[str, float | int]:
    """max(0, cap - spent) per configured window, keyed like the cap it is under."""
    out: dict[str, float | int] = {}
    for ws in status.windows:
        if ws.remaining is None:
            continue
        if ws.unit == "usd":
            out[f"{ws.window}_usd"] = usd_number(ws.remaining)
        else:
            out[f"{ws.window}_tokens"] = ws.remaining
    return out


def _usage(kind: str, agent_id: str, budget: ScopeBudget, now: dt.datetime) -> rules.Usage:
    if kind == "agent":
        found = scope_usage(agent_id, budget, None, now)[0]
    else:
        found = scope_usage(agent_id, None, budget, now)[1]
    return found or rules.Usage()


@lru_cache(maxsize=8)
def _unpriced_sql(vendor: str, filtered: bool) -> str:
    """One row: charges of unknown cost today, this month and ever over the scope's
    personas. Only quoted constant identifiers are formatted in; values are parameters."""
    qn = connection.ops.quote_name
    persona_t = qn(Persona._meta.db_table)
    counter_t = qn(SpendCounter._meta.db_table)
    charge_t = qn(Charge._meta.db_table)
    pid = f"p.{qn('id')}"
    columns = []
    joins = []
    for alias, ranged in (("d", True), ("m", True), ("l", False)):
        joins.append(
            f"LEFT JOIN {counter_t} {alias} ON {alias}.{qn('persona_id')} = {pid} "
            f"AND {alias}.{qn('window')} = %s AND {alias}.{qn('tz')} = %s "
            f"AND {alias}.{qn('start')} = %s"
        )
        # A persona whose counter in this zone was never kept: count its charges (only
        # evaluated for it, COALESCE stops at the first non-NULL).
        where = f"c.{qn('persona_id')} = {pid} AND c.{qn('cost_nanos')} IS NULL"
        if ranged:
            where += f" AND c.{qn('ts')} >= %s AND c.{qn('ts')} < %s"
        count = f"(SELECT COUNT(*) FROM {charge_t} c WHERE {where})"  # noqa: S608
        columns.append(f"COALESCE({alias}.{qn('unpriced')}, {count}) AS {alias}u")
    scope = f"WHERE p.{qn('agent_id')} = %s" if filtered else ""
    inner = f"SELECT {', '.join(columns)} FROM {persona_t} p {' '.join(joins)} {scope}"  # noqa: S608
    return (
        "SELECT COALESCE(SUM(x.du), 0), COALESCE(SUM(x.mu), 0), COALESCE(SUM(x.lu), 0) "  # noqa: S608
        f"FROM ({inner}) x"
    )


def _unpriced(agent_id: str | None, w: Windows) -> dict[str, int]:
    """Charges of unknown cost per window over the scope's personas, in one statement.

    From each persona's counter in the scope's zone where it exists, else (a persona whose
    counter in that zone was never kept) from its charges: the rule the spend sums follow.
    """
    ops = connection.ops
    keys = _keys(w)
    params: list[Any] = []
    # Placeholders in the text's order: the columns' fallbacks, the joins, the WHERE.
    for span in keys.values():
        begin, end = span
        if begin is not None and end is not None:
            params += [ops.adapt_datetimefield_value(begin), ops.adapt_datetimefield_value(end)]
    for window, tz, start in keys:
        params += [str(window), tz, ops.adapt_datefield_value(start)]
    if agent_id is not None:
        params.append(agent_id)
    with connection.cursor() as cursor:
        cursor.execute(_unpriced_sql(connection.vendor, agent_id is not None), params)
        day, month, lifetime = (int(v) for v in cursor.fetchone())
    return {"today": day, "month": month, "lifetime": lifetime}


def scope_state(
    *, kind: str, agent_id: str | None = None, now: dt.datetime | None = None
) -> ScopeBudgetState:
    """The GET shape of an agent's (``kind="agent"``) or the platform's budget.

    The agent must exist (``resolve_agent`` first). 400 ``budget.malformed`` while the
    scope's file cannot be parsed (its last good caps stay in force for checks).
    """
    now = now or timezone.now()
    scope = scope_file(kind, agent_id)
    row = sync_scope(scope)
    require_good_scope_budget(scope, row)
    spec = budget_spec_from_persona(row)
    budget = ScopeBudget(
        kind=scope.kind, spec=spec, timezone=row.effective_timezone, load_error=row.load_error
    )
    usage = _usage(kind, agent_id or "", budget, now)
    status = rules.scope_status(rules.Scope(scope.kind, caps_of(spec), usage))
    w = windows_at(budget.timezone, now)
    return {
        "budget": spec.to_api(),
        "spend": _spend(usage),
        "remaining": _remaining(status),
        "held_usd": usd_number(usage.held),
        "held_tokens": usage.held_tokens,
        "status": status.status,
        "resets_at": {"daily": _iso(w.day_end), "monthly": _iso(w.month_end)},
        "unpriced_charges": _unpriced(agent_id if kind == "agent" else None, w),
    }


def scope_put(
    *, kind: str, agent_id: str | None = None, spec: BudgetSpec, actor: str
) -> ScopeBudgetState:
    """Replace an agent's or the platform's budget block (through the one writer of those
    files: atomic, comments kept, audited with ``via="api"``); the answer is the GET shape.
    """
    write_scope_budget(scope_file(kind, agent_id), spec, actor=actor, via="api")
    return scope_state(kind=kind, agent_id=agent_id)


def persona_budget_state(
    *, persona: Persona, with_platform: bool = True, now: dt.datetime | None = None
) -> dict[str, Any]:
    """A persona's GET: hal0's shape (``budget_state``) plus the ``scopes`` object.

    ``with_platform=False`` (an agent key, which may not read the platform's budget)
    leaves the platform out of ``scopes``: its spend is every agent's.
    """
    now = now or timezone.now()
    spec = budget_spec_from_persona(persona)
    w = windows_at(persona.effective_timezone, now)
    spend, held = spend_and_held(persona, w, now)
    state: dict[str, Any] = dict(_state(spec, w, spend, held))
    state["scopes"] = persona_scopes(persona, spend, held, now, with_platform=with_platform)
    return state


def persona_budget_put(*, persona: Persona, spec: BudgetSpec, actor: str) -> dict[str, Any]:
    """A persona's PUT: the one persona writer (``via="api"``), answered with its GET."""
    updated = write_budget(persona, spec, actor=actor, via="api")
    return persona_budget_state(persona=updated)


def persona_scopes(
    persona: Persona,
    spend: WindowSpend,
    held: Held,
    now: dt.datetime,
    *,
    with_platform: bool = True,
) -> dict[str, ScopeSummary]:
    """The ``scopes`` object of a persona's GET: caps, spend and status of the persona,
    its agent and (``with_platform``) the platform, each in its own windows (one statement
    for both above).

    ``spend``/``held`` are the persona's ``WindowSpend`` and ``Held`` as its GET read them.
    The agent and the platform show their last good caps (what checks enforce) even while
    their file is malformed; their own GET says so.
    """
    agent, platform = budgets_above(persona.agent_id)
    above = scope_usage(persona.agent_id, agent, platform if with_platform else None, now)
    spec = budget_spec_from_persona(persona)
    rows: list[tuple[rules.ScopeKind, BudgetSpec, rules.Usage]] = [
        (
            "persona",
            spec,
            rules.Usage(
                daily=spend.day,
                monthly=spend.month,
                lifetime=spend.lifetime,
                daily_tokens=spend.day_tokens,
                monthly_tokens=spend.month_tokens,
                lifetime_tokens=spend.lifetime_tokens,
                held=held.nanos,
                held_tokens=held.tokens,
            ),
        ),
        ("agent", agent.spec, above[0] or rules.Usage()),
    ]
    if with_platform:
        rows.append(("platform", platform.spec, above[1] or rules.Usage()))
    out: dict[str, ScopeSummary] = {}
    for kind, block, usage in rows:
        status = rules.scope_status(rules.Scope(kind, caps_of(block), usage))
        out[kind] = {"budget": block.to_api(), "spend": _spend(usage), "status": status.status}
    return out
