"""The bench persona and its ledger: charges spread over 90 days, loaded in bulk.

Rows go through :func:`budgets.ledger.writer.insert_charges`, the one charge writer, in
chunks: each chunk is one transaction whose JSONL mirror append runs after its commit,
so the mirror ends up holding every row (the scan baseline reads it).
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from budgets.ledger.writer import insert_charges
from budgets.models import Charge
from hal0.money import to_nanos
from personas.models import Persona
from personas.services import find_persona, provision_agent, write_budget
from personas.toml_store import BudgetSpec

AGENT_ID = "bench"
PERSONA_ID = "coder"  # one of the seed personas every provisioned agent has
# Measured charges go to the agent's other seed persona (same caps, same table), so the
# measured persona's ledger and mirror hold exactly the size being measured.
CHARGE_PERSONA_ID = "hermes"
DAYS = 90
CHUNK = 50_000
# What the charges were spent on: a spend report groups by these, so the ledger holds
# several (every hour of the 90 days has each pair at 1M charges).
MODELS = (
    "anthropic/claude-3.7-sonnet",
    "anthropic/claude-3.5-haiku",
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "google/gemini-2.0-flash",
    "llama-3.3-70b",
)
SURFACES = ("openrouter", "local")
# Caps on every window, high enough that no measured call is ever refused (a refusal is
# cheaper than an allow and would flatter the figures), in a zone that is not UTC so
# the day and month boundaries are really computed.
BENCH_BUDGET = BudgetSpec(
    daily_nanos=to_nanos(1_000_000),
    monthly_nanos=to_nanos(10_000_000),
    lifetime_nanos=to_nanos(100_000_000),
    per_call_nanos=to_nanos(10),
    hard_cap=True,
    warn_at=Decimal("0.8"),
    timezone="Europe/Berlin",
)


def setup_persona(agent_id: str = AGENT_ID, persona_id: str = PERSONA_ID) -> Persona:
    """Provision the bench agent and give its persona the bench caps (the one file writer)."""
    provision_agent(agent_id)
    persona = find_persona(agent_id, persona_id)
    return write_budget(persona, BENCH_BUDGET, actor="bench", via="cli")


def charge_rows(
    n: int, *, now: dt.datetime, rng: random.Random, prefix: str, days: int = DAYS
) -> list[dict[str, Any]]:
    """``n`` API-like charges at random instants of the ``days`` days before ``now``."""
    span = days * 86_400
    stamps = sorted(now - dt.timedelta(seconds=rng.uniform(0, span)) for _ in range(n))
    return [
        {
            "ts": ts,
            "surface": SURFACES[i % len(SURFACES)],
            "model": rng.choice(MODELS),
            # 0.000001 to 0.05 USD, a whole number of micro-dollars
            "cost_nanos": rng.randrange(1, 50_000) * 1_000,
            "request_id": f"{prefix}-{i}",
            "input_tokens": rng.randrange(100, 20_000),
            "output_tokens": rng.randrange(10, 2_000),
            "actor": "bench",
        }
        for i, ts in enumerate(stamps)
    ]


@dataclass(frozen=True)
class Growth:
    added: int
    total: int
    seconds: float


def _chunks(total: int, size: int) -> Iterator[int]:
    while total > 0:
        yield min(size, total)
        total -= size


def grow_ledger(
    persona: Persona,
    target: int,
    *,
    now: dt.datetime | None = None,
    seed: int = 0,
    chunk: int = CHUNK,
) -> Growth:
    """Add charges until the persona's ledger holds ``target`` rows (never removes any)."""
    now = now or dt.datetime.now(dt.UTC)
    have = Charge.objects.filter(persona=persona).count()
    missing = max(0, target - have)
    rng = random.Random(seed * 1_000_003 + have)  # noqa: S311 - synthetic data, not secrets
    tag = secrets.token_hex(4)
    started = time.perf_counter()
    done = 0
    for part, size in enumerate(_chunks(missing, chunk)):
        rows = charge_rows(size, now=now, rng=rng, prefix=f"bulk-{tag}-{part}")
        insert_charges(persona, rows, source=Charge.Source.BENCH)
        done += size
    return Growth(added=done, total=have + done, seconds=time.perf_counter() - started)
