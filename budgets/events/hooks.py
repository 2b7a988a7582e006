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
from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone

from budgets import rules
from budgets.events.emit import WindowReading, emit_blocked, emit_thresholds
from budgets.events.outbox import BUDGET_CHANGED, record_event
from budgets.monitoring import metrics
from budgets.services.counters import WindowSpend, window_spend
from budgets.services.windows import LIFETIME_START, Windows, windows_at
from personas.models import BudgetChange, Persona
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


def after_charge(
    *, persona: Persona, spec: BudgetSpec, w: Windows, after: WindowSpend, now: dt.datetime
) -> None:
    """Inside the charge's transaction, once its row is inserted: warn / exceeded events
    (and the charge counted for /metrics once it commits)."""
    emit_thresholds(persona_readings(persona, spec, w, after), now=now)
    transaction.on_commit(metrics.charge_recorded)


def after_refused_check(
    *, persona: Persona, spend: WindowSpend, limit: str | None, reason: str, now: dt.datetime
) -> None:
    """A check was refused: ``budget.blocked`` once per scope, window and window start."""
    if limit is not None and limit.startswith("run_"):
        return  # a run's own limit: run budgets write run.exhausted for it
    spec = budget_spec_from_persona(persona)
    w = windows_at(persona.effective_timezone, now)
    starts = _starts(w)
    caps = {
        "daily": spec.daily_nanos,
        "monthly": spec.monthly_nanos,
        "lifetime": spec.lifetime_nanos,
    }
    spent_in = {"daily": spend.day, "monthly": spend.month, "lifetime": spend.lifetime}
    if limit in starts:
        start, resets_at = starts[limit]
        cap, spent = caps[limit], spent_in[limit]
    else:  # per-call, paused (or another limit without a window): once a day
        start, resets_at = starts["daily"]
        cap, spent = spec.per_call_nanos if limit == "per_call" else None, spend.day
    reading = WindowReading(
        scope_kind="persona",
        agent_id=persona.agent_id,
        persona_id=persona.slug,
        window=limit or "",
        start=start,
        resets_at=resets_at,
        cap=cap,
        spent=spent,
        status="exceeded",
    )
    emit_blocked(reading, reason=reason, limit=limit or "", now=now)


def on_budget_change(sender: Any, instance: BudgetChange, created: bool, **_: Any) -> None:
    """``budget.changed`` for every audited cap change, in the writer's transaction; then
    warn / exceeded for windows the new caps put at or past a threshold."""
    if not created:
        return
    persona = instance.persona
    now = timezone.now()
    record_event(
        type=BUDGET_CHANGED,
        scope_kind="persona",
        agent_id=persona.agent_id,
        persona_id=persona.slug,
        message=(
            f"persona {persona.agent_id}/{persona.slug}: caps changed by {instance.actor} "
            f"(via {instance.get_via_display()})"
        ),
        data={
            "actor": instance.actor,
            "via": instance.via,
            "before": instance.before,
            "after": instance.after,
        },
        now=now,
    )
    spec = budget_spec_from_persona(persona)
    w = windows_at(persona.effective_timezone, now)
    emit_thresholds(persona_readings(persona, spec, w, window_spend(persona, w)), now=now)


def connect() -> None:
    post_save.connect(on_budget_change, sender=BudgetChange, dispatch_uid="hal0-budget-changed")
