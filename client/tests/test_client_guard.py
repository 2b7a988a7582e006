"""``spend.guard(...)`` against the live service: check + reserve, call, charge or release."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal

import pytest
from client_support import LiveService, run_async

from hal0_client import AsyncSpendClient, BudgetExceeded, SpendClient, SpendError

Persona = Callable[..., str]
ClientFor = Callable[..., SpendClient]


class Upstream:
    """Stands for the LLM call: counts how often the agent made it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, object]:
        self.calls += 1
        return {"usage": {"prompt_tokens": 1000, "completion_tokens": 200, "cost": 0.0421}}


def test_the_guard_reserves_then_charges_with_the_hold_under_one_request_id(
    service: LiveService, persona: Persona, client_for: ClientFor
) -> None:
    pid = persona("daily_usd = 1.0")
    spend = client_for(pid)
    upstream = Upstream()

    with spend.guard(surface="openrouter", model="openai/gpt-4o", estimated_cost_usd=0.05) as call:
        assert call.hold is not None
        assert call.hold.amount_usd == Decimal("0.05")
        assert spend.budget().held_usd == Decimal("0.05")
        call.record(upstream())

    assert upstream.calls == 1
    assert call.charge is not None
    assert call.charge.recorded is True
    assert call.charge.hold_settled is True
    assert call.charge.row.cost_usd == Decimal("0.0421")
    assert service.charges(pid) == [(call.request_id, 42_100_000, 1000, 200, call.hold_id)]
    assert service.holds(pid) == [(call.hold_id, "settled", call.request_id, 50_000_000)]
    after = spend.budget()
    assert after.held_usd == 0
    assert after.spend["today_usd"] == Decimal("0.0421")


def test_record_by_keywords(service: LiveService, persona: Persona, client_for: ClientFor) -> None:
    pid = persona("daily_usd = 1.0")
    with client_for(pid).guard(surface="local", model="llama", estimated_cost_usd=0.01) as call:
        call.record(cost_usd=Decimal("0.0005"), input_tokens=10, output_tokens=5)
    assert service.charges(pid) == [(call.request_id, 500_000, 10, 5, call.hold_id)]


def test_a_refused_check_raises_before_the_upstream_call(
    service: LiveService, persona: Persona, client_for: ClientFor
) -> None:
    pid = persona("daily_usd = 0.01")
    spend = client_for(pid)
    upstream = Upstream()

    guard = spend.guard(surface="openrouter", model="m", estimated_cost_usd=0.05)
    with pytest.raises(BudgetExceeded) as refused, guard as call:
        call.record(upstream())

    assert upstream.calls == 0
    error = refused.value
    assert error.limit == "daily"
    assert "daily cap" in error.reason
    assert error.scope in (None, "persona")  # a service without scopes does not say
    assert error.resets_at == spend.budget().resets_at["daily"]
    assert error.check.allowed is False
    assert service.holds(pid) == []
    assert service.charges(pid) == []


def test_a_refusal_by_a_cap_that_never_resets_has_no_resets_at(
    persona: Persona, client_for: ClientFor
) -> None:
    spend = client_for(persona("per_call_max_usd = 0.01"))
    with pytest.raises(BudgetExceeded) as refused:
        spend.guard(surface="s", model="m", estimated_cost_usd=0.05).open()
    assert refused.value.limit == "per_call"
    assert refused.value.resets_at is None


def test_an_exception_inside_the_block_releases_the_hold_and_propagates(
    service: LiveService, persona: Persona, client_for: ClientFor
) -> None:
    pid = persona("daily_usd = 1.0")
    spend = client_for(pid)

    guard = spend.guard(surface="s", model="m", estimated_cost_usd=0.5)
    with pytest.raises(TimeoutError, match="upstream timed out"), guard as call:
        raise TimeoutError("upstream timed out")

    assert service.holds(pid) == [(call.hold_id, "released", call.request_id, 500_000_000)]
    assert service.charges(pid) == []
    assert spend.budget().held_usd == 0


