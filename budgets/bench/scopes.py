"""Caps above the persona, and a run: what the bench rows of the scopes and runs measure.

The agent's and the platform's caps are written and removed through the one writer of
those files (``write_scope_budget``), as an operator's PUT would; the API and the
services pick the change up by the files' signatures, in this process and in every
gunicorn worker. The platform's caps apply to every persona, so "persona caps only" and
"caps at three scopes" cannot be measured side by side at the same instant: they are
measured in alternating blocks, the caps switched between blocks (see ``inprocess`` and
``http``).
"""

from __future__ import annotations

import dataclasses

from budgets.bench.ledger import BENCH_BUDGET
from budgets.runs.services import RunBudget, run_create
from hal0.money import to_nanos
from personas.services import find_persona
from personas.services.scopes import PLATFORM, agent_scope, write_scope_budget
from personas.toml_store import BudgetSpec

# The persona's caps at the agent and the platform too, plus a token cap, all far above
# what the bench spends: no measured call is refused.
SCOPE_BUDGET = dataclasses.replace(BENCH_BUDGET, daily_tokens=10**12)
NO_CAPS = BudgetSpec()
RUN_ID = "bench-run"
ACTOR = "bench"


def set_scope_caps(agent_id: str, *, on: bool) -> None:
    """Caps at the agent and the platform (``on``), or an empty budget block at both."""
    spec = SCOPE_BUDGET if on else NO_CAPS
    for scope in (agent_scope(agent_id), PLATFORM):
        write_scope_budget(scope, spec, actor=ACTOR, via="cli")


def setup_run(agent_id: str, persona_id: str) -> str:
    """A run on ``persona_id`` with a USD and a token budget no bench call reaches; its id."""
    persona = find_persona(agent_id, persona_id)
    budget = RunBudget(usd_nanos=to_nanos(100_000_000), tokens=10**12)
    run_create(persona=persona, run_id=RUN_ID, label="bench", budget=budget, actor=ACTOR)
    return RUN_ID
