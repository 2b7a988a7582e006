"""Helpers shared by the ledger tests: personas and charges without going through HTTP."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

from django.test import TestCase

from budgets.ledger import mirror
from budgets.models import Charge
from personas.models import Agent, Persona

_counter = itertools.count(1)
T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def make_persona(agent_id: str = "hermes", slug: str = "coder") -> Persona:
    agent, _ = Agent.objects.get_or_create(id=agent_id)
    persona, _ = Persona.objects.get_or_create(agent=agent, slug=slug)
    return persona


def charge_rows(n: int, **overrides: Any) -> list[dict[str, Any]]:
    rows = []
    for _ in range(n):
        i = next(_counter)
        row: dict[str, Any] = {
            "ts": T0 + dt.timedelta(seconds=i),
            "surface": "openrouter",
            "model": "anthropic/claude-3.7-sonnet",
            "cost_nanos": 42_100_000 + i,
            "request_id": f"req-{i}",
            "input_tokens": 1000 + i,
            "output_tokens": None,
        }
        row.update(overrides)
        rows.append(row)
    return rows


def record(persona: Persona, n: int = 1, **overrides: Any) -> list[Charge]:
    """Record charges through the one writer; its after-commit mirror append runs too.

    Tests run inside a transaction that never commits, so the after-commit callbacks
    are captured and executed on the spot, as a real commit would.
    """
    from budgets.ledger.writer import insert_charges

    rows = charge_rows(n, **overrides)
    with TestCase.captureOnCommitCallbacks(execute=True):
        return insert_charges(persona, rows, source=Charge.Source.API)


def path_of(persona: Persona) -> Path:
    return mirror.mirror_path(persona.agent_id, persona.slug)
