"""Run API views, under /api/agents/{a}/personas/{p}/runs: parse, call one service, render.

Bodies are read first (400), then the agent and the persona (404), then the run (404),
as the check and the charge do.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets.auth import actor_of, principal_of
from budgets.models import Run
from budgets.runs import openapi as doc
from budgets.runs.services import (
    LIST_LIMIT_DEFAULT,
    LIST_LIMIT_MAX,
    RUN_ID_RE,
    RunBudget,
    run_close,
    run_create,
    run_extend,
    run_get,
    run_list,
)
from hal0.errors import BadRequest
from hal0.money import MoneyError, parse_usd
from hal0.parsers import read_json_object
from hal0.query import refuse_unknown
from personas.models import Persona
from personas.services import find_persona

MAX_LABEL = 200
# Tokens and seconds are 64-bit counters; anything near that is a client bug.
MAX_COUNT = 10**15
CREATE_KEYS = ("run_id", "label", "budget_usd", "budget_tokens", "budget_seconds", "hard_cap")
EXTEND_KEYS = ("usd", "tokens", "seconds")


def _bad(code: str, message: str, key: str | None) -> BadRequest:
    return BadRequest(message, code=code, details={"key": key} if key else {})


def _refuse_unknown(body: dict[str, Any], known: tuple[str, ...], code: str) -> None:
    # A typo such as "budget_dollars" would otherwise start a run with no limit at all.
    for key in body:
        if key not in known:
            raise _bad(code, f"{str(key)[:64]!r} is not a known key ({', '.join(known)})", key)


def _whole(value: Any, key: str, code: str) -> int:
    """A whole number >= 0 (JSON 60 or 60.0); booleans, strings and fractions refused."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value) if abs(value) <= MAX_COUNT else value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise _bad(code, f"{key} must be a whole number from 0 to {MAX_COUNT}", key)
    return value


def _usd(value: Any, key: str, code: str) -> int:
    try:
        return parse_usd(value, field=key)
    except MoneyError as exc:
        raise _bad(code, str(exc), key) from exc


def parse_create(body: dict[str, Any]) -> tuple[str | None, str, RunBudget, bool]:
    code = "run.invalid"
    _refuse_unknown(body, CREATE_KEYS, code)
    run_id = body.get("run_id")
    if run_id is not None and (not isinstance(run_id, str) or not RUN_ID_RE.match(run_id)):
        raise _bad(
            code,
            "run_id must be 1 to 64 characters: letters, digits and . _ : - "
            "(not first), starting with a letter or digit",
            "run_id",
        )
    label = body.get("label", "")
    if label is None:
        label = ""
    if not isinstance(label, str) or len(label) > MAX_LABEL:
        raise _bad(code, f"label must be a string of at most {MAX_LABEL} characters", "label")
    hard_cap = body.get("hard_cap", True)
    if not isinstance(hard_cap, bool):
        raise _bad(code, "hard_cap must be true or false", "hard_cap")
    usd = body.get("budget_usd")
    tokens = body.get("budget_tokens")
    seconds = body.get("budget_seconds")
    budget = RunBudget(
        usd_nanos=None if usd is None else _usd(usd, "budget_usd", code),
        tokens=None if tokens is None else _whole(tokens, "budget_tokens", code),
        seconds=None if seconds is None else _whole(seconds, "budget_seconds", code),
    )
    return run_id, label, budget, hard_cap


def parse_extension(body: dict[str, Any]) -> RunBudget:
    """Additions must be > 0: zero, negative or non-finite ones are refused."""
    code = "run.invalid_extension"
    _refuse_unknown(body, EXTEND_KEYS, code)
    usd, tokens, seconds = (body.get(k) for k in EXTEND_KEYS)
    added = RunBudget(
        usd_nanos=None if usd is None else _usd(usd, "usd", code),
        tokens=None if tokens is None else _whole(tokens, "tokens", code),
        seconds=None if seconds is None else _whole(seconds, "seconds", code),
    )
    for key, value in zip(EXTEND_KEYS, (added.usd_nanos, added.tokens, added.seconds), strict=True):
        if value == 0:
            raise _bad(code, f"{key} must be more than 0", key)
    if added == RunBudget():
        raise _bad(code, "say what to add: usd, tokens and/or seconds", None)
    return added


def _persona(agent_id: str, persona_id: str) -> Persona:
    return find_persona(agent_id, persona_id)


