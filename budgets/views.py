"""Budget API views: parse, call one service, render. No serializers on the hot path."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets import openapi as doc
from budgets.auth import actor_of, principal_of
from budgets.limits import MAX_TEXT, MAX_TOKENS
from budgets.monitoring import metrics
from budgets.prices import quote
from budgets.prices.rates import Usage
from budgets.services import (
    budget_charge,
    budget_check_by_id,
    hold_release,
)
from budgets.services.reserve import reserve_key
from budgets.services.scope_budget import (
    persona_budget_put,
    persona_budget_state,
    scope_put,
    scope_state,
)
from hal0.errors import BadRequest
from hal0.money import MoneyError, parse_usd
from hal0.parsers import read_json_object
from hal0.query import refuse_unknown
from hal0.text import unprintable
from personas.models import Persona
from personas.services import (
    find_persona,
    parse_budget_body,
    require_good_budget,
    resolve_agent,
    resolve_persona,
)


def _persona(agent_id: str, persona_id: str) -> Persona:
    # 404 agent.unknown, then persona.not_found; one stat and one query when unchanged.
    return find_persona(agent_id, persona_id)


def _invalid(code: str, message: str, key: str) -> BadRequest:
    return BadRequest(message, code=code, details={"key": key})


def _money(body: dict[str, Any], key: str, code: str) -> int:
    if key not in body:
        raise _invalid(code, f"{key} is required", key)
    try:
        return parse_usd(body[key], field=key)
    except MoneyError as exc:
        raise _invalid(code, str(exc), key) from exc


def _text(body: dict[str, Any], key: str, code: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _invalid(code, f"'{key}' must be a non-empty string", key)
    if len(value) > MAX_TEXT:
        raise _invalid(code, f"'{key}' must be at most {MAX_TEXT} characters", key)
    # One rule on every database (hal0/text.py): PostgreSQL cannot store NUL, nothing
    # can store a lone surrogate, so these are refused here rather than lost as a 500.
    why = unprintable(value)
    if why is not None:
        raise _invalid(code, f"'{key}' must be printable text, without {why}", key)
    return value


def _required_text(body: dict[str, Any], key: str, code: str) -> str:
    value = _text(body, key, code)
    assert value is not None  # _text refuses a missing value when required
    return value


def _count(body: dict[str, Any], key: str, code: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    # JSON integers arrive as int; 12.0 or "12" are refused rather than guessed at.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise _invalid(code, f"'{key}' must be a whole number >= 0", key)
    return value


def _token_estimate(body: dict[str, Any]) -> int:
    """The check's token estimate: input + max output tokens; 1 when it sends neither (a
    call uses at least one token, so a token cap of zero still blocks it)."""
    code = "budget.invalid_estimate"
    input_tokens = _count(body, "input_tokens", code)
    max_output = _count(body, "max_output_tokens", code)
    if input_tokens is None and max_output is None:
        return 1
    return (input_tokens or 0) + (max_output or 0)


def _estimate(body: dict[str, Any]) -> quote.Estimate:
    """The client's ``estimated_cost_usd`` (it wins when sent), else the worst case of
    ``model`` (+ ``surface``), ``input_tokens`` and ``max_output_tokens``."""
    code = "budget.invalid_estimate"
    # ``model`` and ``surface`` are validated whenever they are sent, even beside an
    # ``estimated_cost_usd`` that wins over them: a malformed field is a client's bug to
    # hear about, not to have silently ignored.
    model = _required_text(body, "model", code) if "model" in body else None
    surface = _text(body, "surface", code, required=False)
    if "estimated_cost_usd" in body or model is None:
        return quote.client_estimate(_money(body, "estimated_cost_usd", code))
    counts = {}
    for key in ("input_tokens", "max_output_tokens"):
        counts[key] = _count(body, key, code)
        if counts[key] is None:
            raise _invalid(
                code,
                f"{key} is required to price the call (or send estimated_cost_usd)",
                key,
            )
    return quote.token_estimate(
        model=model,
        surface=surface,
        input_tokens=counts["input_tokens"] or 0,
        max_output_tokens=counts["max_output_tokens"] or 0,
        at=timezone.now(),
    )


def _ttl(body: dict[str, Any]) -> int | None:
    value = body.get("hold_ttl_s")
    if value is None:
        return None
    top = settings.HAL0_HOLD_TTL_MAX_S
    # Range first, on the Decimal: int() of 9E+99999999 would take minutes of CPU.
    if (
        isinstance(value, Decimal)
        and value.is_finite()
        and 1 <= value <= top
        and value == value.to_integral_value()
    ):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise _invalid(
            "budget.invalid_hold",
            f"hold_ttl_s must be a whole number of seconds, 1 to {top}",
            "hold_ttl_s",
        )
    return value


class BudgetView(APIView):
    """GET the budget and spend of a persona; PUT (operators) replaces its caps."""

    @extend_schema(
        operation_id="budget_get",
        summary="A persona's caps, spend per window and remaining headroom",
        responses={200: doc.PersonaBudgetStateSerializer, **doc.BUDGET_ERRORS},
    )
    def get(self, request: Request, agent_id: str, persona_id: str) -> Response:
        persona = _persona(agent_id, persona_id)
        require_good_budget(persona)
        # An agent key may not read the platform's budget (GET /api/platform/budget is 403
        # to it), so its persona GET leaves the platform out of `scopes`.
        principal = principal_of(request)
        with_platform = principal is None or principal.is_operator
        return Response(persona_budget_state(persona=persona, with_platform=with_platform))

    @extend_schema(
        operation_id="budget_put",
        summary="Replace a persona's caps (operator keys only); audited",
        request=doc.BudgetPutRequestSerializer,
        responses={200: doc.PersonaBudgetStateSerializer, **doc.PUT_ERRORS},
    )
    def put(self, request: Request, agent_id: str, persona_id: str) -> Response:
        # hal0's order: agent (404), then body (400), then persona (404).
        agent = resolve_agent(agent_id)
        spec = parse_budget_body(read_json_object(request))
        persona = resolve_persona(agent, persona_id)
        return Response(persona_budget_put(persona=persona, spec=spec, actor=actor_of(request)))


class AgentBudgetView(APIView):
    """GET an agent's budget (its own agent's key may); PUT (operators) replaces it."""

    @extend_schema(
        operation_id="agent_budget_get",
        summary="An agent's caps over all its personas, their spend and headroom",
        responses={200: doc.ScopeBudgetStateSerializer, **doc.SCOPE_BUDGET_ERRORS},
    )
    def get(self, request: Request, agent_id: str) -> Response:
        agent = resolve_agent(agent_id)
        return Response(scope_state(kind="agent", agent_id=agent.id))

    @extend_schema(
        operation_id="agent_budget_put",
        summary="Replace an agent's caps (operator keys only); agent.toml, audited",
        request=doc.BudgetPutRequestSerializer,
        responses={200: doc.ScopeBudgetStateSerializer, **doc.SCOPE_PUT_ERRORS},
    )
    def put(self, request: Request, agent_id: str) -> Response:
        # The persona PUT's order: agent (404), then body (400).
        agent = resolve_agent(agent_id)
        spec = parse_budget_body(read_json_object(request))
        return Response(
            scope_put(kind="agent", agent_id=agent.id, spec=spec, actor=actor_of(request))
        )


class PlatformBudgetView(APIView):
    """The platform's budget, over every agent: operator keys only, also to read it."""

    # budgets.auth.ApiKeyPermission: an agent key gets 403 auth.forbidden, even for GET.
    operator_only = True

    @extend_schema(
        operation_id="platform_budget_get",
        summary="The platform's caps over every agent, their spend and headroom (operators)",
        responses={200: doc.ScopeBudgetStateSerializer, **doc.PLATFORM_BUDGET_ERRORS},
    )
    def get(self, request: Request) -> Response:
        return Response(scope_state(kind="platform"))

    @extend_schema(
        operation_id="platform_budget_put",
        summary="Replace the platform's caps (operator keys only); platform.toml, audited",
        request=doc.BudgetPutRequestSerializer,
        responses={200: doc.ScopeBudgetStateSerializer, **doc.PLATFORM_PUT_ERRORS},
    )
    def put(self, request: Request) -> Response:
        spec = parse_budget_body(read_json_object(request))
        return Response(scope_put(kind="platform", spec=spec, actor=actor_of(request)))


