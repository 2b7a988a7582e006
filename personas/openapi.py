"""OpenAPI pieces for the agents/personas read API, and the error envelope every API shares.

Documentation only: nothing here validates or renders a request. The envelope lives in
this package because ``budgets`` may import ``personas`` but not the other way round.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

# What each status means, for the descriptions of documented responses.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "auth.missing": (401, "no `Authorization: Bearer <key>` header"),
    "auth.invalid": (401, "unknown, revoked or expired key, or a malformed header"),
    "auth.forbidden": (
        403,
        "the key may not do this (only operator keys may change budgets or read the platform's)",
    ),
    "agent.unknown": (404, "no such agent (also for an agent this key may not see)"),
    "persona.not_found": (
        404,
        "no such persona (also for a persona a persona-scoped key may not see)",
    ),
    "persona.malformed": (400, "the persona file is unreadable or invalid"),
    "persona.conflict": (409, "the persona file changed since it was read"),
    "budget.malformed": (
        400,
        "agent.toml or platform.toml is unreadable or invalid (its last good caps stay in force)",
    ),
    "budget.write_failed": (
        503,
        "agent.toml or platform.toml could not be written (disk full, read-only); nothing "
        "was changed",
    ),
    "persona.write_failed": (
        503,
        "the persona file could not be written (disk full, read-only); nothing was changed",
    ),
    "budget.invalid_body": (400, "body empty, null, not an object, or not JSON"),
    "budget.invalid": (400, "the budget fails validation (the message says which key)"),
    "budget.invalid_estimate": (
        400,
        "estimate missing, not a number, negative, non-finite or over 1e9; or a reservation "
        "past the 9e9 USD one persona's ledger holds",
    ),
    "budget.invalid_charge": (
        400,
        "surface/model/request_id, cost, hold_id or a token count missing or invalid; or a "
        "cost past the 9e9 USD one persona's ledger holds",
    ),
    "charge.conflict": (409, "request_id reused with a different body"),
    "budget.invalid_hold": (
        400,
        "reserve not a boolean, hold_ttl_s not 1 to the maximum, or request_id not a "
        "non-empty string of at most 200 characters",
    ),
    "hold.conflict": (409, "reserve: request_id already took a hold with a different body"),
    "hold.not_found": (404, "release: no such hold for this persona"),
    "hold.resolved": (409, "release: the hold was already settled or released"),
    "events.invalid_query": (400, "after or limit is not a whole number in range"),
    "price.unknown": (
        400,
        "check: no estimated_cost_usd and no price for the model on this surface (the "
        "message says how to add one); GET /api/prices answers it with 404",
    ),
    "request.invalid": (400, "a query parameter is missing or invalid"),
    "run.invalid": (400, "run body or list query fails validation (the message says which key)"),
    "run.invalid_extension": (400, "an addition missing, zero, negative, non-finite or unknown"),
    "run.not_found": (404, "no such run for this persona (another persona's run reads the same)"),
    "run.conflict": (409, "run_id reused with a different body"),
    "run.closed": (409, "the run is closed: checks naming it are refused"),
    "request.too_large": (413, "body over the size limit"),
    "report.invalid": (
        400,
        "a report parameter is invalid (`details.key` names it): a date not YYYY-MM-DD, "
        "`from` after `to`, over 366 days, an unknown zone or grouping",
    ),
    "internal": (500, "unexpected error (never with a traceback or a path)"),
}


class ErrorBodySerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="stable, machine-readable, e.g. `agent.unknown`")
    message = serializers.CharField(help_text="for humans; never a path or a traceback")
    details = serializers.DictField(help_text="context such as the ids involved; may be {}")


class ErrorEnvelopeSerializer(serializers.Serializer[Any]):
    error = ErrorBodySerializer()


def error_responses(*codes: str) -> dict[int, OpenApiResponse]:
    """Documented error responses for the given codes, grouped by status."""
    by_status: dict[int, list[str]] = {}
    for code in (*codes, "auth.missing", "auth.invalid", "internal"):
        status, _ = ERROR_CODES[code]
        if code not in by_status.setdefault(status, []):
            by_status[status].append(code)
    responses = {}
    for status, group in sorted(by_status.items()):
        description = "; ".join(f"`{c}`: {ERROR_CODES[c][1]}" for c in group)
        examples = [
            OpenApiExample(
                c,
                value={"error": {"code": c, "message": ERROR_CODES[c][1], "details": {}}},
                status_codes=[str(status)],
                response_only=True,
            )
            for c in group
        ]
        responses[status] = OpenApiResponse(
            ErrorEnvelopeSerializer, description=description, examples=examples
        )
    return responses


class BudgetBlockSerializer(serializers.Serializer[Any]):
    """The ``budget`` object: unset caps are left out; ``hard_cap`` is always there."""

    daily_usd = serializers.FloatField(required=False, help_text="resets 00:00 in `timezone`")
    monthly_usd = serializers.FloatField(required=False, help_text="resets on the 1st")
    lifetime_usd = serializers.FloatField(required=False, help_text="never resets")
    per_call_max_usd = serializers.FloatField(required=False)
    daily_tokens = serializers.IntegerField(
        required=False, help_text="extension: input + output tokens per day"
    )
    monthly_tokens = serializers.IntegerField(required=False, help_text="extension")
    lifetime_tokens = serializers.IntegerField(required=False, help_text="extension")
    per_call_max_tokens = serializers.IntegerField(
        required=False, help_text="extension: largest token estimate allowed for one call"
    )
    hard_cap = serializers.BooleanField(help_text="false = warn only, never block")
    warn_at = serializers.FloatField(required=False, help_text="extension; default 0.8")
    timezone = serializers.CharField(required=False, help_text="extension; default UTC")
    paused = serializers.BooleanField(
        required=False,
        help_text="extension: the stop switch; present (true) only while paused. Every check "
        'is then refused with `limit: "paused"`, whatever the estimate',
    )


class AgentSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    display_name = serializers.CharField()
    active_persona = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class AgentListSerializer(serializers.Serializer[Any]):
    agents = AgentSerializer(many=True)


class AgentDetailSerializer(AgentSerializer):
    personas = serializers.ListField(child=serializers.CharField())


class PersonaSummarySerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    display_name = serializers.CharField()
    summary = serializers.CharField()
    active = serializers.BooleanField()
    budget = BudgetBlockSerializer(
        allow_null=True,
        help_text=(
            "the caps in force (the last good ones while the file is malformed); null when "
            "the file has never been valid, so there are no caps to show"
        ),
    )
    load_error = serializers.CharField(
        allow_null=True, help_text="set while the persona's file is malformed"
    )


class PersonaListSerializer(serializers.Serializer[Any]):
    agent_id = serializers.CharField()
    active = serializers.CharField(allow_null=True)
    personas = PersonaSummarySerializer(many=True)


class PersonaDetailSerializer(PersonaSummarySerializer):
    agent_id = serializers.CharField()
    system_prompt = serializers.CharField(allow_null=True)
    preferred_upstream = serializers.CharField(allow_null=True)
    preferred_model = serializers.CharField(allow_null=True)
