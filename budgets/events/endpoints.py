"""Webhook endpoints: the one place they are added and removed (command and admin)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from budgets.events.delivery import new_secret
from budgets.events.models import WebhookEndpoint
from budgets.events.outbox import EVENT_TYPES
from personas.models import Agent


class EndpointInvalid(ValueError):
    """Bad input for an endpoint; the message says which part and why."""


def clean_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointInvalid(f"{url!r} is not an http(s) URL")
    return url.strip()


def clean_event_types(types: Iterable[str]) -> list[str]:
    chosen = [t.strip() for t in types if t.strip()]
    unknown = [t for t in chosen if t not in EVENT_TYPES]
    if unknown:
        raise EndpointInvalid(
            f"unknown event type {unknown[0]!r} (known: {', '.join(EVENT_TYPES)})"
        )
    return sorted(set(chosen), key=EVENT_TYPES.index)


def clean_agent(agent_id: str) -> str:
    if agent_id and not Agent.objects.filter(id=agent_id).exists():
        raise EndpointInvalid(f"unknown agent {agent_id[:64]!r}")
    return agent_id


def add_endpoint(
    *, url: str, event_types: Iterable[str] = (), agent_id: str = "", format: str = "standard"
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint with a new signing secret; returns it and the secret."""
    if format not in WebhookEndpoint.Format.values:
        raise EndpointInvalid(f"format must be one of {', '.join(WebhookEndpoint.Format.values)}")
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(
        url=clean_url(url),
        secret=secret,
        event_types=clean_event_types(event_types),
        agent_id=clean_agent(agent_id),
        format=format,
    )
    return endpoint, secret


def is_failing(endpoint: WebhookEndpoint, threshold: int) -> bool:
    return endpoint.enabled and endpoint.consecutive_failures >= threshold


def failing_endpoints(threshold: int) -> list[WebhookEndpoint]:
    """Enabled endpoints whose last ``threshold`` attempts or more all failed."""
    return list(WebhookEndpoint.objects.filter(enabled=True, consecutive_failures__gte=threshold))