class CheckView(APIView):
    """May the persona spend this estimate? Optionally reserve it with a hold."""

    @extend_schema(
        operation_id="budget_check",
        summary="Before an upstream call: may the persona spend this estimate?",
        request=doc.CheckRequestSerializer,
        responses={200: doc.CheckResponseSerializer, **doc.CHECK_ERRORS},
        examples=doc.CHECK_EXAMPLES,
    )
    def post(self, request: Request, agent_id: str, persona_id: str) -> Response:
        # Body first (400), then agent and persona (404), as hal0 does.
        body = read_json_object(request)
        estimate = _estimate(body)
        reserve = body.get("reserve", False)
        if not isinstance(reserve, bool):
            raise _invalid("budget.invalid_hold", "reserve must be true or false", "reserve")
        ttl = _ttl(body)
        # Makes a reserve idempotent (ignored without reserve: nothing to repeat).
        request_id = _text(body, "request_id", "budget.invalid_hold", required=False)
        tokens = _token_estimate(body)
        # Names a run of this persona: its budget is checked first (404, 409 when closed).
        run_id = _text(body, "run_id", "run.invalid", required=False)
        # 404s as _persona gives them; the persona and its spend in one query.
        result = budget_check_by_id(
            agent_id=agent_id,
            persona_id=persona_id,
            estimate_nanos=estimate.nanos,
            estimate_tokens=tokens,
            reserve=reserve,
            hold_ttl_s=ttl,
            actor=actor_of(request),
            key=reserve_key(body, request_id) if reserve else None,
            run_id=run_id,
        )
        metrics.check_answered(result["decision"])
        result["estimate"] = estimate.to_json()
        return Response(result)


