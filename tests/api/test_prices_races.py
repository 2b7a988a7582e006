"""The worst-case estimate under holds: parallel clients that send token counts only
never overspend a hard cap, as long as each call's real usage stays within the tokens it
checked with. Real threads, real connections, over HTTP; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections
from django.db.models import Sum
from rest_framework.test import APIClient

from budgets.models import Charge
from hal0.money import to_nanos
from personas.models import Persona

CLIENTS = 16
ROUNDS = 3
URL = "/api/agents/hermes/personas/racer/budget"
# Anthropic's list prices: a cache write ($3.75) is dearer than plain input ($3).
CALL = {"surface": "anthropic", "model": "claude-3-7-sonnet-latest"}
INPUT, MAX_OUTPUT = 10_000, 2_000
# The worst case of one call: 10,000 x $3.75 + 2,000 x $15 per million = 0.0675 USD.
WORST = 0.0675
CAP = 8 * WORST


def usage_of(round_: int, rng: random.Random) -> dict[str, int]:
    """What the real call used: never more than the tokens it was checked for."""
    if round_ == 0:
        # The dearest usage there is: every input token a cache write, every output token.
        return {"input_tokens": INPUT, "output_tokens": MAX_OUTPUT, "cache_write_tokens": INPUT}
    used_in = rng.randint(1, INPUT)
    written = rng.randint(0, used_in)
    return {
        "input_tokens": used_in,
        "output_tokens": rng.randint(0, MAX_OUTPUT),
        "cache_write_tokens": written,
        "cache_read_tokens": rng.randint(0, used_in - written),
    }


@pytest.mark.django_db(transaction=True)
def test_token_only_clients_with_holds_never_overspend_a_hard_cap(
    make_persona: Callable[..., Persona],
) -> None:
    persona = make_persona(persona_id="racer", budget_toml=f"daily_usd = {CAP}\n")
    allowed: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    # Every client checks, then every client charges: all reserved calls are in flight
    # at once, the case where an estimate that falls short would overspend.
    step = threading.Barrier(CLIENTS)

    def client(n: int) -> None:
        http = APIClient()
        rng = random.Random(n)
        try:
            for round_ in range(ROUNDS):
                step.wait()
                body = {**CALL, "input_tokens": INPUT, "max_output_tokens": MAX_OUTPUT}
                answer = http.post(f"{URL}/check", {**body, "reserve": True}, format="json").json()
                step.wait()
                if not answer["allowed"]:
                    continue
                allowed.append((round_, n))
                assert answer["estimate"] == {"usd": WORST, "source": "catalogue"}
                charge = {
                    **CALL,
                    **usage_of(round_, rng),
                    "request_id": f"c{n}-{round_}",
                    "hold_id": answer["hold"]["id"],
                }
                response = http.post(f"{URL}/charge", charge, format="json")
                assert response.status_code == 200, response.content
        except BaseException as exc:
            errors.append(exc)
            step.abort()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)

    assert errors == []
    charged: Any = Charge.objects.filter(persona=persona).aggregate(t=Sum("cost_nanos"))["t"]
    assert charged <= to_nanos(CAP)
    # The first round filled the cap exactly (8 calls at their worst case); the later
    # rounds spent what the cheaper real calls gave back, and no more.
    assert sum(1 for round_, _ in allowed if round_ == 0) == 8
    assert len(allowed) < CLIENTS * ROUNDS
    assert set(Charge.objects.values_list("cost_source", flat=True)) == {"catalogue"}
