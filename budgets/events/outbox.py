"""The outbox: the one writer of events, and the JSON shape every reader sees.

``record_event`` inserts an event in the caller's transaction (so it commits or rolls
back with the change that caused it) and queues one delivery per webhook endpoint that
wants it. The worker sends the deliveries later, never inside this transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, TypedDict

from django.db import connection
from django.utils import timezone

from budgets.events.models import Delivery, Event, WebhookEndpoint
from hal0.money import usd_number

# The event types, each documented in docs/alerts.md.
BUDGET_WARN = "budget.warn"
BUDGET_EXCEEDED = "budget.exceeded"
BUDGET_BLOCKED = "budget.blocked"
BUDGET_CHANGED = "budget.changed"
EVENT_TYPES = (
    BUDGET_WARN,
    BUDGET_EXCEEDED,
    BUDGET_BLOCKED,
    BUDGET_CHANGED,
    "budget.paused",
    "run.exhausted",
    "run.extended",
)
_COLUMNS = (
    "type",
    "occurred_at",
    "scope_kind",
    "agent_id",
    "persona_id",
    "window",
    "window_start",
    "cap_nanos",
    "spent_nanos",
    "resets_at",
    "message",
    "data",
)

_FIELDS = {f.name: f for f in Event._meta.concrete_fields}


class EventScope(TypedDict):
    kind: str
    agent: str | None
    persona: str | None


class EventJson(TypedDict):
    id: int
    type: str
    occurred_at: str
    scope: EventScope
    window: str | None
    cap_usd: float | None
    spent_usd: float | None
    resets_at: str | None
    message: str
    data: dict[str, Any]


@lru_cache(maxsize=4)
def _insert_sql(vendor: str) -> str:
    # Only quoted constant identifiers are formatted in; every value is a parameter.
    qn = connection.ops.quote_name
    columns = ", ".join(qn(c) for c in _COLUMNS)
    marks = ", ".join(["%s"] * len(_COLUMNS))
    return (
        f"INSERT INTO {qn(Event._meta.db_table)} ({columns}) VALUES ({marks}) "  # noqa: S608
        f"ON CONFLICT DO NOTHING RETURNING {qn('id')}"
    )


def record_event(
    *,
    type: str,
    scope_kind: str,
    message: str,
    agent_id: str = "",
    persona_id: str = "",
    window: str = "",
    window_start: dt.date | None = None,
    cap_nanos: int | None = None,
    spent_nanos: int | None = None,
    resets_at: dt.datetime | None = None,
    data: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
    deliver_to: Sequence[WebhookEndpoint] | None = None,
) -> int | None:
    """Write one event and queue its deliveries, inside the caller's transaction.

    With ``window_start`` the event is once per (type, scope, window, window start): when
    that key is taken already nothing is written and the answer is ``None``; otherwise
    the new event's id. Call it inside ``transaction.atomic()`` with the change it reports.
    ``deliver_to`` names the endpoints instead of every endpoint that wants the event.
    """
    occurred_at = now or timezone.now()
    values: dict[str, Any] = {
        "type": type,
        "occurred_at": occurred_at,
        "scope_kind": scope_kind,
        "agent_id": agent_id,
        "persona_id": persona_id,
        "window": window,
        "window_start": window_start,
        "cap_nanos": cap_nanos,
        "spent_nanos": spent_nanos,
        "resets_at": resets_at,
        "message": message,
        "data": data or {},
    }
    params = [_FIELDS[name].get_db_prep_save(values[name], connection) for name in _COLUMNS]
    with connection.cursor() as cursor:
        # ON CONFLICT DO NOTHING: a concurrent writer of the same once-per-window key wins
        # quietly, and this transaction stays usable (no savepoint, no IntegrityError).
        cursor.execute(_insert_sql(connection.vendor), params)
        row = cursor.fetchone()
    if row is None:
        return None
    event_id = int(row[0])
    if deliver_to is None:
        deliver_to = [
            e for e in WebhookEndpoint.objects.filter(enabled=True) if e.wants(type, agent_id)
        ]
    # Due now by the wall clock, whatever instant the event is dated (a charge may be).
    queue_deliveries(event_id, deliver_to, timezone.now())
    return event_id


def queue_deliveries(event_id: int, endpoints: Sequence[WebhookEndpoint], now: dt.datetime) -> int:
    """One pending delivery per endpoint, due at once."""
    Delivery.objects.bulk_create(
        [
            Delivery(event_id=event_id, endpoint=e, created_at=now, next_attempt_at=now)
            for e in endpoints
        ]
    )
    return len(endpoints)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def event_json(event: Event) -> EventJson:
    """The payload of DESIGN.md section 8, as the API lists it and webhooks send it."""
    return {
        "id": event.id,
        "type": event.type,
        "occurred_at": _iso(event.occurred_at) or "",
        "scope": {
            "kind": event.scope_kind,
            "agent": event.agent_id or None,
            "persona": event.persona_id or None,
        },
        "window": event.window or None,
        "cap_usd": None if event.cap_nanos is None else usd_number(event.cap_nanos),
        "spent_usd": None if event.spent_nanos is None else usd_number(event.spent_nanos),
        "resets_at": _iso(event.resets_at),
        "message": event.message,
        "data": event.data or {},
    }