class ChargeView(APIView):
    """Record what a call cost. Never refused for being over a cap, nor for its hold."""

    @extend_schema(
        operation_id="budget_charge",
        summary="After an upstream call: record what it cost (idempotent per request_id)",
        request=doc.ChargeRequestSerializer,
        responses={200: doc.ChargeResponseSerializer, **doc.CHARGE_ERRORS},
        examples=doc.CHARGE_EXAMPLES,
    )
    def post(self, request: Request, agent_id: str, persona_id: str) -> Response:
        body = read_json_object(request)
        code = "budget.invalid_charge"
        surface = _required_text(body, "surface", code)
        model = _required_text(body, "model", code)
        # A reported cost always wins; without one the tokens are priced (below).
        reported = _money(body, "cost_usd", code) if body.get("cost_usd") is not None else None
        request_id = _required_text(body, "request_id", code)
        hold_id = _text(body, "hold_id", code, required=False)
        input_tokens = _count(body, "input_tokens", code)
        output_tokens = _count(body, "output_tokens", code)
        cache_read = _count(body, "cache_read_tokens", code)
        cache_write = _count(body, "cache_write_tokens", code)
        usage = None
        if input_tokens is not None or output_tokens is not None:
            usage = Usage(input_tokens or 0, output_tokens or 0, cache_read or 0, cache_write or 0)
        now = timezone.now()
        cost = quote.charge_cost(
            model=model, surface=surface, reported_nanos=reported, usage=usage, at=now
        )
        run_id = _text(body, "run_id", code, required=False)
        persona = _persona(agent_id, persona_id)
        result = budget_charge(
            persona=persona,
            surface=surface,
            model=model,
            cost_nanos=cost.nanos,
            request_id=request_id,
            hold_id=hold_id,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            cost_source=cost.source,
            price_version=cost.version,
            run_id=run_id,
            actor=actor_of(request),
            now=now,
        )
        return Response(result)


class HoldReleaseView(APIView):
    """Give a hold back before it expires."""

    @extend_schema(
        operation_id="budget_hold_release",
        summary="Give a hold back before it expires",
        request=None,
        responses={200: doc.HoldReleaseResponseSerializer, **doc.RELEASE_ERRORS},
    )
    def post(self, request: Request, agent_id: str, persona_id: str, hold_id: str) -> Response:
        persona = _persona(agent_id, persona_id)
        return Response(hold_release(persona=persona, hold_id=hold_id, actor=actor_of(request)))


class PricesView(APIView):
    """What a model costs on a surface: prices.toml first, then the catalogue."""

    @extend_schema(
        operation_id="prices_get",
        summary="The price the service charges for a model's tokens",
        parameters=doc.PRICES_PARAMETERS,
        responses={200: doc.PriceSerializer, **doc.PRICES_ERRORS},
    )
    def get(self, request: Request) -> Response:
        code = "request.invalid"
        refuse_unknown(request.query_params, ("model", "surface"), code=code)
        params = {key: request.query_params.get(key) for key in ("model", "surface")}
        model = _required_text(params, "model", code)
        surface = _text(params, "surface", code, required=False)
        price = quote.price_of(model, surface, at=timezone.now())
        if price is None:
            raise quote.price_unknown(model, surface, status=404)
        return Response(quote.price_json(price))
