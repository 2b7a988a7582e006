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
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from budgets.bench.scan import scan_check
from budgets.bench.scopes import set_scope_caps
from budgets.prices import quote
from budgets.reports.selectors import ReportQuery, spend_report
from budgets.services import budget_charge, budget_check_by_id, hold_release
from budgets.services.windows import zone
from hal0.money import to_nanos
from personas.services import find_persona

ESTIMATE = to_nanos(Decimal("0.01"))
# The priced check's call: gpt-4o's worst case of these tokens is 0.011 USD, next to the
# plain check's 0.01 (docs/api.md, "Pricing").
PRICED_CALL = ("openai", "gpt-4o")
PRICED_TOKENS = (1200, 800)
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


def check(agent_id: str, persona_id: str, run_id: str | None = None) -> dict[str, object]:
    return budget_check_by_id(
        agent_id=agent_id,
        persona_id=persona_id,
        estimate_nanos=ESTIMATE,
        actor=ACTOR,
        run_id=run_id,
    )


def check_priced(agent_id: str, persona_id: str) -> dict[str, object]:
    """A check sent with tokens: what the view does, the price lookup included."""
    estimate = quote.token_estimate(
        model=PRICED_CALL[1],
        surface=PRICED_CALL[0],
        input_tokens=PRICED_TOKENS[0],
        max_output_tokens=PRICED_TOKENS[1],
        at=dt.datetime.now(dt.UTC),
    )
    return budget_check_by_id(
        agent_id=agent_id, persona_id=persona_id, estimate_nanos=estimate.nanos, actor=ACTOR
    )


def check_reserve(agent_id: str, persona_id: str) -> dict[str, object]:
    return budget_check_by_id(
        agent_id=agent_id,
        persona_id=persona_id,
        estimate_nanos=ESTIMATE,
        reserve=True,
        actor=ACTOR,
    )


def charge(
    agent_id: str, persona_id: str, tag: str, run_id: str | None = None
) -> dict[str, object]:
    persona = find_persona(agent_id, persona_id)
    return budget_charge(
        persona=persona,
        surface="openrouter",
        model="anthropic/claude-3.7-sonnet",
        cost_nanos=COST,
        request_id=f"inproc-{tag}-{next(_ids)}",
        input_tokens=1200,
        output_tokens=300,
        run_id=run_id,
        actor=ACTOR,
    )


def statements(step: Callable[[], object]) -> int:
    """How many statements one call sends to the database."""
    with CaptureQueriesContext(connection) as captured:
        step()
    return len(captured.captured_queries)


def scoped_blocks(
    agent_id: str, persona_id: str, charge_persona_id: str, samples: int, block: int = 50
) -> dict[str, Any]:
    """Check and charge with persona caps only and with caps at three scopes (persona,
    agent.toml, platform.toml), in alternating blocks of ``block`` calls, the agent's and
    the platform's caps written between blocks (``scopes.set_scope_caps``; they cannot
    be on for one call and off for the next). Seconds per call for ``check_persona``,
    ``check_scopes``, ``charge_persona``, ``charge_scopes``; and the statements one check
    sends in each case."""
    tag = secrets.token_hex(4)
    out: dict[str, Any] = {
        k: [] for k in ("check_persona", "check_scopes", "charge_persona", "charge_scopes")
    }
    on = False
    try:
        while len(out["check_persona"]) < samples or len(out["check_scopes"]) < samples:
            set_scope_caps(agent_id, on=on)
            which = "scopes" if on else "persona"
            for _ in range(5):  # the first calls read the files' new signatures
                check(agent_id, persona_id)
            out[f"statements_{which}"] = statements(lambda: check(agent_id, persona_id))
            take = min(block, samples - len(out[f"check_{which}"]))
            for _ in range(take):
                started = time.perf_counter()
                check(agent_id, persona_id)
                out[f"check_{which}"].append(time.perf_counter() - started)
                started = time.perf_counter()
                charge(agent_id, charge_persona_id, tag)
                out[f"charge_{which}"].append(time.perf_counter() - started)
            on = not on
    finally:
        set_scope_caps(agent_id, on=False)
    return out


def run_pairs(agent_id: str, persona_id: str, run_id: str, samples: int) -> dict[str, list[float]]:
    """Check and charge without and with ``run_id`` on one persona, alternating call by
    call: seconds per call for ``check``, ``check_run``, ``charge``, ``charge_run``."""
    tag = secrets.token_hex(4)
    steps: dict[str, Callable[[], object]] = {
        "check": lambda: check(agent_id, persona_id),
        "check_run": lambda: check(agent_id, persona_id, run_id),
        "charge": lambda: charge(agent_id, persona_id, tag),
        "charge_run": lambda: charge(agent_id, persona_id, tag, run_id),
    }
    out: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(WARMUP + samples):
        for name, step in steps.items():
            started = time.perf_counter()
            result = step()
            elapsed = time.perf_counter() - started
            if name.startswith("check") and not (isinstance(result, dict) and result["allowed"]):
                raise RuntimeError(f"the bench check was refused: {result!r}")
            if i >= WARMUP:
                out[name].append(elapsed)
    return out


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
    (UTC days), ``report_whole_hour`` (Europe/Berlin's, +01:00/+02:00) or
    ``report_half_hour`` (Asia/Kolkata's days, +05:30)."""
    if kind == "report":
        return _timed(lambda: report("UTC"), samples)
    if kind == "report_whole_hour":
        return _timed(lambda: report("Europe/Berlin"), samples)
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


def priced_pair(agent_id: str, persona_id: str, samples: int) -> tuple[list[float], list[float]]:
    """The plain check and the priced check, alternating: ``(plain, priced)`` seconds.

    Alternated so both see the same machine: on a shared, busy machine two series
    measured one after the other compare the load, not the checks.
    """
    plain: list[float] = []
    priced: list[float] = []
    for i in range(WARMUP + samples):
        for step, out in ((check, plain), (check_priced, priced)):
            started = time.perf_counter()
            step(agent_id, persona_id)
            elapsed = time.perf_counter() - started
            if i >= WARMUP:
                out.append(elapsed)
    return plain, priced
