"""Where budget changes meet the outbox: the calls the budget services make, and the
receiver of personas' audit rows.

The budget services call ``after_charge`` (inside the charge's transaction) and
``after_refused_check``. A cap change is seen through Django's ``post_save`` of the
``BudgetChange`` audit row, which the one persona writer (API, admin, commands) and the
hand-edit sync create inside their transaction: personas never imports budgets, and the
event commits or rolls back with the change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone

from budgets import rules
from budgets.events.emit import WindowReading, emit_blocked, emit_thresholds, seen
from budgets.events.outbox import BUDGET_CHANGED, BUDGET_EXCEEDED, BUDGET_WARN, record_event
from budgets.monitoring import metrics
from budgets.services.counters import WindowSpend, window_spend
from budgets.services.windows import LIFETIME_START, Windows, windows_at
from personas.models import Agent, BudgetChange, Persona, Platform
from personas.toml_store import BudgetSpec, budget_spec_from_persona


def _starts(w: Windows) -> dict[str, tuple[dt.date, dt.datetime | None]]:
    """window -> (start, resets_at) for the windows current at ``w``."""
    return {
        "daily": (w.day, w.day_end),
        "monthly": (w.month, w.month_end),
        "lifetime": (LIFETIME_START, None),
    }


def scope_readings(
    status: rules.ScopeStatus, *, agent_id: str, persona_id: str, w: Windows
) -> list[WindowReading]:
    """The capped USD windows of one scope, with the statuses the rules gave them.

    ``agent_id``/``persona_id`` name the scope ("" where they do not apply: an agent scope
    has no persona, the platform neither); ``w`` cuts the windows' starts.
    """
    starts = _starts(w)
    return [
        WindowReading(
            scope_kind=status.kind,
            agent_id=agent_id,
            persona_id=persona_id,
            window=ws.window,
            start=starts[ws.window][0],
            resets_at=starts[ws.window][1],
            cap=ws.cap,
            spent=ws.spent,
            status=ws.status,
        )
        for ws in status.usd_windows()
        if ws.cap is not None
    ]


def persona_readings(
    persona: Persona, spec: BudgetSpec, w: Windows, spend: WindowSpend
) -> list[WindowReading]:
    from budgets.services.budget import persona_scope

    status = rules.scope_status(persona_scope(spec, spend, 0))
    return scope_readings(status, agent_id=persona.agent_id, persona_id=persona.slug, w=w)


def _names(kind: str, persona: Persona) -> tuple[str, str]:
    """(agent_id, persona_id) of a scope as events name it."""
    if kind == "persona":
        return persona.agent_id, persona.slug
    if kind == "agent":
        return persona.agent_id, ""
    return "", ""


def after_charge_statuses(
    *,
    persona: Persona,
    statuses: Sequence[tuple[rules.ScopeStatus, Windows]],
    now: dt.datetime,
) -> None:
    """Inside a charge's transaction: warn / exceeded for every scope the charge fed
    (persona, agent, platform), from the statuses the rules gave them after the charge,
    each with its windows (an agent's day is cut in the agent's zone)."""
    readings: list[WindowReading] = []
    for status, w in statuses:
        if status.kind == "run":
            continue  # run budgets announce themselves (run.exhausted)
        agent_id, persona_id = _names(status.kind, persona)
        readings += scope_readings(status, agent_id=agent_id, persona_id=persona_id, w=w)
    emit_thresholds(readings, now=now)
    transaction.on_commit(metrics.charge_recorded)


def after_charge(
    *,
    persona: Persona,
    spec: BudgetSpec,
    w: Windows,
    after: WindowSpend,
    now: dt.datetime,
    above: Sequence[tuple[rules.ScopeStatus, Windows]] = (),
) -> None:
    """``after_charge_statuses`` for the persona (its status computed here) and the
    scopes ``above`` it (the agent's and the platform's, as the charge service read them),
    and the charge counted for /metrics once it commits."""
    from budgets.services.budget import persona_scope

    status = rules.scope_status(persona_scope(spec, after, 0))
    after_charge_statuses(persona=persona, statuses=[(status, w), *above], now=now)


def announced(kind: str, agent_id: str, w: Windows, capped: tuple[str, ...]) -> bool:
    """Whether this process knows both ``budget.warn`` and ``budget.exceeded`` of every
    capped USD window of the agent (or the platform) at ``w`` are written: then a charge
    has nothing left to announce there and skips reading the scope (see
    ``scopes.statuses_after_charge``). Keys enter the memo only after their commit."""
    starts = _starts(w)
    name = agent_id if kind == "agent" else ""
    return all(
        (event_type, kind, name, "", window, starts[window][0]) in seen
        for window in capped
        for event_type in (BUDGET_WARN, BUDGET_EXCEEDED)
    )


def after_refused_check(
    *,
    persona: Persona,
    verdict: rules.Verdict,
    now: dt.datetime,
    zones: Mapping[str, str] | None = None,
) -> None:
    """A check was refused: ``budget.blocked`` for the scope and cap that refused it, once
    per scope, window and window start (per-call, paused and token limits: once a day).

    ``zones`` gives the agent's and the platform's timezone (kind -> zone), so their
    windows start where their caps do; a scope not named there uses the persona's."""
    if verdict.allowed or verdict.limit is None or verdict.scope in (None, "run"):
        return  # a run's own limit: run budgets write run.exhausted for it
    status = next((s for s in verdict.scopes if s.kind == verdict.scope), None)
    if status is None:
        return
    zone = (zones or {}).get(status.kind) or persona.effective_timezone
    starts = _starts(windows_at(zone, now))
    limit = verdict.limit
    cap: int | None = None
    spent: int | None = None
    data: dict[str, Any] = {"limit": limit}
    if limit in starts:
        ws = status.window(limit, "usd")
        start, resets_at = starts[limit]
        cap, spent = ws.cap, ws.spent
    elif limit.removesuffix("_tokens") in starts:
        ws = status.window(limit.removesuffix("_tokens"), "tokens")
        start, resets_at = starts[ws.window]
        data.update(cap_tokens=ws.cap, spent_tokens=ws.spent)
    else:  # per-call, paused
        start, resets_at = starts["daily"]
    agent_id, persona_id = _names(status.kind, persona)
    reading = WindowReading(
        scope_kind=status.kind,
        agent_id=agent_id,
        persona_id=persona_id,
        window=limit,
        start=start,
        resets_at=resets_at,
        cap=cap,
        spent=spent,
        status="exceeded",
    )
    emit_blocked(reading, reason=verdict.reason or "", data=data, now=now)


