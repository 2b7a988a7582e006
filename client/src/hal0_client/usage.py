"""Usage (tokens, and a reported cost) from the response objects agents really get.

Duck-typed: works on the official SDKs' objects (``openai``, ``anthropic``) and on their
plain-dict JSON alike, without importing either SDK.

- OpenAI chat completions (and OpenRouter, which speaks it): ``usage.prompt_tokens``,
  ``usage.completion_tokens``, ``usage.prompt_tokens_details.cached_tokens``; OpenRouter's
  ``usage.cost`` (USD) is a reported cost and wins over any price.
- OpenAI Responses API: ``usage.input_tokens``, ``usage.output_tokens``,
  ``usage.input_tokens_details.cached_tokens``; its stream's ``response.completed`` event.
- Anthropic messages: ``usage.input_tokens`` (the uncached part only),
  ``output_tokens``, ``cache_read_input_tokens``, ``cache_creation_input_tokens``; its
  stream's ``message_start`` and ``message_delta`` events.

One convention out: ``input_tokens`` counts every input token, cached ones included, and
``cache_read_tokens`` / ``cache_write_tokens`` are parts of it (OpenAI's own convention;
Anthropic's parts are added up).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from hal0_client.errors import UsageNotFound
from hal0_client.results import Usage

_MISSING = object()

# Stream events whose ``response`` is the finished Responses API object.
_RESPONSES_DONE = frozenset({"response.completed", "response.incomplete", "response.failed"})


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _has(obj: Any, name: str) -> bool:
    return _get(obj, name, _MISSING) is not _MISSING


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return int(value)


def _cost(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    try:
        cost = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None
    return cost if cost.is_finite() and cost >= 0 else None


def _is_anthropic(response: Any, usage: Any) -> bool:
    if _get(response, "type") == "message":
        return True
    return _has(usage, "cache_read_input_tokens") or _has(usage, "cache_creation_input_tokens")


def extract_usage(response: Any) -> Usage:
    """The usage of one response (or of a stream's final event / chunk).

    Raises ``UsageNotFound`` when the object carries no usage (for a stream: a chunk
    other than the last; OpenAI sends usage in a stream only with
    ``stream_options={"include_usage": True}``).
    """
    kind = _get(response, "type")
    if kind in _RESPONSES_DONE:
        response = _get(response, "response")
    elif kind == "message_start":
        response = _get(response, "message")
    usage = _get(response, "usage")
    if usage is None:
        raise UsageNotFound(
            f"no usage in {type(response).__name__}; pass cost_usd= or the token counts"
        )
    model = _get(response, "model")
    model = model if isinstance(model, str) else None
    if _has(usage, "prompt_tokens") or _has(usage, "completion_tokens"):
        # Chat completions (OpenAI, OpenRouter and the many servers that speak it).
        details = _get(usage, "prompt_tokens_details")
        return Usage(
            input_tokens=_int(_get(usage, "prompt_tokens")),
            output_tokens=_int(_get(usage, "completion_tokens")),
            cache_read_tokens=_int(_get(details, "cached_tokens")),
            cache_write_tokens=_int(_get(details, "cache_write_tokens")),
            cost_usd=_cost(_get(usage, "cost")),
            model=model,
        )
    if _is_anthropic(response, usage) or kind == "message_delta":
        uncached = _int(_get(usage, "input_tokens"))
        read = _int(_get(usage, "cache_read_input_tokens"))
        write = _int(_get(usage, "cache_creation_input_tokens"))
        total = None
        if uncached is not None or read is not None or write is not None:
            total = (uncached or 0) + (read or 0) + (write or 0)
        return Usage(
            input_tokens=total,
            output_tokens=_int(_get(usage, "output_tokens")),
            cache_read_tokens=read,
            cache_write_tokens=write,
            model=model,
        )
    # Responses API (input_tokens already includes the cached part).
    details = _get(usage, "input_tokens_details")
    return Usage(
        input_tokens=_int(_get(usage, "input_tokens")),
        output_tokens=_int(_get(usage, "output_tokens")),
        cache_read_tokens=_int(_get(details, "cached_tokens")),
        cache_write_tokens=_int(_get(details, "cache_write_tokens")),
        cost_usd=_cost(_get(usage, "cost")),
        model=model,
    )


class StreamUsage:
    """Follows a stream's chunks or events and keeps the usage they report.

    OpenAI chat completions send it in the last chunk, the Responses API in its
    ``response.completed`` event. Anthropic sends the input side in ``message_start`` and
    the output tokens so far in each ``message_delta`` (the last one is the total).
    """

    def __init__(self) -> None:
        self.usage: Usage | None = None

    def feed(self, event: Any) -> None:
        try:
            found = extract_usage(event)
        except UsageNotFound:
            return
        if self.usage is None or _get(event, "type") != "message_delta":
            self.usage = found
            return
        # Anthropic's message_delta: the output so far; input fields only when it has them.
        before = self.usage
        self.usage = Usage(
            input_tokens=found.input_tokens or before.input_tokens,
            output_tokens=found.output_tokens
            if found.output_tokens is not None
            else before.output_tokens,
            cache_read_tokens=found.cache_read_tokens or before.cache_read_tokens,
            cache_write_tokens=found.cache_write_tokens or before.cache_write_tokens,
            cost_usd=before.cost_usd,
            model=before.model or found.model,
        )


def usage_from_stream(events: Any) -> Usage:
    """The usage of an already consumed stream (an iterable of its chunks or events)."""
    tracker = StreamUsage()
    for event in events:
        tracker.feed(event)
    if tracker.usage is None:
        raise UsageNotFound(
            "no usage in the stream; with OpenAI chat completions pass "
            'stream_options={"include_usage": True}'
        )
    return tracker.usage
