"""The budget rules: caps x spent x held x estimate -> decision, reason, status. Pure code.

One module decides allow/warn/block and every status for every scope and window, from
plain integers: no ORM, no settings, no clock (the caller cuts the windows at its own
``now`` and passes the sums in). The check service, the GET shapes, the admin's gauges,
banner and Spend page, alerts and metrics all ask it; none re-derives a status.

Vocabulary:

- A *scope* is one budget block: ``run`` | ``persona`` | ``agent`` | ``platform``. Scopes
  are evaluated in the order given (the service passes persona, agent, platform).
- A *rule* is one cap of a scope: the per-call caps (USD, tokens) and the window caps
  (daily, monthly, lifetime; USD, tokens), plus the stop switch ``paused``.
- Inside a scope the order is hal0's: per-call, daily, monthly, lifetime; then the same
  four for tokens. A paused scope blocks before any of them, whatever the estimate.
- A rule is *broken* when the estimate is strictly greater than what it allows (an
  estimate equal to the headroom fits). The first broken rule of a hard-capped scope
  blocks; with none, the first broken rule of a warn-only scope gives ``reason``,
  ``limit`` and ``scope`` and the decision is ``warn``. With a single persona scope this
  is exactly hal0's check.
- ``None`` is "no cap"; ``0`` is a real cap of zero (a free call fits it, a paid one not).

Statuses (per window, per scope): ``none`` (no cap) | ``ok`` | ``warn`` (spent reached
``warn_at`` x cap) | ``exceeded`` (spent reached the cap; a cap of zero is exceeded from
the start). A status looks at recorded spend only; holds are shown beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from hal0.money import usd_number

ScopeKind = Literal["run", "persona", "agent", "platform"]
Decision = Literal["allow", "warn", "block"]
Unit = Literal["usd", "tokens"]

DEFAULT_WARN_AT = Decimal("0.8")
# The windows in rule order, and their reason labels.
WINDOWS: tuple[str, ...] = ("daily", "monthly", "lifetime")
UNITS: tuple[Unit, ...] = ("usd", "tokens")
# The field of Caps and Usage that holds a window's cap or spend in a unit.
_FIELD: dict[tuple[str, str], str] = {
    (w, u): w if u == "usd" else f"{w}_tokens" for w in WINDOWS for u in UNITS
}
STATUS_ORDER = {"none": 0, "ok": 1, "warn": 2, "exceeded": 3}
PAUSED = "paused"


@dataclass(frozen=True)
class Caps:
    """One scope's budget block. Money in nano-USD; ``None`` = no cap, 0 = a cap of zero."""

    per_call: int | None = None
    daily: int | None = None
    monthly: int | None = None
    lifetime: int | None = None
    per_call_tokens: int | None = None
    daily_tokens: int | None = None
    monthly_tokens: int | None = None
    lifetime_tokens: int | None = None
    hard_cap: bool = True
    warn_at: Decimal | None = None  # None = DEFAULT_WARN_AT
    paused: bool = False

    def window_cap(self, window: str, unit: Unit) -> int | None:
        value: int | None = getattr(self, _FIELD[window, unit])
        return value

    @property
    def effective_warn_at(self) -> Decimal:
        return self.warn_at if self.warn_at is not None else DEFAULT_WARN_AT

    def per_call_cap(self, unit: Unit) -> int | None:
        return self.per_call if unit == "usd" else self.per_call_tokens

    @property
    def has_caps(self) -> bool:
        """Whether any rule of this scope can break (the stop switch included)."""
        units: tuple[Unit, ...] = UNITS
        windows = any(self.window_cap(w, u) is not None for w in WINDOWS for u in units)
        per_call = any(self.per_call_cap(u) is not None for u in units)
        return self.paused or windows or per_call


@dataclass(frozen=True)
class Usage:
    """What a scope has spent in its current windows, and its active holds."""

    daily: int = 0
    monthly: int = 0
    lifetime: int = 0
    daily_tokens: int = 0
    monthly_tokens: int = 0
    lifetime_tokens: int = 0
    held: int = 0
    held_tokens: int = 0

    def spent(self, window: str, unit: Unit) -> int:
        value: int = getattr(self, _FIELD[window, unit])
        return value

    def held_of(self, unit: Unit) -> int:
        return self.held if unit == "usd" else self.held_tokens


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    caps: Caps
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class Estimate:
    nanos: int = 0
    tokens: int = 0