class RunListView(APIView):
    """List a persona's runs; start a new one."""

    @extend_schema(
        operation_id="runs_list",
        summary="A persona's runs, newest first (paginated)",
        parameters=[
            OpenApiParameter(
                "state",
                str,
                enum=Run.State.values,
                description="only runs in this state; empty or absent: every state",
            ),
            OpenApiParameter("limit", int, description=f"1 to {LIST_LIMIT_MAX} (50)"),
            OpenApiParameter("after", int, description="the `next` of the previous page"),
        ],
        responses={200: doc.RunListSerializer, **doc.LIST_ERRORS},
    )
    def get(self, request: Request, agent_id: str, persona_id: str) -> Response:
        params = request.query_params
        refuse_unknown(params, ("state", "limit", "after"), code="run.invalid")
        # Empty is the same as absent (hal0/query.py): ``?state=`` lists every state.
        state = params.get("state") or None
        if state is not None and state not in Run.State.values:
            raise _bad(
                "run.invalid", f"state must be one of {', '.join(Run.State.values)}", "state"
            )
        limit = _query_int(params.get("limit"), "limit", LIST_LIMIT_MAX) or LIST_LIMIT_DEFAULT
        after = _query_int(params.get("after"), "after", 2**63 - 1)
        persona = _persona(agent_id, persona_id)
        return Response(run_list(persona=persona, state=state, limit=limit, after=after))

    @extend_schema(
        operation_id="runs_create",
        summary="Start a run with its own budget (idempotent per run_id)",
        request=doc.RunCreateRequestSerializer,
        responses={
            201: doc.RunResponseSerializer,
            200: doc.RunResponseSerializer,
            **doc.CREATE_ERRORS,
        },
        examples=doc.CREATE_EXAMPLES,
    )
    def post(self, request: Request, agent_id: str, persona_id: str) -> Response:
        run_id, label, budget, hard_cap = parse_create(read_json_object(request))
        persona = _persona(agent_id, persona_id)
        run, created = run_create(
            persona=persona,
            run_id=run_id,
            label=label,
            budget=budget,
            hard_cap=hard_cap,
            actor=actor_of(request),
        )
        return Response(
            {"run": run}, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


def _query_int(raw: str | None, key: str, top: int) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or not 1 <= int(raw[:20]) <= top:
        raise _bad("run.invalid", f"{key} must be a whole number from 1 to {top}", key)
    return int(raw)


class RunDetailView(APIView):
    """One run's report, with its checkpoints."""

    @extend_schema(
        operation_id="runs_get",
        summary="A run's budget, spend, remaining, state and checkpoints",
        responses={200: doc.RunDetailResponseSerializer, **doc.RUN_ERRORS},
    )
    def get(self, request: Request, agent_id: str, persona_id: str, run_id: str) -> Response:
        persona = _persona(agent_id, persona_id)
        return Response({"run": run_get(persona=persona, run_id=run_id)})


class RunExtendView(APIView):
    """Give a run more budget (operator keys only)."""

    @extend_schema(
        operation_id="runs_extend",
        summary="Add to a run's budget: each new total is max(budget, used) + added",
        request=doc.RunExtendRequestSerializer,
        responses={200: doc.RunDetailResponseSerializer, **doc.EXTEND_ERRORS},
    )
    def post(self, request: Request, agent_id: str, persona_id: str, run_id: str) -> Response:
        principal = principal_of(request)
        if principal is not None and not principal.is_operator:
            # The run's budget exists to stop the agent's own loop: the agent may not
            # raise it itself.
            raise exceptions.PermissionDenied("extending a run needs an operator key")
        added = parse_extension(read_json_object(request))
        persona = _persona(agent_id, persona_id)
        run = run_extend(persona=persona, run_id=run_id, added=added, actor=actor_of(request))
        return Response({"run": run})


class RunCloseView(APIView):
    """Close a run: checks naming it are refused from now on; charges still count."""

    @extend_schema(
        operation_id="runs_close",
        summary="Close a run (checks naming it are then 409 run.closed)",
        request=None,
        responses={200: doc.RunDetailResponseSerializer, **doc.RUN_ERRORS},
    )
    def post(self, request: Request, agent_id: str, persona_id: str, run_id: str) -> Response:
        persona = _persona(agent_id, persona_id)
        return Response({"run": run_close(persona=persona, run_id=run_id, actor=actor_of(request))})
