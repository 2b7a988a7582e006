"""The stop switch: ``paused = true`` in a budget block refuses every check at its scope.

Written through the one writer of persona files (so it is in the file, audited, and a
hand edit of the file does the same); the admin's pause/resume button and a PUT with
``paused`` both land here or in ``budget_put``.
"""

from __future__ import annotations

import dataclasses

from personas.models import Persona
from personas.services import resolve_persona, write_budget
from personas.toml_store import budget_spec_from_persona


def budget_pause(*, persona: Persona, paused: bool, actor: str, via: str) -> Persona:
    """Set or clear a persona's stop switch, keeping every other key of its block.

    Pausing a paused persona (or resuming a running one) writes and audits nothing.
    """
    current = resolve_persona(persona.agent, persona.slug)  # the file as it is now
    spec = dataclasses.replace(budget_spec_from_persona(current), paused=paused)
    return write_budget(current, spec, actor=actor, via=via)