@dataclass(frozen=True)
class WindowStatus:
    """One window of one scope in one unit, ready for a gauge, a GET shape or an alert."""

    window: str  # daily | monthly | lifetime
    unit: Unit
    cap: int | None
    spent: int
    held: int
    status: str  # none | ok | warn | exceeded
    # Share of the cap spent (1.0 = at the cap); None without a cap or with a cap of zero.
    fraction: float | None
    # max(0, cap - spent): hal0's GET ``remaining``. None without a cap.
    remaining: int | None
    # max(0, cap - spent - held): what a check may still reserve. None without a cap.
    headroom: int | None


@dataclass(frozen=True)
class ScopeStatus:
    kind: ScopeKind
    hard_cap: bool
    paused: bool
    warn_at: Decimal
    windows: tuple[WindowStatus, ...]  # USD daily, monthly, lifetime, then tokens

    @property
    def status(self) -> str:
        """The worst window status of this scope (USD and tokens)."""
        return worst(w.status for w in self.windows)

    @property
    def has_caps(self) -> bool:
        return any(w.cap is not None for w in self.windows)

    def window(self, window: str, unit: Unit = "usd") -> WindowStatus:
        return next(w for w in self.windows if w.window == window and w.unit == unit)

    def usd_windows(self) -> tuple[WindowStatus, ...]:
        return tuple(w for w in self.windows if w.unit == "usd")


@dataclass(frozen=True)
class Breach:
    """One broken rule: which scope, which limit, and the reason a client reads."""

    scope: ScopeKind
    limit: str  # per_call | daily | monthly | lifetime | per_call_tokens | ... | paused
    reason: str
    blocks: bool  # the scope is hard-capped (or paused)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    decision: Decision
    reason: str | None
    limit: str | None
    scope: ScopeKind | None
    # Per window, the smallest headroom (cap - spent - held, >= 0) over the scopes that
    # cap that window: what this caller may still spend. Only capped windows appear.
    remaining: dict[str, int]
    remaining_tokens: dict[str, int]
    # Every broken rule in evaluation order (the decisive one among them).
    breaches: tuple[Breach, ...]
    scopes: tuple[ScopeStatus, ...]


# ---------------------------------------------------------------------------------------
# Statuses


def window_status(cap: int | None, spent: int, warn_at: Decimal = DEFAULT_WARN_AT) -> str:
    """none (no cap) | ok | warn (from ``warn_at`` of the cap) | exceeded (cap reached)."""
    if cap is None:
        return "none"
    return _capped_status(cap, spent, _ratio(warn_at))


def _capped_status(cap: int, spent: int, ratio: tuple[int, int]) -> str:
    if spent >= cap:
        return "exceeded"
    # Compared exactly, in integers: 0.8 x 1.0 USD is 800,000,000 nano-USD, not
    # 799,999,999 (and a Decimal product per window was a tenth of a check's rules).
    numerator, denominator = ratio
    if spent * denominator >= numerator * cap:
        return "warn"
    return "ok"


@lru_cache(maxsize=256)
def _ratio(warn_at: Decimal) -> tuple[int, int]:
    """``warn_at`` as an exact fraction (a Decimal is one: 0.8 is 4/5)."""
    return warn_at.as_integer_ratio()


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=STATUS_ORDER.__getitem__, default="none")


def window(
    window: str, unit: Unit, cap: int | None, spent: int, held: int, warn_at: Decimal
) -> WindowStatus:
    """One window's status, remaining and headroom."""
    return _window(window, unit, cap, spent, held, _ratio(warn_at))


def _window(
    window: str, unit: Unit, cap: int | None, spent: int, held: int, ratio: tuple[int, int]
) -> WindowStatus:
    # Positional, in WindowStatus's field order (window, unit, cap, spent, held, status,
    # fraction, remaining, headroom): keywords made the rules of a check at three
    # scopes 4 us slower, 18 windows a check.
    if cap is None:
        return WindowStatus(window, unit, None, spent, held, "none", None, None, None)
    return WindowStatus(
        window,
        unit,
        cap,
        spent,
        held,
        _capped_status(cap, spent, ratio),
        spent / cap if cap else None,
        max(0, cap - spent),
        max(0, cap - spent - held),
    )


