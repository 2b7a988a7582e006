"""``GET /api/events``: the outbox, oldest first, for clients that poll instead of
receiving webhooks."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets.auth import principal_of
from budgets.events.models import Event
from budgets.events.outbox import event_json
from hal0.errors import BadRequest
from hal0.query import refuse_unknown
from personas.openapi import error_responses

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class _EventScopeSerializer(serializers.Serializer[Any]):
    # The same values as the check's `scope`: one ScopeKindEnum in the schema (settings).
    kind = serializers.ChoiceField(["persona", "agent", "platform", "run"])
    agent = serializers.CharField(allow_null=True)
    persona = serializers.CharField(allow_null=True)


# Built with inline_serializer: a declared field named "data" would shadow Serializer.data.
EventSerializer = inline_serializer(
    name="Event",
    fields={
        "id": serializers.IntegerField(help_text="increasing; the webhook-id of its deliveries"),
        "type": serializers.CharField(help_text="budget.warn, budget.exceeded, ..."),
        "occurred_at": serializers.DateTimeField(),
        "scope": _EventScopeSerializer(),
        "window": serializers.CharField(allow_null=True, help_text="daily | monthly | ..."),
        "cap_usd": serializers.FloatField(allow_null=True),
        "spent_usd": serializers.FloatField(allow_null=True),
        "resets_at": serializers.DateTimeField(allow_null=True),
        "message": serializers.CharField(),
        "data": serializers.DictField(help_text="type-specific: limit, actor, via, ..."),
    },
)


class EventListSerializer(serializers.Serializer[Any]):
    events = serializers.ListField(child=EventSerializer)
    next = serializers.IntegerField(
        allow_null=True, help_text="pass as `after` for the next page; null = no more yet"
    )


def _whole(request: Request, key: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(
            f"{key} must be a whole number from {low} to {high}",
            code="events.invalid_query",
            details={"key": key},
        )
    return int(raw)


class EventListView(APIView):
    """Events after a cursor, oldest first. Agent keys see only their own agent's."""

    @extend_schema(
        operation_id="events_list",
        summary="Budget events (warn, exceeded, blocked, changed, ...) after an id, oldest first",
        parameters=[
            OpenApiParameter("after", int, description="only events with a larger id (0)"),
            OpenApiParameter("limit", int, description=f"1 to {MAX_LIMIT} ({DEFAULT_LIMIT})"),
        ],
        responses={200: EventListSerializer, **error_responses("events.invalid_query")},
    )
    def get(self, request: Request) -> Response:
        refuse_unknown(request.query_params, ("after", "limit"), code="events.invalid_query")
        after = _whole(request, "after", 0, 0, 2**63 - 1)
        limit = _whole(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        events = Event.objects.filter(id__gt=after).order_by("id")
        principal = principal_of(request)
        if principal is not None and not principal.is_operator:
            events = events.filter(agent_id=principal.agent_id or "")
            if principal.persona_id is not None:
                # A persona-scoped key: its persona's events and its agent's own.
                events = events.filter(persona_id__in=(principal.persona_id, ""))
        page = list(events[: limit + 1])
        more = len(page) > limit
        page = page[:limit]
        return Response(
            {"events": [event_json(e) for e in page], "next": page[-1].id if more else None}
        )