def test_a_recorded_call_is_charged_even_when_the_block_raises_afterwards(
    service: LiveService, persona: Persona, client_for: ClientFor
) -> None:
    pid = persona("daily_usd = 1.0")
    guard = client_for(pid).guard(surface="s", model="m", estimated_cost_usd=0.1)
    with pytest.raises(KeyError), guard as call:  # noqa: PT012
        call.record(cost_usd=0.02)
        raise KeyError("parsing the answer failed")
    assert [row[0] for row in service.charges(pid)] == [call.request_id]
    assert service.holds(pid)[0][1] == "settled"


def test_leaving_without_record_releases_the_hold_and_says_so(
    service: LiveService,
    persona: Persona,
    client_for: ClientFor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pid = persona("daily_usd = 1.0")
    guard = client_for(pid).guard(surface="s", model="m", estimated_cost_usd=0.1)
    with caplog.at_level(logging.WARNING, logger="hal0_client"), guard as call:
        pass
    assert service.holds(pid)[0][1] == "released"
    assert service.charges(pid) == []
    assert f"{call.request_id} ended without record()" in caplog.text


def test_record_refuses_a_response_without_usage_and_twice(
    persona: Persona, client_for: ClientFor
) -> None:
    with client_for(persona("")).guard(surface="s", model="m", estimated_cost_usd=0) as call:
        with pytest.raises(SpendError, match="no usage"):
            call.record({"choices": []})
        call.record(cost_usd=0)
        with pytest.raises(SpendError, match="already"):
            call.record(cost_usd=0)


def test_a_warn_only_cap_lets_the_call_go_and_logs_the_reason(
    service: LiveService,
    persona: Persona,
    client_for: ClientFor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pid = persona("daily_usd = 0.01\nhard_cap = false")
    guard = client_for(pid).guard(surface="s", model="m", estimated_cost_usd=0.05)
    with caplog.at_level(logging.WARNING, logger="hal0_client"), guard as call:
        call.record(cost_usd=0.05)
    assert call.check is not None
    assert call.check.decision == "warn"
    assert "daily cap" in caplog.text
    assert len(service.charges(pid)) == 1


def test_check_charge_release_and_budget_without_a_guard(
    service: LiveService, persona: Persona, client_for: ClientFor
) -> None:
    pid = persona("daily_usd = 2.0")
    spend = client_for(pid)

    plain = spend.check(0.5)
    assert (plain.allowed, plain.hold, plain.remaining_usd) == (True, None, {"daily": 2})

    held = spend.check(0.5, reserve=True)
    assert held.hold is not None
    released = spend.release(held.hold.id)
    assert released.state == "released"

    charged = spend.charge(surface="s", model="m", cost_usd=0.25, request_id="req_manual")
    assert charged.row.request_id == "req_manual"
    assert charged.budget.remaining["daily_usd"] == Decimal("1.75")
    # The same charge again is a replay: recorded once.
    spend.charge(surface="s", model="m", cost_usd=0.25, request_id="req_manual")
    assert len(service.charges(pid)) == 1

    budget = spend.budget()
    assert budget.caps == {"daily_usd": 2.0, "hard_cap": True}
    assert budget.status == "ok"
    assert set(budget.resets_at) == {"daily", "monthly"}


def test_the_async_client_guards_with_async_with(service: LiveService, persona: Persona) -> None:
    pid = persona("daily_usd = 0.1")
    spend = AsyncSpendClient(
        service.base_url, key=service.agent_key, agent="hermes", persona=pid, backoff_s=0.01
    )

    async def agent() -> tuple[str, str | None]:
        async with spend.guard(surface="s", model="m", estimated_cost_usd=0.05) as call:
            await asyncio.sleep(0)
            call.record(cost_usd=0.04, input_tokens=3, output_tokens=4)
        with pytest.raises(BudgetExceeded):
            async with spend.guard(surface="s", model="m", estimated_cost_usd=0.09):
                pass
        budget = await spend.budget()
        assert budget.spend["today_usd"] == Decimal("0.04")
        return call.request_id, call.hold_id

    request_id, hold_id = run_async(agent)
    assert service.charges(pid) == [(request_id, 40_000_000, 3, 4, hold_id)]
