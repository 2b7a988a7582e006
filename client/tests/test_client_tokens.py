"""Reserving and charging by tokens: the service prices them (prices.toml over the catalogue).

The agent sends no dollar amount at all: the guard reserves ``input_tokens +
max_output_tokens`` at the model's price, and the charge sends the response's token counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from client_support import LiveService, StandInUpstream
from openai import OpenAI

from hal0_client import ApiError, SpendClient

Persona = Callable[..., str]
ClientFor = Callable[..., SpendClient]

# 2 USD per million input tokens, 8 per million output tokens, 1 per million cached.
PRICES = """
[[price]]
model = "standin-model"
surface = "local"
input_per_mtok_usd = 2
output_per_mtok_usd = 8
cache_read_per_mtok_usd = 1
"""


@pytest.fixture
def priced(service: LiveService) -> Iterator[None]:
    path = service.data_dir / "prices.toml"
    path.write_text(PRICES)
    try:
        yield
    finally:
        path.unlink()


@pytest.fixture
def upstream() -> Iterator[StandInUpstream]:
    # Reports tokens only (no cost), as a local model server does.
    stand_in = StandInUpstream(prompt_tokens=1000, completion_tokens=250, cached_tokens=400)
    try:
        yield stand_in
    finally:
        stand_in.close()


def test_a_guard_by_tokens_reserves_the_worst_case_and_charges_the_tokens(
    service: LiveService,
    persona: Persona,
    client_for: ClientFor,
    upstream: StandInUpstream,
    priced: None,
) -> None:
    pid = persona("daily_usd = 1.0")
    llm = OpenAI(base_url=upstream.base_url, api_key="sk-stand-in", max_retries=0)

    guard = client_for(pid).guard(
        surface="local", model="standin-model", input_tokens=1000, max_output_tokens=500
    )
    with guard as call:
        # Worst case: 1000 x 2 + 500 x 8 = 6000 USD per million = 0.006 USD.
        assert call.check is not None
        assert call.check.estimate_usd == Decimal("0.006")
        assert call.check.estimate_source == "override"
        assert call.check.hold is not None
        assert call.check.hold.amount_usd == Decimal("0.006")
        call.record(
            llm.chat.completions.create(
                model="standin-model", messages=[{"role": "user", "content": "hi"}]
            )
        )

    # Actual: 600 uncached x 2 + 400 cached x 1 + 250 x 8 = 3600 USD per million.
    assert call.charge is not None
    assert call.charge.row.cost_usd == Decimal("0.0036")
    assert call.charge.row.cost_source == "override"
    assert service.charges(pid) == [(call.request_id, 3_600_000, 1000, 250, call.hold_id)]


def test_a_model_the_service_cannot_price_is_refused_before_the_call(
    persona: Persona, client_for: ClientFor, upstream: StandInUpstream
) -> None:
    guard = client_for(persona("")).guard(
        surface="local", model="nobody-prices-this", input_tokens=10, max_output_tokens=10
    )
    with pytest.raises(ApiError) as unknown, guard:
        pass
    assert (unknown.value.status, unknown.value.code) == (400, "price.unknown")
    assert upstream.requests == []
