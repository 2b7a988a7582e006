"""``spend.run(...)`` against the live service: a run's guards carry its id, its budget
stops the loop (``BudgetExceeded.scope == "run"``), an operator extends it, it closes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from client_support import LiveService

from hal0_client import ApiError, BudgetExceeded, SpendClient

Persona = Callable[..., str]
ClientFor = Callable[..., SpendClient]


def loop(spend_run: object, calls: list[int], n: int) -> None:
    """An agent loop that runs until the run's budget stops it."""
    guard = spend_run.guard  # type: ignore[attr-defined]
    while True:
        with guard(surface="local", model="m", estimated_cost_usd=Decimal("0.3")) as call:
            calls.append(n)
            call.record(cost_usd=Decimal("0.3"), input_tokens=10, output_tokens=5)


def test_a_loop_in_a_two_dollar_run_stops_at_two_dollars(
    service: LiveService, persona: Persona, client_for: ClientFor
) -> None:
    pid = persona("daily_usd = 100.0")
    spend = client_for(pid)
    run = spend.run(label="runaway", budget_usd=2)
    assert run.id.startswith("run_")
    assert run.info.state == "active"
    assert run.info.budget.usd == Decimal("2")

    calls: list[int] = []
    with pytest.raises(BudgetExceeded) as stopped:
        loop(run, calls, 0)
    assert stopped.value.scope == "run"
    assert stopped.value.limit == "run_usd"
    assert len(calls) == 6  # 6 x 0.30 = 1.80; a seventh would pass 2.00
    info = run.refresh()
    assert info.state == "needs_budget"
    assert info.spent.usd == Decimal("1.8")
    assert info.spent.tokens == 90
    assert [c["kind"] for c in info.checkpoints] == ["created", "exhausted"]


def test_threads_sharing_a_run_never_spend_past_its_budget(
    service: LiveService, persona: Persona, client_for: ClientFor
) -> None:
    pid = persona("")
    spend = client_for(pid)
    run = spend.run(budget_usd=2)
    calls: list[int] = []
    stops: list[str | None] = []

    def worker(n: int) -> None:
        try:
            loop(run, calls, n)
        except BudgetExceeded as exc:
            stops.append(exc.scope)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert stops == ["run"] * 6
    assert len(calls) == 6
    assert run.refresh().spent.usd == Decimal("1.8")


def test_an_operator_extends_the_run_and_the_loop_goes_on(
    service: LiveService, persona: Persona, client_for: ClientFor
) -> None:
    pid = persona("")
    agent = client_for(pid)
    run = agent.run(run_id="goal-1", budget_usd=Decimal("0.5"))
    with pytest.raises(BudgetExceeded):
        loop(run, [], 0)

    # The agent may not raise its own budget ...
    with pytest.raises(ApiError) as forbidden:
        run.extend(usd=1)
    assert forbidden.value.code == "auth.forbidden"
    # ... an operator may, and the same run goes on.
    operator = SpendClient(service.base_url, key=service.operator_key, agent="hermes", persona=pid)
    info = operator.get_run("goal-1").extend(usd=1)
    assert info.state == "active"
    assert info.budget.usd == Decimal("1.5")  # max(0.5, 0.3 used) + 1
    with run.guard(surface="local", model="m", estimated_cost_usd=Decimal("0.3")) as call:
        call.record(cost_usd=Decimal("0.3"))
    assert run.refresh().spent.usd == Decimal("0.6")


def test_creating_again_with_the_same_id_and_body_is_the_same_run(
    persona: Persona, client_for: ClientFor
) -> None:
    spend = client_for(persona(""))
    first = spend.run(run_id="job-9", label="nightly", budget_seconds=600)
    again = spend.run(run_id="job-9", label="nightly", budget_seconds=600)
    assert again.id == first.id == "job-9"
    assert again.info.created_at == first.info.created_at
    with pytest.raises(ApiError) as conflict:
        spend.run(run_id="job-9", label="nightly", budget_seconds=60)
    assert conflict.value.code == "run.conflict"


def test_a_closed_run_refuses_its_guards(persona: Persona, client_for: ClientFor) -> None:
    spend = client_for(persona(""))
    with (
        spend.run(budget_tokens=1000) as run,
        run.guard(surface="local", model="m", estimated_cost_usd=0.01) as call,
    ):
        call.record(cost_usd=0.01, input_tokens=100, output_tokens=20)
    assert run.info.state == "closed"
    assert run.info.spent.tokens == 120
    guard = run.guard(surface="local", model="m", estimated_cost_usd=0.01)
    with pytest.raises(ApiError) as closed:
        guard.open()
    assert closed.value.code == "run.closed"
