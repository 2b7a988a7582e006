"""The stop switch: ``paused = true`` in a budget block refuses every check at its scope.

Written through the one writer of persona files (so it is in the file, audited, and a
hand edit of the file does the same); the admin's pause/resume button and a PUT with
``paused`` both land here or in ``budget_put``. Turning a switch on writes a
``budget.paused`` event, whatever the scope and however it was done.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.models.signals import post_save

from budgets.events import record_event
from personas.models import BudgetChange, Persona
from personas.services import resolve_persona, write_budget
from personas.toml_store import budget_spec_from_persona


def budget_pause(*, persona: Persona, paused: bool, actor: str, via: str) -> Persona:
    """Set or clear a persona's stop switch, keeping every other key of its block.

    Pausing a paused persona (or resuming a running one) writes and audits nothing.
    """
    current = resolve_persona(persona.agent, persona.slug)  # the file as it is now
    spec = dataclasses.replace(budget_spec_from_persona(current), paused=paused)
    return write_budget(current, spec, actor=actor, via=via)


def on_budget_change(sender: Any, instance: BudgetChange, created: bool, **_: Any) -> None:
    """``budget.paused`` when an audited change turns a stop switch on, at any scope and
    however it was made (admin, PUT, a hand edit of the file): in the writer's
    transaction, so the event and the change stand or fall together. Resuming is a
    ``budget.changed`` like any other change."""
    if not created:
        return
    before, after = instance.before or {}, instance.after or {}
    if not after.get("paused") or before.get("paused"):
        return
    persona = instance.persona
    agent_id = persona.agent_id if persona is not None else instance.agent_id or ""
    if instance.scope == BudgetChange.Scope.PERSONA and persona is not None:
        owner = f"persona {persona.agent_id}/{persona.slug}"
    elif instance.scope == BudgetChange.Scope.AGENT:
        owner = f"agent {agent_id}"
    else:
        owner = "the platform"
    record_event(
        type="budget.paused",
        scope_kind=str(instance.scope),
        agent_id=agent_id,
        persona_id=persona.slug if persona is not None else "",
        message=(
            f"{owner} paused by {instance.actor} (via {instance.get_via_display()}): "
            "every check there is refused until it is resumed"
        ),
        data={"actor": instance.actor, "via": instance.via, "paused": True},
    )


def connect() -> None:
    post_save.connect(on_budget_change, sender=BudgetChange, dispatch_uid="hal0-budget-paused")
