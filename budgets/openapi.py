"""OpenAPI pieces for the budget API: request/response shapes, examples, the Bearer scheme.

Documentation only: the views validate bodies themselves (exact decimals, hal0's error
codes and order); these serializers only describe what goes in and out.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema_field,
)
from rest_framework import serializers

from budgets.limits import MAX_TEXT, MAX_TOKENS
from budgets.rules import RUN_LIMITS
from hal0.money import MAX_USD
from hal0.text import PRINTABLE_NON_BLANK_PATTERN
from personas.openapi import BudgetBlockSerializer, ErrorEnvelopeSerializer, error_responses
from personas.toml_store import MAX_TOKENS as MAX_TOKEN_CAP
from personas.toml_store import TIMEZONE_MAX_LEN

__all__ = [
    "BUDGET_ERRORS",
    "CHARGE_ERRORS",
    "CHECK_ERRORS",
    "PUT_ERRORS",
    "RELEASE_ERRORS",
    "BudgetPutRequestSerializer",
    "BudgetStateSerializer",
    "ChargeRequestSerializer",
    "ChargeResponseSerializer",
    "CheckRequestSerializer",
    "CheckResponseSerializer",
    "HoldReleaseResponseSerializer",
    "PriceSerializer",
    "error_responses",
]


class BearerApiKeyScheme(OpenApiAuthenticationExtension):
    """Declares ``Authorization: Bearer <key>`` (budgets.auth) in the schema."""

    target_class = "budgets.auth.BearerApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An API key from `manage.py apikey create`. Operator keys may do "
                "everything; agent keys may read their own agent (not the platform's "
                "budget) and check, charge and release holds for its personas; a key "
                "scoped to one persona (`--persona`) sees no other persona of its agent."
            ),
        }


def _usd(help_text: str, **kwargs: Any) -> serializers.FloatField:
    # A JSON number in USD; exact in the service (nano-USD), never rounded on the way out.
    return serializers.FloatField(min_value=0, help_text=help_text, **kwargs)


def _usd_in(help_text: str, **kwargs: Any) -> serializers.FloatField:
    """An amount a client sends: 0 to 1e9 USD (hal0/money.py)."""
    return _usd(help_text, max_value=float(MAX_USD), **kwargs)


def _text_in(help_text: str = "", **kwargs: Any) -> serializers.RegexField:
    """A string the service keeps: 1-200 printable characters, not blank (hal0/text.py)."""
    return serializers.RegexField(
        PRINTABLE_NON_BLANK_PATTERN,
        min_length=1,
        max_length=MAX_TEXT,
        help_text=help_text,
        **kwargs,
    )


@extend_schema_field(
    {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1, "nullable": True}
)
class _WarnAtField(serializers.FloatField):
    """``warn_at``: above 0, at most 1 (OpenAPI 3.0 spells "above" as exclusiveMinimum)."""


@extend_schema_field(
    {
        "type": "string",
        "minLength": 1,
        "maxLength": TIMEZONE_MAX_LEN,
        "nullable": True,
        "example": "Europe/Berlin",
    }
)
class _TimezoneField(serializers.CharField):
    """``timezone``: an IANA zone name (the set is the host's tz database's)."""


def _rate(help_text: str) -> serializers.FloatField:
    return serializers.FloatField(
        min_value=0, allow_null=True, help_text=f"USD per million tokens: {help_text}"
    )


def _token_cap(help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_TOKEN_CAP, help_text=help_text
    )


class BudgetPutRequestSerializer(serializers.Serializer[Any]):
    """PUT body: replaces the whole block (a missing cap = no cap, missing hard_cap = true)."""

    daily_usd = _usd_in(
        "cap per day; absent or null = no cap, 0 = a cap of zero", required=False, allow_null=True
    )
    monthly_usd = _usd_in("cap per calendar month", required=False, allow_null=True)
    lifetime_usd = _usd_in("cap that never resets", required=False, allow_null=True)
    per_call_max_usd = _usd_in(
        "largest estimate allowed for one call", required=False, allow_null=True
    )
    hard_cap = serializers.BooleanField(
        default=True, help_text="false = warn only: checks are allowed with a reason"
    )
    warn_at = _WarnAtField(
        required=False,
        help_text="extension: status `warn` from this share of a cap; above 0, at most 1, up "
        "to 4 decimals; absent or null = 0.8",
    )
    timezone = _TimezoneField(
        required=False,
        help_text="extension: IANA zone for day/month boundaries, case-sensitive; absent or "
        "null = UTC",
    )
    paused = serializers.BooleanField(
        required=False,
        default=False,
        help_text="extension: the stop switch. true refuses every check under this budget "
        "(also a warn-only one) until it is set back to false or left out",
    )
    daily_tokens = _token_cap(
        "extension: input + output tokens per day; absent or null = no cap, 0 = a cap of zero"
    )
    monthly_tokens = _token_cap("extension: tokens per calendar month")
    lifetime_tokens = _token_cap("extension: tokens ever")
    per_call_max_tokens = _token_cap("extension: largest token estimate allowed for one call")


class SpendSerializer(serializers.Serializer[Any]):
    today_usd = _usd("spent since the start of today")
    mtd_usd = _usd("spent since the start of the month")
    lifetime_usd = _usd("spent ever")


class RemainingSerializer(serializers.Serializer[Any]):
    daily_usd = _usd("max(0, cap - spent); only configured windows appear", required=False)
    monthly_usd = _usd("", required=False)
    lifetime_usd = _usd("", required=False)


class RemainingHeadroomSerializer(serializers.Serializer[Any]):
    daily = _usd("headroom before this call; only configured windows appear", required=False)
    monthly = _usd("", required=False)
    lifetime = _usd("", required=False)


class ResetsAtSerializer(serializers.Serializer[Any]):
    daily = serializers.DateTimeField(help_text="next midnight in the budget's timezone")
    monthly = serializers.DateTimeField(help_text="the next 1st, 00:00, in that timezone")


class UnpricedSerializer(serializers.Serializer[Any]):
    today = serializers.IntegerField(min_value=0)
    month = serializers.IntegerField(min_value=0)
    lifetime = serializers.IntegerField(min_value=0)


class BudgetStateSerializer(serializers.Serializer[Any]):
    budget = BudgetBlockSerializer()
    spend = SpendSerializer()
    remaining = RemainingSerializer()
    held_usd = _usd("extension: active holds, counted as spent by checks")
    status = serializers.ChoiceField(
        ["none", "ok", "warn", "exceeded"],
        help_text="extension: none = no cap; warn from `warn_at` of a cap",
    )
    resets_at = ResetsAtSerializer(help_text="extension")
    unpriced_charges = UnpricedSerializer(
        help_text="extension (prices): charges per window whose cost is not recorded (tokens "
        "of a model nobody prices); their cost is in no spend figure"
    )


class ScopeSpendSerializer(SpendSerializer):
    today_tokens = serializers.IntegerField(min_value=0, help_text="input + output tokens")
    mtd_tokens = serializers.IntegerField(min_value=0)
    lifetime_tokens = serializers.IntegerField(min_value=0)


class ScopeRemainingSerializer(RemainingSerializer):
    daily_tokens = serializers.IntegerField(
        min_value=0, required=False, help_text="max(0, cap - spent); only configured windows"
    )
    monthly_tokens = serializers.IntegerField(min_value=0, required=False)
    lifetime_tokens = serializers.IntegerField(min_value=0, required=False)


_STATUS_HELP = "none = no cap; warn from `warn_at` of a cap; exceeded from the cap"


class ScopeSummarySerializer(serializers.Serializer[Any]):
    budget = BudgetBlockSerializer(help_text="the caps in force (the last good ones)")
    spend = ScopeSpendSerializer(help_text="in the scope's own day and month")
    status = serializers.ChoiceField(["none", "ok", "warn", "exceeded"], help_text=_STATUS_HELP)


class ScopesSerializer(serializers.Serializer[Any]):
    persona = ScopeSummarySerializer()
    agent = ScopeSummarySerializer(help_text="every persona of the agent together")
    platform = ScopeSummarySerializer(
        required=False,
        help_text="every agent together; left out for agent keys (they may not read the "
        "platform's budget)",
    )


class PersonaBudgetStateSerializer(BudgetStateSerializer):
    scopes = ScopesSerializer(
        help_text="extension: the persona's, its agent's and the platform's caps, spend and "
        "status; a check evaluates them in that order"
    )


class ScopeBudgetStateSerializer(serializers.Serializer[Any]):
    """An agent's or the platform's budget: the persona GET's shape, spend summed over
    the scope's personas, plus token figures."""

    budget = BudgetBlockSerializer()
    spend = ScopeSpendSerializer()
    remaining = ScopeRemainingSerializer()
    held_usd = _usd("active holds of the scope's personas")
    held_tokens = serializers.IntegerField(min_value=0)
    status = serializers.ChoiceField(["none", "ok", "warn", "exceeded"], help_text=_STATUS_HELP)
    resets_at = ResetsAtSerializer(help_text="in the scope's own timezone")
    unpriced_charges = UnpricedSerializer()


