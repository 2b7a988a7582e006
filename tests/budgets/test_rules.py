"""The budget rules (budgets/rules.py): plain numbers in, decision and statuses out.

No database, no clock: every case is a table row of scopes (caps, usage) and an estimate.
Amounts are written in USD text and converted to exact nano-USD.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from budgets.rules import (
    Caps,
    Estimate,
    Scope,
    ScopeKind,
    Usage,
    decide,
    scope_status,
    tightest,
    window_status,
)
from hal0.money import to_nanos


def usd(text: str) -> int:
    return to_nanos(Decimal(text))


def scope(
    kind: ScopeKind = "persona", *, usage: dict[str, Any] | None = None, **caps: Any
) -> Scope:
    """``scope("agent", daily="1", hard_cap=False, usage={"daily": "0.5"})``: USD as text."""
    money = {"per_call", "daily", "monthly", "lifetime", "held"}
    converted: dict[str, Any] = {
        k: usd(v) if k in money and isinstance(v, str) else v for k, v in caps.items()
    }
    used: dict[str, Any] = {k: usd(v) if k in money else v for k, v in (usage or {}).items()}
    return Scope(kind, Caps(**converted), Usage(**used))


def est(nanos: str = "0", tokens: int = 0) -> Estimate:
    return Estimate(nanos=usd(nanos), tokens=tokens)


# ---------------------------------------------------------------------------------------
# Every rule, at its boundary: equal to the headroom fits, one unit more breaks.

RULES = [
    pytest.param(scope(per_call="0.25"), "0.25", 0, None, id="per-call-usd-equal-fits"),
    pytest.param(scope(per_call="0.25"), "0.250000001", 0, "per_call", id="per-call-usd-over"),
    pytest.param(
        scope(daily="1", usage={"daily": "0.75"}), "0.25", 0, None, id="daily-usd-equal-fits"
    ),
    pytest.param(
        scope(daily="1", usage={"daily": "0.75"}), "0.250000001", 0, "daily", id="daily-usd-over"
    ),
    pytest.param(
        scope(monthly="1", usage={"monthly": "0.75"}), "0.25", 0, None, id="monthly-usd-equal"
    ),
    pytest.param(
        scope(monthly="1", usage={"monthly": "0.75"}),
        "0.250000001",
        0,
        "monthly",
        id="monthly-usd-over",
    ),
    pytest.param(
        scope(lifetime="1", usage={"lifetime": "0.75"}), "0.25", 0, None, id="lifetime-usd-equal"
    ),
    pytest.param(
        scope(lifetime="1", usage={"lifetime": "0.75"}),
        "0.250000001",
        0,
        "lifetime",
        id="lifetime-usd-over",
    ),
    pytest.param(scope(per_call_tokens=100), "0", 100, None, id="per-call-tokens-equal"),
    pytest.param(
        scope(per_call_tokens=100), "0", 101, "per_call_tokens", id="per-call-tokens-over"
    ),
    pytest.param(
        scope(daily_tokens=1000, usage={"daily_tokens": 900}), "0", 100, None, id="daily-tok-equal"
    ),
    pytest.param(
        scope(daily_tokens=1000, usage={"daily_tokens": 900}),
        "0",
        101,
        "daily_tokens",
        id="daily-tokens-over",
    ),
    pytest.param(
        scope(monthly_tokens=1000, usage={"monthly_tokens": 900}),
        "0",
        101,
        "monthly_tokens",
        id="monthly-tokens-over",
    ),
    pytest.param(
        scope(lifetime_tokens=1000, usage={"lifetime_tokens": 900}),
        "0",
        100,
        None,
        id="lifetime-tokens-equal",
    ),
    pytest.param(
        scope(lifetime_tokens=1000, usage={"lifetime_tokens": 900}),
        "0",
        101,
        "lifetime_tokens",
        id="lifetime-tokens-over",
    ),
    # Holds count as spent, in USD and in tokens.
    pytest.param(
        scope(daily="1", usage={"daily": "0.5", "held": "0.25"}),
        "0.250000001",
        0,
        "daily",
        id="held-usd-counts",
    ),
    pytest.param(
        scope(daily_tokens=1000, usage={"held_tokens": 950}), "0", 51, "daily_tokens", id="held-tok"
    ),
    # A cap of zero is a cap: a free call fits, a paid one does not. No cap is no cap.
    pytest.param(scope(daily="0"), "0", 0, None, id="zero-cap-free-call-fits"),
    pytest.param(scope(daily="0"), "0.000000001", 0, "daily", id="zero-cap-paid-call-blocks"),
    pytest.param(scope(per_call_tokens=0), "0", 1, "per_call_tokens", id="zero-token-cap"),
    pytest.param(scope(), "1000000", 10**9, None, id="no-caps-allow-anything"),
    # Spend already past the cap (charges are never refused): nothing but free calls fit.
    pytest.param(
        scope(daily="1", usage={"daily": "1.5"}), "0", 0, None, id="overspent-free-call-fits"
    ),
    pytest.param(
        scope(daily="1", usage={"daily": "1.5"}), "0.000000001", 0, "daily", id="overspent-blocks"
    ),
    # The stop switch blocks whatever the estimate, even a free one, even warn-only.
    pytest.param(scope(paused=True), "0", 0, "paused", id="paused-blocks-free-call"),
    pytest.param(scope(paused=True, hard_cap=False), "0", 0, "paused", id="paused-warn-only"),
]


@pytest.mark.parametrize(("s", "estimate", "tokens", "limit"), RULES)
def test_each_rule_breaks_only_past_its_headroom(
    s: Scope, estimate: str, tokens: int, limit: str | None
) -> None:
    verdict = decide([s], est(estimate, tokens))
    assert verdict.limit == limit
    assert verdict.allowed is (limit is None)
    assert verdict.decision == ("allow" if limit is None else "block")
    assert verdict.scope == (None if limit is None else "persona")
    assert (verdict.reason is None) is (limit is None)


# ---------------------------------------------------------------------------------------
# Order: inside a scope hal0's order, then tokens; scopes in the given order.


def three_windows(**caps: Any) -> Scope:
    """Daily 3, monthly 4, lifetime 5 with 2.5, 2 and 1 left: the window order decides."""
    return scope(
        daily="3",
        monthly="4",
        lifetime="5",
        usage=dict(daily="0.5", monthly="2", lifetime="4"),
        **caps,
    )


ORDER = [
    pytest.param(
        [three_windows(per_call="1")],
        est("2.6"),
        ("block", "per_call", "persona"),
        id="per-call-before-every-window",
    ),
    pytest.param(
        [three_windows()],
        est("2.6"),
        ("block", "daily", "persona"),
        id="daily-before-monthly-and-lifetime",
    ),
    pytest.param(
        [three_windows()],
        est("2.2"),
        ("block", "monthly", "persona"),
        id="monthly-before-lifetime",
    ),
    pytest.param(
        [scope(lifetime="1", per_call_tokens=10)],
        est("2", 11),
        ("block", "lifetime", "persona"),
        id="usd-rules-before-token-rules",
    ),
    pytest.param(
        [scope(per_call_tokens=10, daily_tokens=5)],
        est("0", 11),
        ("block", "per_call_tokens", "persona"),
        id="per-call-tokens-before-token-windows",
    ),
    pytest.param(
        [scope(lifetime="1"), scope("agent", per_call="0.1")],
        est("2"),
        ("block", "lifetime", "persona"),
        id="persona-before-agent",
    ),
    pytest.param(
        [scope(), scope("agent", daily="1"), scope("platform", per_call="0.1")],
        est("2"),
        ("block", "daily", "agent"),
        id="agent-before-platform",
    ),
    pytest.param(
        [scope(), scope("agent"), scope("platform", monthly="1")],
        est("2"),
        ("block", "monthly", "platform"),
        id="platform-alone",
    ),
    pytest.param(
        [scope("run", per_call="0.1"), scope(per_call="0.1")],
        est("1"),
        ("block", "per_call", "run"),
        id="run-before-persona",
    ),
    pytest.param(
        [scope(daily="1"), scope("agent", paused=True)],
        est("2"),
        ("block", "daily", "persona"),
        id="an-earlier-scope-blocks-before-a-paused-one",
    ),
    pytest.param(
        [scope(daily="1", hard_cap=False), scope("agent", paused=True)],
        est("2"),
        ("block", "paused", "agent"),
        id="paused-agent-blocks-under-a-warn-only-persona",
    ),
]


@pytest.mark.parametrize(("scopes", "estimate", "expected"), ORDER)
def test_the_first_blocking_rule_in_order_decides(
    scopes: list[Scope], estimate: Estimate, expected: tuple[str, str, str]
) -> None:
    verdict = decide(scopes, estimate)
    assert (verdict.decision, verdict.limit, verdict.scope) == expected


# ---------------------------------------------------------------------------------------
# Blocking scopes win over warn-only ones, whatever their order.

PRECEDENCE = [
    pytest.param(
        [scope(daily="1", hard_cap=False), scope("agent", daily="1")],
        ("block", "daily", "agent", False),
        id="warn-only-persona-under-hard-agent-blocks-at-agent",
    ),
    pytest.param(
        [scope(daily="1"), scope("agent", daily="1", hard_cap=False)],
        ("block", "daily", "persona", False),
        id="hard-persona-under-warn-only-agent-blocks-at-persona",
    ),
    pytest.param(
        [scope(per_call="0.1", hard_cap=False), scope("agent"), scope("platform", lifetime="1")],
        ("block", "lifetime", "platform", False),
        id="warn-only-persona-per-call-loses-to-hard-platform",
    ),
    pytest.param(
        [scope(daily="1", hard_cap=False), scope("agent", monthly="1", hard_cap=False)],
        ("warn", "daily", "persona", True),
        id="two-warn-only-scopes-first-broken-rule-warns",
    ),
    pytest.param(
        [scope(hard_cap=False), scope("agent", monthly="1", hard_cap=False)],
        ("warn", "monthly", "agent", True),
        id="warn-only-agent-alone-warns",
    ),
]


@pytest.mark.parametrize(("scopes", "expected"), PRECEDENCE)
def test_a_blocking_rule_beats_any_warn_only_one(
    scopes: list[Scope], expected: tuple[str, str, str, bool]
) -> None:
    verdict = decide(scopes, est("2"))
    assert (verdict.decision, verdict.limit, verdict.scope, verdict.allowed) == expected
    # Every broken rule is kept, the decisive one among them.
    assert (verdict.scope, verdict.limit) in {(b.scope, b.limit) for b in verdict.breaches}


# ---------------------------------------------------------------------------------------
# Reason texts: the persona's are hal0's, byte for byte; other scopes are named.

REASONS = [
    pytest.param(
        scope(per_call="0.1"),
        est("0.2"),
        "estimate 0.2 USD exceeds the per-call cap of 0.1 USD",
        id="persona-per-call",
    ),
    pytest.param(
        scope(daily="1", usage={"daily": "0.7"}),
        est("0.5"),
        "estimate 0.5 USD exceeds the daily cap: 0.3 USD left of 1.0 USD",
        id="persona-daily",
    ),
    pytest.param(
        scope(lifetime="5", usage={"lifetime": "4.5"}),
        est("1"),
        "estimate 1.0 USD exceeds the lifetime cap: 0.5 USD left of 5.0 USD",
        id="persona-lifetime",
    ),
    pytest.param(
        scope("agent", daily="1", usage={"daily": "0.7"}),
        est("0.5"),
        "estimate 0.5 USD exceeds the agent daily cap: 0.3 USD left of 1.0 USD",
        id="agent-daily",
    ),
    pytest.param(
        scope("platform", monthly="100", usage={"monthly": "99"}),
        est("2"),
        "estimate 2.0 USD exceeds the platform monthly cap: 1.0 USD left of 100.0 USD",
        id="platform-monthly",
    ),
    pytest.param(
        scope("agent", per_call="0.1"),
        est("0.2"),
        "estimate 0.2 USD exceeds the agent per-call cap of 0.1 USD",
        id="agent-per-call",
    ),
    pytest.param(
        scope(daily_tokens=1000, usage={"daily_tokens": 800}),
        est("0", 500),
        "estimate 500 tokens exceeds the daily token cap: 200 tokens left of 1000 tokens",
        id="persona-daily-tokens",
    ),
    pytest.param(
        scope("agent", per_call_tokens=100),
        est("0", 500),
        "estimate 500 tokens exceeds the agent per-call token cap of 100 tokens",
        id="agent-per-call-tokens",
    ),
    pytest.param(
        scope("platform", paused=True),
        est("0"),
        "an operator paused the platform budget: no call is allowed until it is resumed",
        id="platform-paused",
    ),
]


@pytest.mark.parametrize(("s", "estimate", "reason"), REASONS)
def test_the_reason_names_the_scope_the_window_and_the_amounts(
    s: Scope, estimate: Estimate, reason: str
) -> None:
    assert decide([s], estimate).reason == reason


# ---------------------------------------------------------------------------------------
# Remaining: the smallest headroom over the scopes that cap each window.


def test_remaining_is_the_smallest_headroom_per_window_over_capping_scopes() -> None:
    verdict = decide(
        [
            scope(daily="5", usage={"daily": "1", "held": "1"}),
            scope("agent", daily="4", lifetime="10", usage={"daily": "2.5", "lifetime": "9"}),
            scope("platform", monthly="100", daily_tokens=50, usage={"held_tokens": 20}),
        ],
        est("0"),
    )
    assert verdict.remaining == {"daily": usd("1.5"), "monthly": usd("100"), "lifetime": usd("1")}
    assert verdict.remaining_tokens == {"daily": 30}
    assert [s.kind for s in verdict.scopes] == ["persona", "agent", "platform"]


def test_no_caps_anywhere_means_no_remaining_and_no_status() -> None:
    verdict = decide([scope(), scope("agent"), scope("platform")], est("5", 5))
    assert (verdict.remaining, verdict.remaining_tokens) == ({}, {})
    assert [s.status for s in verdict.scopes] == ["none", "none", "none"]
    assert verdict.breaches == ()


def test_remaining_never_goes_below_zero() -> None:
    verdict = decide([scope(daily="1", usage={"daily": "1.5", "held": "1"})], est("0"))
    assert verdict.remaining == {"daily": 0}
    (ws,) = [w for w in verdict.scopes[0].windows if w.cap is not None]
    assert (ws.remaining, ws.headroom) == (0, 0)


# ---------------------------------------------------------------------------------------
# Statuses: none | ok | warn (from warn_at x cap) | exceeded (cap reached).

STATUSES = [
    pytest.param(None, "5", None, "none", id="no-cap"),
    pytest.param("1", "0", None, "ok", id="nothing-spent"),
    pytest.param("1", "0.799999999", None, "ok", id="one-nano-below-warn"),
    pytest.param("1", "0.8", None, "warn", id="at-default-warn-at"),
    pytest.param("1", "0.5", "0.5", "warn", id="at-own-warn-at"),
    pytest.param("1", "0.999999999", None, "warn", id="one-nano-below-cap"),
    pytest.param("1", "1", None, "exceeded", id="at-cap"),
    pytest.param("1", "2", None, "exceeded", id="past-cap"),
    pytest.param("0", "0", None, "exceeded", id="cap-of-zero"),
]


@pytest.mark.parametrize(("cap", "spent", "warn_at", "status"), STATUSES)
def test_window_status(cap: str | None, spent: str, warn_at: str | None, status: str) -> None:
    w = Decimal(warn_at) if warn_at else Decimal("0.8")
    assert window_status(None if cap is None else usd(cap), usd(spent), w) == status


def test_a_scope_status_is_its_worst_window_usd_and_tokens() -> None:
    status = scope_status(
        scope(
            "agent",
            daily="1",
            monthly="10",
            monthly_tokens=100,
            usage={"daily": "0.1", "monthly": "0.1", "monthly_tokens": 100},
        )
    )
    assert status.window("daily").status == "ok"
    assert status.window("monthly", "tokens").status == "exceeded"
    assert status.status == "exceeded"
    assert status.window("daily").fraction == pytest.approx(0.1)
    assert status.window("lifetime").cap is None
    # Holds are shown beside the status, never in it.
    held = scope_status(scope(daily="1", usage={"daily": "0.1", "held": "0.9"}))
    assert held.status == "ok"
    assert held.window("daily").headroom == 0


def test_a_cap_of_zero_has_no_fraction_and_no_cap_has_none_of_it() -> None:
    status = scope_status(scope(daily="0", monthly="2", usage={"monthly": "1"}))
    assert status.window("daily").fraction is None
    assert status.window("monthly").fraction == 0.5
    assert status.window("lifetime").remaining is None


def test_tightest_is_the_scope_with_least_headroom() -> None:
    statuses = decide(
        [scope(daily="5"), scope("agent", daily="1"), scope("platform", daily="1")], est()
    ).scopes
    assert tightest(statuses, "daily") == "agent"  # first on a tie
    assert tightest(statuses, "monthly") is None


# ---------------------------------------------------------------------------------------
# One persona scope is exactly hal0's check.


@pytest.mark.parametrize(
    ("caps", "spent", "estimate", "allowed", "reason"),
    [
        pytest.param({}, "0", "1000", True, None, id="no-cap"),
        pytest.param(
            {"daily": "1"},
            "0.7",
            "0.5",
            False,
            "estimate 0.5 USD exceeds the daily cap: 0.3 USD left of 1.0 USD",
            id="daily-blocks",
        ),
        pytest.param(
            {"per_call": "0.1", "daily": "100"},
            "0",
            "0.2",
            False,
            "estimate 0.2 USD exceeds the per-call cap of 0.1 USD",
            id="per-call-independent-of-window",
        ),
        pytest.param(
            {"daily": "1", "hard_cap": False},
            "0.7",
            "0.5",
            True,
            "estimate 0.5 USD exceeds the daily cap: 0.3 USD left of 1.0 USD",
            id="warn-only-allows-with-reason",
        ),
    ],
)
def test_a_single_persona_scope_is_hal0s_check(
    caps: dict[str, Any], spent: str, estimate: str, allowed: bool, reason: str | None
) -> None:
    s = scope(usage={"daily": spent, "monthly": spent, "lifetime": spent}, **caps)
    verdict = decide([s], est(estimate))
    assert (verdict.allowed, verdict.reason) == (allowed, reason)
    decision = "allow" if reason is None else ("block" if not allowed else "warn")
    assert verdict.decision == decision
    if "daily" in caps:
        assert verdict.remaining == {"daily": max(0, usd(caps["daily"]) - usd(spent))}
