"""End to end: the real ``openai`` SDK calls a local stand-in upstream inside a guard."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from client_support import LiveService, StandInUpstream, run_async
from openai import AsyncOpenAI, OpenAI

from hal0_client import AsyncSpendClient, SpendClient

Persona = Callable[..., str]
ClientFor = Callable[..., SpendClient]


@pytest.fixture
def upstream() -> Iterator[StandInUpstream]:
    # OpenRouter-style: it reports what the call cost, which the ledger must record as is.
    stand_in = StandInUpstream(prompt_tokens=1200, completion_tokens=345, cost=0.00123)
    try:
        yield stand_in
    finally:
        stand_in.close()


def test_a_chat_completion_inside_a_guard_lands_in_the_ledger(
    service: LiveService, persona: Persona, client_for: ClientFor, upstream: StandInUpstream
) -> None:
    pid = persona("daily_usd = 1.0")
    spend = client_for(pid)
    llm = OpenAI(base_url=upstream.base_url, api_key="sk-stand-in", max_retries=0)

    with spend.guard(surface="openrouter", model="openai/gpt-4o", estimated_cost_usd=0.01) as call:
        response = llm.chat.completions.create(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "Capital of France?"}]
        )
        call.record(response)

    assert response.choices[0].message.content == "Paris."
    assert len(upstream.requests) == 1
    assert service.charges(pid) == [(call.request_id, 1_230_000, 1200, 345, call.hold_id)]
    assert service.holds(pid)[0][1] == "settled"


def test_a_streamed_chat_completion_records_the_final_usage(
    service: LiveService, persona: Persona, client_for: ClientFor, upstream: StandInUpstream
) -> None:
    pid = persona("daily_usd = 1.0")
    llm = OpenAI(base_url=upstream.base_url, api_key="sk-stand-in", max_retries=0)

    with client_for(pid).guard(surface="openrouter", model="m", estimated_cost_usd=0.01) as call:
        stream = llm.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "Capital of France?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text = "".join(
            chunk.choices[0].delta.content or "" for chunk in call.stream(stream) if chunk.choices
        )

    assert text == "Paris."
    assert service.charges(pid) == [(call.request_id, 1_230_000, 1200, 345, call.hold_id)]


def test_the_async_sdk_inside_an_async_guard(
    service: LiveService, persona: Persona, upstream: StandInUpstream
) -> None:
    pid = persona("daily_usd = 1.0")
    spend = AsyncSpendClient(service.base_url, key=service.agent_key, agent="hermes", persona=pid)

    async def agent() -> tuple[str, str | None]:
        llm = AsyncOpenAI(base_url=upstream.base_url, api_key="sk-stand-in", max_retries=0)
        async with spend.guard(surface="openrouter", model="m", estimated_cost_usd=0.01) as call:
            stream = await llm.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "Capital of France?"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            async for _ in call.astream(stream):
                pass
        await llm.close()
        return call.request_id, call.hold_id

    request_id, hold_id = run_async(agent)
    assert service.charges(pid) == [(request_id, 1_230_000, 1200, 345, hold_id)]
