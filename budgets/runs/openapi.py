"""OpenAPI pieces for the run API. Documentation only: the views validate bodies."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiExample
from rest_framework import serializers

from personas.openapi import error_responses


class RunCreateRequestSerializer(serializers.Serializer[Any]):
    run_id = serializers.CharField(
        required=False,
        help_text="your id for the run (1-64 of A-Z a-z 0-9 . _ : -); generated when "
        "absent. The same run_id and body again answers 200 with the run; another body "
        "is 409 `run.conflict`",
    )
    label = serializers.CharField(required=False, help_text="what the run is, for people")  # type: ignore[assignment]  # a field named like Field.label
    budget_usd = serializers.FloatField(
        required=False, allow_null=True, min_value=0, help_text="absent/null = no USD limit"
    )
    budget_tokens = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, help_text="input + output tokens"
    )
    budget_seconds = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="wall-clock seconds from the run's creation",
    )
    hard_cap = serializers.BooleanField(
        default=True, help_text="false = warn only: a run limit never blocks"
    )


class RunAmountsSerializer(serializers.Serializer[Any]):
    usd = serializers.FloatField(allow_null=True)
    tokens = serializers.IntegerField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True)


class RunCheckpointSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(["created", "extended", "exhausted", "closed"])
    at = serializers.DateTimeField()
    actor = serializers.CharField(help_text="the key or user that made the step")
    budget = RunAmountsSerializer(help_text="the run's budget right after this step")
    spent = RunAmountsSerializer(help_text="what the run had used at this step")
    details = serializers.DictField(
        help_text="extended: added, before, reactivated; exhausted: limit, source, remaining"
    )


class RunSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # Field.label, as above
    state = serializers.ChoiceField(["active", "needs_budget", "closed"])
    hard_cap = serializers.BooleanField()
    budget = RunAmountsSerializer(help_text="null = no limit of that kind")
    spent = RunAmountsSerializer(help_text="seconds: wall clock since creation (until close)")
    remaining = RunAmountsSerializer(help_text="max(0, budget - spent); null = no limit")
    held_usd = serializers.FloatField(help_text="active holds taken for this run")
    charges = serializers.IntegerField(help_text="charges counted against the run")
    exhausted_limit = serializers.ChoiceField(
        ["run_usd", "run_tokens", "run_seconds"],
        allow_null=True,
        help_text="while needs_budget: the limit that ran out",
    )
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)


class RunDetailSerializer(RunSerializer):
    checkpoints = RunCheckpointSerializer(many=True)


class RunResponseSerializer(serializers.Serializer[Any]):
    run = RunSerializer()


class RunDetailResponseSerializer(serializers.Serializer[Any]):
    run = RunDetailSerializer()


class RunListSerializer(serializers.Serializer[Any]):
    runs = RunSerializer(many=True)
    next = serializers.IntegerField(
        allow_null=True, help_text="pass as `after` for the next page; null at the end"
    )


class RunExtendRequestSerializer(serializers.Serializer[Any]):
    usd = serializers.FloatField(required=False, help_text="> 0; new total max(budget, used) + usd")
    tokens = serializers.IntegerField(required=False, min_value=1)
    seconds = serializers.IntegerField(required=False, min_value=1)


LIST_ERRORS = error_responses("agent.unknown", "persona.not_found", "run.invalid")
CREATE_ERRORS = error_responses(
    "agent.unknown",
    "persona.not_found",
    "budget.invalid_body",
    "run.invalid",
    "run.conflict",
    "request.too_large",
)
RUN_ERRORS = error_responses("agent.unknown", "persona.not_found", "run.not_found")
EXTEND_ERRORS = error_responses(
    "agent.unknown",
    "persona.not_found",
    "run.not_found",
    "run.closed",
    "budget.invalid_body",
    "run.invalid_extension",
    "auth.forbidden",
)

CREATE_EXAMPLES = [
    OpenApiExample(
        "a run with a $2 budget",
        value={"run_id": "goal-42", "label": "fix the flaky test", "budget_usd": 2},
        request_only=True,
    ),
]
