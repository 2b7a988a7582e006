"""The scan baseline: a check that re-reads the persona's JSONL ledger every time.

This is what a design that keeps its ledger only in a file must do (hal0 does): there is
no counter to read, so each check opens ``spend.jsonl``, parses every line and sums the
costs inside the current day, the current month and the lifetime. It gets the same caps,
the same windows (the budget's timezone) and the same rules as the real check; only
where the spend comes from differs, so the ratio measures exactly that.

It is written to be fair, not slow: one pass, the standard library's C JSON parser and
``datetime.fromisoformat``, no Decimal.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from budgets.ledger.mirror import mirror_path
from budgets.rules import Verdict
from budgets.services.budget import evaluate
from budgets.services.counters import WindowSpend
from budgets.services.windows import Windows, windows_at
from personas.models import Persona
from personas.toml_store import budget_spec_from_persona


def scan_window_spend(path: Path, w: Windows) -> WindowSpend:
    """Sum the costs of every line of ``path`` inside the day, the month and the lifetime."""
    day = month = lifetime = 0
    day_begin, day_end = w.day_begin, w.day_end
    month_begin, month_end = w.month_begin, w.month_end
    parse = json.loads
    when = dt.datetime.fromisoformat
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return WindowSpend(day=0, month=0, lifetime=0)
    with fh:
        for line in fh:
            try:
                obj = parse(line)
                cost = obj["cost_usd"]
                ts = when(obj["ts"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn or foreign line: a file-only reader can only skip it
            if cost is None:
                continue  # never reported: unknown, not zero
            # The mirror writes exact decimal amounts of at most 9 places; a float that
            # holds one and scaled by 1e9 rounds back to the exact nano-USD.
            nanos = round(cost * 1e9)
            lifetime += nanos
            if month_begin <= ts < month_end:
                month += nanos
                if day_begin <= ts < day_end:
                    day += nanos
    return WindowSpend(day=day, month=month, lifetime=lifetime)


def scan_check(persona: Persona, estimate_nanos: int, now: dt.datetime | None = None) -> Verdict:
    """The check decision, with the spend re-read from the persona's mirror file."""
    now = now or dt.datetime.now(dt.UTC)
    spec = budget_spec_from_persona(persona)
    w = windows_at(persona.effective_timezone, now)
    spend = scan_window_spend(mirror_path(persona.agent_id, persona.slug), w)
    # A file-only design has no holds.
    return evaluate(spec, spend, 0, estimate_nanos)