def _tokens(help_text: str, **kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_TOKENS, help_text=help_text, **kwargs
    )


class CheckRequestSerializer(serializers.Serializer[Any]):
    estimated_cost_usd = _usd_in(
        "what the upstream call may cost; wins over a price from tokens. Required unless "
        "`model`, `input_tokens` and `max_output_tokens` are sent",
        required=False,
    )
    model = _text_in(
        "extension (prices): the model about to be called, priced when "
        "`estimated_cost_usd` is absent",
        required=False,
    )
    surface = _text_in(
        "extension (prices): where the call goes (picks the catalogue's provider)",
        required=False,
        allow_null=True,
    )
    input_tokens = _tokens(
        "extension (prices): input tokens of the call, cached or not; required with `model`. "
        "Also the token estimate for token caps: input + max output tokens (1 when neither "
        "is sent)"
    )
    max_output_tokens = _tokens(
        "extension (prices): the call's max_tokens; the estimate is the worst case, every "
        "one of them at the output price; required with `model`"
    )
    reserve = serializers.BooleanField(
        required=False, default=False, help_text="extension: take a hold for the estimate"
    )
    hold_ttl_s = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=settings.HAL0_HOLD_TTL_MAX_S,
        help_text="extension: hold lifetime in seconds; absent or null = the default (300)",
    )
    request_id = _text_in(
        required=False,
        allow_null=True,
        help_text="extension, with `reserve`: makes the reserve idempotent per persona. The "
        "same body again answers the first answer (the same hold) and takes no other hold; "
        "another body with this id is 409 `hold.conflict`. Ignored without `reserve`",
    )
    run_id = serializers.CharField(
        required=False,
        help_text="extension: a run of this persona; its budget (USD, tokens, seconds) is the "
        "first scope checked, and a hold reserves against it too. Unknown: 404 "
        "`run.not_found`; closed: 409 `run.closed`",
    )


class CheckedRunSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    state = serializers.ChoiceField(
        ["active", "needs_budget"], help_text="needs_budget once a run limit refused a check"
    )
    remaining = serializers.DictField(
        help_text="usd, tokens, seconds the run may still use (holds counted); null = no limit"
    )


class RemainingTokensSerializer(serializers.Serializer[Any]):
    daily = serializers.IntegerField(required=False)
    monthly = serializers.IntegerField(required=False)
    lifetime = serializers.IntegerField(required=False)


class HoldSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    amount_usd = _usd("reserved against every window")
    expires_at = serializers.DateTimeField()


class EstimateSerializer(serializers.Serializer[Any]):
    usd = _usd("the estimate in USD (rounded up at the nano-USD when priced)")
    # The API's key is "source"; DRF pops declared fields off the class, so the name
    # does not shadow Field.source at run time (mypy cannot know).
    source = serializers.ChoiceField(  # type: ignore[assignment]
        ["client", "catalogue", "override"],
        help_text="`client`: estimated_cost_usd as sent; `catalogue`: genai-prices; "
        "`override`: prices.toml",
    )


class CheckResponseSerializer(serializers.Serializer[Any]):
    allowed = serializers.BooleanField()
    reason = serializers.CharField(
        allow_null=True,
        help_text='first breached cap: "per-call cap", "daily cap", "monthly cap", '
        '"lifetime cap"; null when none',
    )
    remaining_usd = RemainingHeadroomSerializer()
    hard_cap = serializers.BooleanField()
    decision = serializers.ChoiceField(["allow", "warn", "block"], help_text="extension")
    limit = serializers.ChoiceField(
        [
            "per_call",
            "daily",
            "monthly",
            "lifetime",
            "per_call_tokens",
            "daily_tokens",
            "monthly_tokens",
            "lifetime_tokens",
            "paused",
            *RUN_LIMITS,
        ],
        allow_null=True,
        help_text="extension: which cap decided; null when none was breached",
    )
    scope = serializers.ChoiceField(
        ["run", "persona", "agent", "platform"],
        allow_null=True,
        help_text="extension: whose cap decided (the run, then the persona, its agent and "
        "the platform are evaluated in that order); null when none was breached",
    )
    remaining_tokens = RemainingTokensSerializer(
        required=False,
        help_text="extension: per window, the fewest tokens left over the scopes with a "
        "token cap on it; present when any has one",
    )
    hold = HoldSerializer(required=False, help_text="extension: present when reserved")
    estimate = EstimateSerializer(help_text="extension (prices): the estimate the rules used")
    run = CheckedRunSerializer(required=False, help_text="extension: with `run_id`")