def on_budget_change(sender: Any, instance: BudgetChange, created: bool, **_: Any) -> None:
    """``budget.changed`` for every audited cap change (a persona's, an agent's or the
    platform's), in the writer's transaction; for a persona, then warn / exceeded for
    windows the new caps put at or past a threshold."""
    if not created:
        return
    persona = instance.persona
    agent_id = instance.agent_id or (persona.agent_id if persona is not None else "")
    if persona is not None:
        kind, persona_id, label = "persona", persona.slug, f"persona {agent_id}/{persona.slug}"
    elif agent_id:
        kind, persona_id, label = "agent", "", f"agent {agent_id}"
    else:
        kind, persona_id, label = "platform", "", "the platform"
    now = timezone.now()
    record_event(
        type=BUDGET_CHANGED,
        scope_kind=kind,
        agent_id=agent_id if kind != "platform" else "",
        persona_id=persona_id,
        message=f"{label}: caps changed by {instance.actor} (via {instance.get_via_display()})",
        data={
            "actor": instance.actor,
            "via": instance.via,
            "before": instance.before,
            "after": instance.after,
        },
        now=now,
    )
    if persona is not None:
        spec = budget_spec_from_persona(persona)
        w = windows_at(persona.effective_timezone, now)
        emit_thresholds(persona_readings(persona, spec, w, window_spend(persona, w)), now=now)
    else:
        _scope_thresholds(kind, agent_id, now)


def _scope_thresholds(kind: str, agent_id: str, now: dt.datetime) -> None:
    """After an agent's or the platform's caps changed: warn / exceeded for the windows
    the new caps put at or past a threshold, as a charge would (the same read, under the
    same lock), in the writer's transaction."""
    from budgets.services import scopes

    row: Agent | Platform | None
    if kind == "agent":
        row = Agent.objects.filter(pk=agent_id).first()
    else:
        row = Platform.objects.filter(pk=Platform.ID).first()
    if row is None:
        return
    changed = scopes.ScopeBudget(
        kind="agent" if kind == "agent" else "platform",
        spec=budget_spec_from_persona(row),
        timezone=row.effective_timezone,
        load_error=row.load_error,
    )
    uncapped = scopes.ScopeBudget(
        kind="platform" if kind == "agent" else "agent",
        spec=BudgetSpec(),
        timezone="UTC",
        load_error="",
    )
    pair = (changed, uncapped) if kind == "agent" else (uncapped, changed)
    readings: list[WindowReading] = []
    for status, w in scopes.statuses_after_charge(agent_id, *pair, now):
        name = agent_id if kind == "agent" else ""
        readings += scope_readings(status, agent_id=name, persona_id="", w=w)
    emit_thresholds(readings, now=now)


def connect() -> None:
    post_save.connect(on_budget_change, sender=BudgetChange, dispatch_uid="hal0-budget-changed")
