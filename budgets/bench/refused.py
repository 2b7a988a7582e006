"""The refused-check tally's cost: a refused check timed with the tally on and off,
alternating (A/B in one process), so both see the same machine state.

Each sample is ``budget_check_by_id`` as the API view calls it, for a persona whose every
check is refused (a daily cap of zero), timed with ``perf_counter``. "on" includes the
in-memory count; the background thread writes the batches off the check path, as in
service (its writes are counted, not timed).
"""

from __future__ import annotations

import time
from typing import Any

from budgets.bench.inprocess import ACTOR, ESTIMATE
from budgets.reports import refused
from budgets.services import budget_check_by_id

AGENT = "bench-refused"
PERSONA = "looper"


def setup() -> None:
    """The bench agent and a persona with a daily cap of zero (idempotent)."""
    from personas.services import find_persona, parse_budget_body, provision_agent, write_budget

    provision_agent(AGENT)
    persona = find_persona(AGENT, "coder")
    write_budget(persona, parse_budget_body({"daily_usd": 0}), actor="bench", via="cli")


def pair(samples: int, warmup: int = 50) -> dict[str, Any]:
    on: list[float] = []
    off: list[float] = []
    for i in range(warmup + samples):
        for enabled, out in ((True, on), (False, off)):
            refused.ENABLED = enabled
            started = time.perf_counter()
            answer = budget_check_by_id(
                agent_id=AGENT, persona_id="coder", estimate_nanos=ESTIMATE, actor=ACTOR
            )
            elapsed = time.perf_counter() - started
            if answer["allowed"]:
                raise RuntimeError(f"the bench check was allowed: {answer!r}")
            if i >= warmup:
                out.append(elapsed)
    refused.ENABLED = True
    written = refused.flush()
    return {"on": on, "off": off, "keys_left_to_write": written}