class ChargeRequestSerializer(serializers.Serializer[Any]):
    surface = _text_in("where the call went, e.g. `openrouter`")
    model = _text_in()
    cost_usd = _usd_in(
        "what the call actually cost; always wins over a price from tokens. Required "
        "unless `input_tokens` or `output_tokens` is sent",
        required=False,
    )
    request_id = _text_in(
        help_text="idempotency key per persona: the same body again returns the first "
        "answer; another body with this id is 409 `charge.conflict`"
    )
    hold_id = _text_in(
        required=False,
        allow_null=True,
        help_text="extension: settles this hold of the persona if it is still active. The "
        "charge is recorded whatever the hold's state: the money is already spent",
    )
    input_tokens = _tokens("every input token of the call, cached or not", allow_null=True)
    output_tokens = _tokens("output tokens of the call", allow_null=True)
    cache_read_tokens = _tokens(
        "extension (prices): the part of input_tokens read from the prompt cache",
        allow_null=True,
    )
    cache_write_tokens = _tokens(
        "extension (prices): the part of input_tokens written to the prompt cache",
        allow_null=True,
    )
    run_id = _text_in(
        required=False,
        allow_null=True,
        help_text="extension: count this charge against the persona's run (also when the "
        "run is closed or needs budget). Without it, a charge settling a run's hold counts "
        "against that run",
    )


class ChargeRowSerializer(serializers.Serializer[Any]):
    ts = serializers.DateTimeField()
    surface = serializers.CharField()
    model = serializers.CharField()
    cost_usd = _usd(
        "as recorded; null when no price is known (never 0 for unknown)", allow_null=True
    )
    request_id = serializers.CharField()
    cost_source = serializers.ChoiceField(
        ["reported", "catalogue", "override", "unpriced"],
        help_text="extension (prices): `reported` = cost_usd as sent; `catalogue` / "
        "`override` = priced from the tokens; `unpriced` = tokens of a model with no price",
    )


class ChargedHoldSerializer(serializers.Serializer[Any]):
    id = serializers.CharField(help_text="the `hold_id` sent, cut to 64 characters")
    settled = serializers.BooleanField(help_text="true only when this charge settled the hold")
    state = serializers.ChoiceField(
        ["settled", "released", "not_found"],
        help_text="the hold's state after this charge: `settled` (by this charge, or by an "
        "earlier one when `settled` is false), `released` (given back before, left so), "
        "`not_found` (no such hold for this persona; another persona's hold reads the same)",
    )


class ChargedRunSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    state = serializers.CharField(help_text="the run's state, or `not_found`")
    counted = serializers.BooleanField(help_text="false only when no such run was found")
    spent = serializers.DictField(required=False, help_text="the run's spend after this charge")
    remaining = serializers.DictField(required=False)


class ChargeResponseSerializer(BudgetStateSerializer):
    recorded = serializers.BooleanField(help_text="always true: a valid charge is recorded")
    row = ChargeRowSerializer()
    hold = ChargedHoldSerializer(
        required=False,
        help_text="extension: only when `hold_id` was sent. A charge naming a hold that is "
        "already settled or released, or is unknown, is still recorded in full (the money is "
        "already spent) and leaves that hold as it is: a hold resolves at most once. A "
        "replay answers the same `hold` as the first time",
    )
    run = ChargedRunSerializer(
        required=False,
        help_text="extension: when `run_id` was sent or the settled hold was a run's. An "
        "unknown run_id does not stop the charge: it is recorded and `state` says `not_found`",
    )


class ReleasedHoldSerializer(HoldSerializer):
    state = serializers.ChoiceField(["released"], help_text="what the hold is now")


class HoldReleaseResponseSerializer(serializers.Serializer[Any]):
    hold = ReleasedHoldSerializer()