def scope_status(scope: Scope) -> ScopeStatus:
    """Every window of one scope, in USD then tokens (each named, not looked up: the rules
    run three scopes on every check)."""
    caps, usage = scope.caps, scope.usage
    warn_at = caps.effective_warn_at
    ratio = _ratio(warn_at)
    held, tokens = usage.held, usage.held_tokens
    windows = (
        _window("daily", "usd", caps.daily, usage.daily, held, ratio),
        _window("monthly", "usd", caps.monthly, usage.monthly, held, ratio),
        _window("lifetime", "usd", caps.lifetime, usage.lifetime, held, ratio),
        _window("daily", "tokens", caps.daily_tokens, usage.daily_tokens, tokens, ratio),
        _window("monthly", "tokens", caps.monthly_tokens, usage.monthly_tokens, tokens, ratio),
        _window("lifetime", "tokens", caps.lifetime_tokens, usage.lifetime_tokens, tokens, ratio),
    )
    return ScopeStatus(scope.kind, caps.hard_cap, caps.paused, warn_at, windows)


# ---------------------------------------------------------------------------------------
# Reasons. The persona's are hal0's texts byte for byte; other scopes say their name.


def _usd(nanos: int) -> str:
    return f"{usd_number(nanos)} USD"


def _named(kind: ScopeKind) -> str:
    return "" if kind == "persona" else f"{kind} "


def _per_call_reason(kind: ScopeKind, unit: Unit, estimate: int, cap: int) -> str:
    if unit == "usd":
        return f"estimate {_usd(estimate)} exceeds the {_named(kind)}per-call cap of {_usd(cap)}"
    return (
        f"estimate {estimate} tokens exceeds the {_named(kind)}per-call token cap of {cap} tokens"
    )


def _window_reason(
    kind: ScopeKind, unit: Unit, window: str, estimate: int, left: int, cap: int
) -> str:
    label = window
    if unit == "usd":
        return (
            f"estimate {_usd(estimate)} exceeds the {_named(kind)}{label} cap: "
            f"{_usd(left)} left of {_usd(cap)}"
        )
    return (
        f"estimate {estimate} tokens exceeds the {_named(kind)}{label} token cap: "
        f"{left} tokens left of {cap} tokens"
    )


def _paused_reason(kind: ScopeKind) -> str:
    return f"an operator paused the {kind} budget: no call is allowed until it is resumed"


# ---------------------------------------------------------------------------------------
# The decision


def breaches_of(scope: Scope, status: ScopeStatus, estimate: Estimate) -> list[Breach]:
    """The broken rules of one scope, in its rule order."""
    caps, kind = scope.caps, scope.kind
    blocks = caps.hard_cap
    found: list[Breach] = []
    if caps.paused:
        # The stop switch blocks even a warn-only scope: that is what it is for.
        found.append(Breach(kind, PAUSED, _paused_reason(kind), True))
    for unit in UNITS:
        amount = estimate.nanos if unit == "usd" else estimate.tokens
        suffix = "" if unit == "usd" else "_tokens"
        per_call = caps.per_call_cap(unit)
        if per_call is not None and amount > per_call:
            reason = _per_call_reason(kind, unit, amount, per_call)
            found.append(Breach(kind, "per_call" + suffix, reason, blocks))
        for w in status.windows:
            if w.unit != unit or w.headroom is None or w.cap is None:
                continue
            if amount > w.headroom:
                reason = _window_reason(kind, unit, w.window, amount, w.headroom, w.cap)
                found.append(Breach(kind, w.window + suffix, reason, blocks))
    return found


def _smallest(statuses: Sequence[ScopeStatus], unit: Unit) -> dict[str, int]:
    out: dict[str, int] = {}
    for window in WINDOWS:
        rooms = [
            w.headroom
            for s in statuses
            for w in s.windows
            if w.unit == unit and w.window == window and w.headroom is not None
        ]
        if rooms:
            out[window] = min(rooms)
    return out


def decide(scopes: Sequence[Scope], estimate: Estimate, *, run: RunScope | None = None) -> Verdict:
    """May a call estimated at ``estimate`` go ahead under ``scopes`` (in evaluation order)?

    Every broken rule is kept in ``breaches``; the decisive one is the first that blocks,
    else the first warn-only one. Comparisons are strict: an estimate equal to a headroom
    fits, one nano-USD (or one token) more does not. A ``run`` is the first scope of all;
    its budget is its own, so it never narrows ``remaining`` (the persona's windows).
    """
    statuses = tuple(scope_status(s) for s in scopes)
    breaches: list[Breach] = [] if run is None else run_breaches(run, estimate)
    for scope, status in zip(scopes, statuses, strict=True):
        breaches += breaches_of(scope, status, estimate)
    decisive = next((b for b in breaches if b.blocks), None)
    decision: Decision = "block"
    if decisive is None:
        decisive = breaches[0] if breaches else None
        decision = "allow" if decisive is None else "warn"
    return Verdict(
        allowed=decision != "block",
        decision=decision,
        reason=None if decisive is None else decisive.reason,
        limit=None if decisive is None else decisive.limit,
        scope=None if decisive is None else decisive.scope,
        remaining=_smallest(statuses, "usd"),
        remaining_tokens=_smallest(statuses, "tokens"),
        breaches=tuple(breaches),
        scopes=statuses,
    )


