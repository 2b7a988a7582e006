"""Usage extraction from the real SDKs' response objects, built from recorded JSON.

The ``openai`` and ``anthropic`` packages are dev dependencies of these tests only; the
client reads their objects (and the same JSON as plain dicts) without importing them.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseCompletedEvent
from pydantic import TypeAdapter

from hal0_client import StreamUsage, Usage, UsageNotFound, extract_usage, usage_from_stream

RECORDED = Path(__file__).parent / "recorded"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


OPENAI = Usage(
    input_tokens=1117,
    output_tokens=46,
    cache_read_tokens=1024,
    model="gpt-4o-2024-08-06",
)
OPENROUTER = Usage(
    input_tokens=5210,
    output_tokens=1630,
    cache_read_tokens=4096,
    cost_usd=Decimal("0.04008"),
    model="anthropic/claude-3.7-sonnet",
)
RESPONSES = Usage(
    input_tokens=2036,
    output_tokens=387,
    cache_read_tokens=1920,
    cache_write_tokens=0,
    model="gpt-4.1-2025-04-14",
)
# Anthropic counts the cached parts outside input_tokens: 12 + 2048 + 6144 in all.
ANTHROPIC = Usage(
    input_tokens=8204,
    output_tokens=9,
    cache_read_tokens=6144,
    cache_write_tokens=2048,
    model="claude-sonnet-4-20250514",
)

CASES = [
    ("openai_chat_completion.json", ChatCompletion, OPENAI),
    ("openrouter_chat_completion.json", ChatCompletion, OPENROUTER),
    ("openai_response.json", Response, RESPONSES),
    ("anthropic_message.json", Message, ANTHROPIC),
]


@pytest.mark.parametrize(("name", "model", "expected"), CASES, ids=[c[0] for c in CASES])
def test_usage_from_the_sdk_object(name: str, model: Any, expected: Usage) -> None:
    assert extract_usage(model.model_validate(recorded(name))) == expected


@pytest.mark.parametrize(("name", "model", "expected"), CASES, ids=[c[0] for c in CASES])
def test_usage_from_the_same_json_as_a_dict(name: str, model: Any, expected: Usage) -> None:
    assert extract_usage(recorded(name)) == expected


def test_the_client_never_imports_an_sdk() -> None:
    import hal0_client

    source = "\n".join(p.read_text() for p in Path(hal0_client.__file__).parent.glob("*.py"))
    assert "import openai" not in source
    assert "import anthropic" not in source
    assert "pydantic" not in source


def test_openai_stream_chunks_final_usage() -> None:
    chunks = [ChatCompletionChunk.model_validate(c) for c in recorded("openai_chat_stream.json")]
    assert usage_from_stream(chunks) == Usage(
        input_tokens=25, output_tokens=2, cache_read_tokens=0, model="gpt-4o-mini-2024-07-18"
    )
    # A chunk before the last has no usage.
    with pytest.raises(UsageNotFound):
        extract_usage(chunks[0])


def test_openai_stream_without_include_usage_says_how_to_fix_it() -> None:
    chunks = [ChatCompletionChunk.model_validate(c) for c in recorded("openai_chat_stream.json")]
    with pytest.raises(UsageNotFound, match="include_usage"):
        usage_from_stream(chunks[:-1])


def test_anthropic_stream_events_input_from_start_output_from_the_last_delta() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    events = [adapter.validate_python(e) for e in recorded("anthropic_stream.json")]
    expected = Usage(
        input_tokens=472 + 1500,
        output_tokens=89,
        cache_read_tokens=1500,
        cache_write_tokens=0,
        model="claude-sonnet-4-20250514",
    )
    assert usage_from_stream(events) == expected
    assert usage_from_stream(recorded("anthropic_stream.json")) == expected


def test_responses_stream_completed_event() -> None:
    event = ResponseCompletedEvent.model_validate(
        {
            "type": "response.completed",
            "response": recorded("openai_response.json"),
            "sequence_number": 9,
        }
    )
    tracker = StreamUsage()
    tracker.feed({"type": "response.output_text.delta", "delta": "In a", "sequence_number": 3})
    tracker.feed(event)
    assert tracker.usage == RESPONSES


def test_an_openrouter_cost_wins_and_odd_values_are_ignored() -> None:
    odd = {
        "usage": {
            "prompt_tokens": True,
            "completion_tokens": -3,
            "cost": "0.5",
        }
    }
    assert extract_usage(odd) == Usage()
    assert extract_usage({"usage": {"prompt_tokens": 3, "cost": float("nan")}}) == Usage(
        input_tokens=3
    )


def test_an_object_without_usage_is_refused() -> None:
    with pytest.raises(UsageNotFound):
        extract_usage({"choices": []})
    with pytest.raises(UsageNotFound):
        extract_usage(object())