BUDGET_ERRORS = error_responses("agent.unknown", "persona.not_found", "persona.malformed")
PUT_ERRORS = error_responses(
    "agent.unknown",
    "persona.not_found",
    "persona.malformed",
    "budget.invalid_body",
    "budget.invalid",
    "auth.forbidden",
    "request.too_large",
    "persona.write_failed",
)
SCOPE_BUDGET_ERRORS = error_responses("agent.unknown", "budget.malformed")
SCOPE_PUT_ERRORS = error_responses(
    "agent.unknown",
    "budget.malformed",
    "budget.invalid_body",
    "budget.invalid",
    "auth.forbidden",
    "request.too_large",
    "budget.write_failed",
)
PLATFORM_BUDGET_ERRORS = error_responses("budget.malformed", "auth.forbidden")
PLATFORM_PUT_ERRORS = error_responses(
    "budget.malformed",
    "budget.invalid_body",
    "budget.invalid",
    "auth.forbidden",
    "request.too_large",
    "budget.write_failed",
)
CHECK_ERRORS = error_responses(
    "agent.unknown",
    "persona.not_found",
    "run.not_found",
    "run.closed",
    "run.invalid",
    "persona.malformed",
    "budget.invalid_body",
    "budget.invalid_estimate",
    "budget.invalid_hold",
    "hold.conflict",
    "price.unknown",
    "request.too_large",
)
# No persona.malformed: a charge is recorded even for a persona whose file is malformed.
CHARGE_ERRORS = error_responses(
    "agent.unknown",
    "persona.not_found",
    "budget.invalid_body",
    "budget.invalid_charge",
    "charge.conflict",
    "request.too_large",
)
PRICES_ERRORS = {
    **error_responses("request.invalid"),
    404: OpenApiResponse(
        ErrorEnvelopeSerializer,
        description="`price.unknown`: neither prices.toml nor the catalogue prices the "
        "model on this surface",
    ),
}
PRICES_PARAMETERS = [
    OpenApiParameter("model", str, required=True, description="the model as clients send it"),
    OpenApiParameter(
        "surface",
        str,
        required=False,
        description="where the call goes; picks the catalogue's provider (docs/api.md)",
    ),
]


class TierSerializer(serializers.Serializer[Any]):
    above_input_tokens = serializers.IntegerField(min_value=0)
    per_mtok_usd = serializers.FloatField(min_value=0)


class PriceSerializer(serializers.Serializer[Any]):
    model = serializers.CharField()
    surface = serializers.CharField(allow_null=True)
    input_per_mtok_usd = _rate("input tokens not read from or written to the cache")
    output_per_mtok_usd = _rate("output tokens")
    cache_read_per_mtok_usd = _rate("cache reads; null = billed at the input rate")
    cache_write_per_mtok_usd = _rate("cache writes; null = billed at the input rate")
    source = serializers.ChoiceField(  # type: ignore[assignment]  # as EstimateSerializer's
        ["catalogue", "override"], help_text="`override`: prices.toml; `catalogue`: genai-prices"
    )
    catalogue_version = serializers.CharField(help_text="the bundled genai-prices data")
    tiers = serializers.DictField(
        child=TierSerializer(many=True),
        required=False,
        help_text="extension: the catalogue's cliffs by component (input, output, "
        "cache_read, cache_write): above that many input tokens, every token of the "
        "component costs the tier's price",
    )
    catalogue_provider = serializers.CharField(required=False)
    catalogue_model = serializers.CharField(required=False)


RELEASE_ERRORS = error_responses(
    "agent.unknown", "persona.not_found", "hold.not_found", "hold.resolved"
)

CHECK_EXAMPLES = [
    OpenApiExample("estimate", value={"estimated_cost_usd": 0.05}, request_only=True),
    OpenApiExample(
        "estimate with a hold",
        value={"estimated_cost_usd": 0.05, "reserve": True, "hold_ttl_s": 300},
        request_only=True,
    ),
    OpenApiExample(
        "idempotent reserve (safe to retry)",
        value={"estimated_cost_usd": 0.05, "reserve": True, "request_id": "req_abc"},
        request_only=True,
    ),
    OpenApiExample(
        "allowed",
        value={
            "allowed": True,
            "reason": None,
            "remaining_usd": {"daily": 0.58},
            "hard_cap": True,
        },
        response_only=True,
    ),
]
CHARGE_EXAMPLES = [
    OpenApiExample(
        "charge",
        value={
            "surface": "openrouter",
            "model": "anthropic/claude-3.7-sonnet",
            "cost_usd": 0.0421,
            "request_id": "req_abc",
        },
        request_only=True,
    ),
    OpenApiExample(
        "charge settling a hold",
        value={
            "surface": "openrouter",
            "model": "anthropic/claude-3.7-sonnet",
            "cost_usd": 0.1834,
            "request_id": "req_def",
            "hold_id": "hold_iOEmf8_SwKXL9Sfu-r38NldX",
        },
        request_only=True,
    ),
]