# ---------------------------------------------------------------------------------------
# Runs: one task's budget in USD, tokens and wall-clock seconds (DESIGN.md section 11)

RUN_LIMITS = ("run_usd", "run_tokens", "run_seconds")
RUN_LIMIT_LABELS = {
    "run_usd": "USD budget",
    "run_tokens": "token budget",
    "run_seconds": "time budget",
}


@dataclass(frozen=True)
class RunScope:
    """A run's budget and what it has used. ``None`` = no limit of that kind.

    ``seconds`` is the wall clock since the run was created (the caller reads the clock).
    ``exhausted`` is the limit that moved the run to needs_budget: until an extension,
    every check naming the run is refused by it, whatever the estimate.
    """

    usd: int | None = None
    tokens: int | None = None
    seconds: int | None = None
    hard_cap: bool = True
    spent: int = 0
    spent_tokens: int = 0
    elapsed: float = 0.0
    held: int = 0
    held_tokens: int = 0
    exhausted: str | None = None

    def headroom(self) -> dict[str, int | float | None]:
        """What the run may still use: max(0, budget - used - held) per kind."""
        return {
            "usd": None if self.usd is None else max(0, self.usd - self.spent - self.held),
            "tokens": None
            if self.tokens is None
            else max(0, self.tokens - self.spent_tokens - self.held_tokens),
            "seconds": None if self.seconds is None else max(0.0, self.seconds - self.elapsed),
        }

    def statuses(self) -> dict[str, str]:
        """none | ok | warn | exceeded per kind, at the default warn line."""
        return {
            "usd": window_status(self.usd, self.spent),
            "tokens": window_status(self.tokens, self.spent_tokens),
            "seconds": window_status(self.seconds, int(self.elapsed)),
        }


def _run_reason(limit: str, estimate: Estimate, run: RunScope) -> str:
    room = run.headroom()
    if limit == "run_usd":
        assert run.usd is not None
        return (
            f"estimate {_usd(estimate.nanos)} exceeds the run's USD budget: "
            f"{_usd(int(room['usd'] or 0))} left of {_usd(run.usd)}"
        )
    if limit == "run_tokens":
        return (
            f"estimate {estimate.tokens} tokens exceeds the run's token budget: "
            f"{room['tokens']} tokens left of {run.tokens} tokens"
        )
    return (
        f"the run's time budget of {run.seconds} s is used up ({run.elapsed:.0f} s since it began)"
    )


def run_breaches(run: RunScope, estimate: Estimate) -> list[Breach]:
    """The run's broken limits: USD, then tokens, then wall-clock time.

    Time has no estimate: it breaks once more seconds have passed than the budget has
    (a check at the very second it runs out still fits, like an estimate equal to the
    headroom).
    """
    if run.exhausted is not None:
        what = RUN_LIMIT_LABELS.get(run.exhausted, "budget")
        reason = (
            f"the run needs more budget: its {what} ran out; no call is allowed until an "
            "operator extends it"
        )
        return [Breach("run", run.exhausted, reason, True)]
    room = run.headroom()
    found: list[Breach] = []
    usd, tokens = room["usd"], room["tokens"]
    if usd is not None and estimate.nanos > usd:
        found.append(Breach("run", "run_usd", _run_reason("run_usd", estimate, run), run.hard_cap))
    if tokens is not None and estimate.tokens > tokens:
        reason = _run_reason("run_tokens", estimate, run)
        found.append(Breach("run", "run_tokens", reason, run.hard_cap))
    if run.seconds is not None and run.elapsed > run.seconds:
        reason = _run_reason("run_seconds", estimate, run)
        found.append(Breach("run", "run_seconds", reason, run.hard_cap))
    return found


def tightest(statuses: Sequence[ScopeStatus], window: str, unit: Unit = "usd") -> ScopeKind | None:
    """The scope with the least headroom on ``window`` (the first on a tie), or None."""
    best: tuple[int, ScopeKind] | None = None
    for s in statuses:
        w = s.window(window, unit)
        if w.headroom is not None and (best is None or w.headroom < best[0]):
            best = (w.headroom, s.kind)
    return None if best is None else best[1]
