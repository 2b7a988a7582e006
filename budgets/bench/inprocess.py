"""Latency of the budget services called in-process, the way the API views call them.

Each sample is what the API view calls: for a check, ``budget_check_by_id`` (one
``stat`` and, without a reserve, one query for the persona and its spend); for a charge,
``find_persona`` (one ``stat`` and one query) and ``budget_charge``; timed with
``perf_counter``. No HTTP, no middleware, no JSON.
"""

from __future__ import annotations

import datetime as dt
import itertools
import secrets
import time
from collections.abc import Callable
from decimal import Decimal

from budgets.bench.scan import scan_check
from budgets.reports.selectors import ReportQuery, spend_report
from budgets.services import budget_charge, budget_check_by_id, hold_release
from budgets.services.windows import zone
from hal0.money import to_nanos
from personas.services import find_persona

ESTIMATE = to_nanos(Decimal("0.01"))
COST = to_nanos(Decimal("0.004"))
ACTOR = "bench"
WARMUP = 20

_ids = itertools.count()


def _timed(
    step: Callable[[], object], samples: int, after: Callable[[object], None] | None = None
) -> list[float]:
    out: list[float] = []
    for i in range(WARMUP + samples):
        started = time.perf_counter()
        result = step()
        elapsed = time.perf_counter() - started
        if after is not None:
            after(result)  # untimed clean-up (releasing a hold)
        if i >= WARMUP:
            out.append(elapsed)
    return out


def check(agent_id: str, persona_id: str) -> dict[str, object]:
    return budget_check_by_id(
        agent_id=agent_id, persona_id=persona_id, estimate_nanos=ESTIMATE, actor=ACTOR
    )


def check_reserve(agent_id: str, persona_id: str) -> dict[str, object]:
    return budget_check_by_id(
        agent_id=agent_id,
        persona_id=persona_id,
        estimate_nanos=ESTIMATE,
        reserve=True,
        actor=ACTOR,
    )


def charge(agent_id: str, persona_id: str, tag: str) -> dict[str, object]:
    persona = find_persona(agent_id, persona_id)
    return budget_charge(
        persona=persona,
        surface="openrouter",
        model="anthropic/claude-3.7-sonnet",
        cost_nanos=COST,
        request_id=f"inproc-{tag}-{next(_ids)}",
        input_tokens=1200,
        output_tokens=300,
        actor=ACTOR,
    )


def report(tz: str) -> dict[str, object]:
    """The 90 days up to today grouped by day and model, over every persona (an operator's
    ``GET /api/spend`` without the HTTP round trip): the query and the JSON body."""
    today = dt.datetime.now(zone(tz)).date()
    query = ReportQuery(
        start=today - dt.timedelta(days=89), end=today, tz=tz, group_by=("day", "model")
    )
    return spend_report(query).as_json()


def measure(kind: str, agent_id: str, persona_id: str, samples: int) -> list[float]:
    """Seconds per call of ``kind``: ``check``, ``check_reserve``, ``charge``, ``report``
    (UTC days) or ``report_half_hour`` (Asia/Kolkata's days, +05:30)."""
    if kind == "report":
        return _timed(lambda: report("UTC"), samples)
    if kind == "report_half_hour":
        return _timed(lambda: report("Asia/Kolkata"), samples)
    if kind == "check":
        return _timed(lambda: check(agent_id, persona_id), samples)
    if kind == "check_reserve":

        def release(result: object) -> None:
            if not (isinstance(result, dict) and result.get("allowed")):
                raise RuntimeError(f"the bench check was refused: {result!r}")
            persona = find_persona(agent_id, persona_id)
            hold_release(persona=persona, hold_id=result["hold"]["id"], actor=ACTOR)

        return _timed(lambda: check_reserve(agent_id, persona_id), samples, release)
    if kind == "charge":
        tag = secrets.token_hex(4)
        return _timed(lambda: charge(agent_id, persona_id, tag), samples)
    raise ValueError(f"unknown kind {kind!r}")


def side_by_side(
    agent_id: str, persona_id: str, rounds: int, checks_per_round: int = 5
) -> tuple[list[float], list[float]]:
    """Our check and the scan baseline, alternating, so both see the same machine state.

    Each round is one scan and a few of our checks (each timed on its own): the first
    check after a scan runs with caches the scan has just flushed, the others as a check
    usually runs; the median shows the latter, as the scan's median shows a scan.
    """
    ours: list[float] = []
    scan: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        persona = find_persona(agent_id, persona_id)
        scan_check(persona, ESTIMATE)
        scan.append(time.perf_counter() - started)
        for _ in range(checks_per_round):
            started = time.perf_counter()
            check(agent_id, persona_id)
            ours.append(time.perf_counter() - started)
    return ours, scan
