"""Budget services: state, check (with optional hold), charge, hold release, PUT.

Keyword-only and one transaction each. The API views, the admin and the commands call
these and nothing lower. All money is integer nano-USD until the response is built.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from typing import Any, TypedDict

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from budgets import rules
from budgets.events import hooks as events
from budgets.ledger import writer
from budgets.models import Charge, Hold
from budgets.reports import refused
from budgets.runs import services as runs
from budgets.services import reserve as idempotent
from budgets.services import scopes
from budgets.services.counters import Held, WindowSpend, find_persona_with_spend, spend_and_held
from budgets.services.windows import Windows, windows_at
from hal0.errors import BadRequest, Conflict, NotFound
from hal0.money import LEDGER_MAX_NANOS, usd_number
from hal0.text import unprintable
from personas.ids import is_valid_id
from personas.models import Agent, Persona
from personas.services import find_persona, lock_persona, require_good_budget, write_budget
from personas.toml_store import BudgetSpec, budget_spec_from_persona


class BudgetState(TypedDict):
    budget: dict[str, Any]
    spend: dict[str, float]
    remaining: dict[str, float]
    held_usd: float
    status: str
    resets_at: dict[str, str]
    unpriced_charges: dict[str, int]


def iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).isoformat()


def held_nanos(persona: Persona, now: dt.datetime) -> int:
    """Active holds that have not expired: they count as spent for every check."""
    total = Hold.objects.filter(
        persona=persona, state=Hold.State.ACTIVE, expires_at__gt=now
    ).aggregate(total=Sum("amount_nanos"))["total"]
    return int(total or 0)


def persona_scope(spec: BudgetSpec, spend: WindowSpend, held: Held | int) -> rules.Scope:
    """The persona as the rules see it (``held`` in nano-USD alone, or with tokens)."""
    if isinstance(held, int):
        held = Held(held)
    usage = scopes.usage_of(spend, held.nanos, held.tokens)
    return rules.Scope("persona", scopes.caps_of(spec), usage)


def _state(spec: BudgetSpec, w: Windows, spend: WindowSpend, held: Held) -> BudgetState:
    status = rules.scope_status(persona_scope(spec, spend, held))
    remaining = {
        f"{ws.window}_usd": usd_number(ws.remaining)
        for ws in status.usd_windows()
        if ws.remaining is not None
    }
    return {
        "budget": spec.to_api(),
        "spend": {
            "today_usd": usd_number(spend.day),
            "mtd_usd": usd_number(spend.month),
            "lifetime_usd": usd_number(spend.lifetime),
        },
        "remaining": remaining,
        "held_usd": usd_number(held.nanos),
        "status": status.status,
        "resets_at": {"daily": iso(w.day_end), "monthly": iso(w.month_end)},
        # Charges whose cost is not known (no price for their tokens): counted apart,
        # never added to the spend as $0.00.
        "unpriced_charges": {
            "today": spend.day_unpriced,
            "month": spend.month_unpriced,
            "lifetime": spend.lifetime_unpriced,
        },
    }


def budget_state(*, persona: Persona, now: dt.datetime | None = None) -> BudgetState:
    """The GET shape: caps, spend per window, remaining headroom and extensions."""
    now = now or timezone.now()
    spec = budget_spec_from_persona(persona)
    w = windows_at(persona.effective_timezone, now)
    return _state(spec, w, *spend_and_held(persona, w, now))


# ---------------------------------------------------------------------------------------
# check


def evaluate(spec: BudgetSpec, spend: WindowSpend, held: int, estimate: int) -> rules.Verdict:
    """hal0's rules for one persona (the rules module with a single persona scope)."""
    scope = persona_scope(spec, spend, Held(held))
    return rules.decide([scope], rules.Estimate(nanos=estimate))


def _lock(persona: Persona) -> Persona:
    # Check-with-reserve, charge and release of one persona must see each other's
    # effects: on PostgreSQL this row lock serializes them (other personas run in
    # parallel); on SQLite the IMMEDIATE transaction already holds the write lock.
    # One plain query (the ORM's select_for_update().get() was a fifth of a charge).
    return lock_persona(persona.pk)


def _require_caps(persona: Persona) -> None:
    # A malformed file keeps the last good caps in force; a persona that never had good
    # caps has nothing to enforce, and allowing it would lift every cap.
    if not persona.has_good_budget:
        require_good_budget(persona)
        raise BadRequest("persona has no valid budget yet", code="persona.malformed")


def budget_check(
    *,
    persona: Persona,
    estimate_nanos: int,
    estimate_tokens: int = 1,
    reserve: bool = False,
    hold_ttl_s: int | None = None,
    actor: str = "",
    now: dt.datetime | None = None,
    key: idempotent.ReserveKey | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """May this persona spend ``estimate_nanos`` (and ``estimate_tokens``) under its run,
    its own, its agent's and the platform's caps? With ``reserve``, also take a hold.

    ``key`` (reserve only) makes the reserve idempotent: see ``budgets.services.reserve``.
    """
    _require_caps(persona)
    now = now or timezone.now()
    estimate = rules.Estimate(nanos=estimate_nanos, tokens=estimate_tokens)
    if not reserve:
        # Read-only: no lock, so checks never queue behind charges.
        return _check(persona, estimate, now, reserve=False, actor=actor, run_id=run_id)
    above = scopes.budgets_above(persona.agent_id)
    with transaction.atomic():
        row = _lock(persona)
        # After the persona's lock, in the one order (see scopes.lock_above).
        scopes.lock_above(persona.agent_id, *above)
        return _check(
            row,
            estimate,
            now,
            reserve=True,
            ttl=hold_ttl_s,
            actor=actor,
            key=key,
            run_id=run_id,
            above=above,
        )


def budget_check_by_id(
    *,
    agent_id: str,
    persona_id: str,
    estimate_nanos: int,
    estimate_tokens: int = 1,
    reserve: bool = False,
    hold_ttl_s: int | None = None,
    actor: str = "",
    now: dt.datetime | None = None,
    key: idempotent.ReserveKey | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """``budget_check`` for the persona with these ids, as the API asks it.

    Same answers and errors as ``find_persona`` then ``budget_check``; without
    ``reserve`` the persona, its spend and the agent's and the platform's spend (when
    either has a window cap) are read in one statement.
    """
    now = now or timezone.now()
    if reserve:
        persona = find_persona(agent_id, persona_id)
        return budget_check(
            persona=persona,
            estimate_nanos=estimate_nanos,
            estimate_tokens=estimate_tokens,
            reserve=True,
            hold_ttl_s=hold_ttl_s,
            actor=actor,
            now=now,
            key=key,
            run_id=run_id,
        )
    # The agent's and the platform's caps come from their files (a stat each while they
    # are unchanged), so their spend rides along the persona's statement: one statement
    # for a check at three scopes, as for persona caps alone.
    above: tuple[scopes.ScopeBudget, scopes.ScopeBudget] | None = None
    # An id that can name no agent builds no path: find_persona's 404 below says so.
    if is_valid_id(agent_id):
        # An unknown agent: find_persona's 404 below says so, in its order.
        with contextlib.suppress(Agent.DoesNotExist):
            above = scopes.budgets_above(agent_id)
    read = None if above is None else scopes.usage_read(agent_id, *above, now)
    persona, spend, more = find_persona_with_spend(agent_id, persona_id, now, read)
    _require_caps(persona)
    estimate = rules.Estimate(nanos=estimate_nanos, tokens=estimate_tokens)
    usage = None if read is None or more is None else read.usage(more)
    return _check(
        persona,
        estimate,
        now,
        reserve=False,
        spend_held=spend,
        actor=actor,
        run_id=run_id,
        above=above,
        usage=usage,
    )


def check_scopes(
    persona: Persona,
    spend: WindowSpend,
    held: Held,
    now: dt.datetime,
    above: tuple[scopes.ScopeBudget, scopes.ScopeBudget] | None = None,
    usage: tuple[rules.Usage | None, rules.Usage | None] | None = None,
) -> list[rules.Scope]:
    """The scopes of a persona's check in evaluation order: persona, agent, platform.

    The agent's and the platform's spend is read (one statement for both) only for a
    scope with a window cap; without one its usage does not matter to any rule.
    ``usage``: already read for these ``above`` (``scopes.usage_read``), no statement.
    """
    agent, platform = above or scopes.budgets_above(persona.agent_id)
    if usage is None:
        usage = scopes.scope_usage(
            persona.agent_id,
            agent if agent.has_window_caps else None,
            platform if platform.has_window_caps else None,
            now,
        )
    spec = budget_spec_from_persona(persona)
    return [
        persona_scope(spec, spend, held),
        rules.Scope("agent", agent.caps, usage[0] or rules.Usage()),
        rules.Scope("platform", platform.caps, usage[1] or rules.Usage()),
    ]


def _check(
    persona: Persona,
    estimate: rules.Estimate,
    now: dt.datetime,
    *,
    reserve: bool,
    ttl: int | None = None,
    actor: str = "",
    spend_held: tuple[WindowSpend, Held] | None = None,
    key: idempotent.ReserveKey | None = None,
    run_id: str | None = None,
    above: tuple[scopes.ScopeBudget, scopes.ScopeBudget] | None = None,
    usage: tuple[rules.Usage | None, rules.Usage | None] | None = None,
) -> dict[str, Any]:
    spec = budget_spec_from_persona(persona)
    # The run first (404 run.not_found, 409 run.closed), then the persona's spend.
    run, run_scope = (None, None) if run_id is None else runs.run_for_check_at(persona, run_id, now)
    if spend_held is None:
        spend_held = spend_and_held(persona, windows_at(persona.effective_timezone, now), now)
    spend, held = spend_held
    above = above or scopes.budgets_above(persona.agent_id)
    verdict = rules.decide(
        check_scopes(persona, spend, held, now, above, usage), estimate, run=run_scope
    )
    if not verdict.allowed:
        zones: dict[str, str] = {b.kind: b.timezone for b in above}
        events.after_refused_check(persona=persona, verdict=verdict, now=now, zones=zones)
        # Counted in memory, written in batches off the check path (budgets.reports.refused).
        refused.note(persona=persona, scope=verdict.scope, limit=verdict.limit, now=now)
    out: dict[str, Any] = {
        "allowed": verdict.allowed,
        "reason": verdict.reason,
        "remaining_usd": {k: usd_number(v) for k, v in verdict.remaining.items()},
        "hard_cap": spec.hard_cap,
        "decision": verdict.decision,
        "limit": verdict.limit,
        "scope": verdict.scope,
    }
    if verdict.remaining_tokens:
        out["remaining_tokens"] = dict(verdict.remaining_tokens)
    if reserve and not verdict.allowed:
        replay = idempotent.replay_refused(persona, key)
        if replay is not None:
            return replay
    if run is not None and run_scope is not None:
        # A refusal by the run's own limit parks it in needs_budget (once), before the
        # answer says which state it is in.
        runs.after_check(run, verdict, run_scope, persona=persona, actor=actor, now=now)
        out["run"] = runs.check_outcome(run, run_scope)
    if reserve and verdict.allowed:
        if spend.lifetime + held.nanos + estimate.nanos > LEDGER_MAX_NANOS:
            # Reached only without a hard lifetime cap (one would block first): the holds'
            # sum must stay a 64-bit integer.
            raise BadRequest(
                "estimated_cost_usd would take this persona's spend and holds past "
                f"{usd_number(LEDGER_MAX_NANOS):.0f} USD, the most its ledger holds",
                code="budget.invalid_estimate",
                details={"key": "estimated_cost_usd"},
            )
        seconds = ttl if ttl is not None else settings.HAL0_HOLD_TTL_S
        hold = Hold(
            id=idempotent.new_hold_id(),
            persona=persona,
            amount_nanos=estimate.nanos,
            amount_tokens=estimate.tokens,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=seconds),
            actor=actor[:200],
            run=run,  # reserves against the run's budget too
        )
        out["hold"] = _hold_json(hold)
        return idempotent.take_hold(hold, out, key)
    return out


def _hold_json(hold: Hold) -> dict[str, Any]:
    return {
        "id": hold.id,
        "amount_usd": usd_number(hold.amount_nanos),
        "expires_at": iso(hold.expires_at),
    }


# ---------------------------------------------------------------------------------------
# charge


def charge_body_sha256(
    *,
    surface: str,
    model: str,
    cost_nanos: int | None,
    request_id: str,
    hold_id: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    run_id: str | None = None,
) -> str:
    """Fingerprint of what a charge says, to tell a replay from a conflicting reuse.

    ``cost_nanos`` is the cost the client sent (``None`` when it sent tokens only), not
    a computed one: a price edit between a charge and its retry is still a replay.
    """
    fields: list[Any] = [surface, model, cost_nanos, request_id, hold_id]
    fields += [input_tokens, output_tokens]
    # The later fields only when set, so the charges recorded before them keep their
    # fingerprint (each adds a different number of entries: no two bodies collide).
    if cost_nanos is None or cache_read_tokens is not None or cache_write_tokens is not None:
        fields += [cache_read_tokens, cache_write_tokens]
    if run_id is not None:
        fields.append(run_id)
    canonical = json.dumps(fields, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _hold_not_found(hold_id: str) -> NotFound:
    return NotFound(
        f"no hold {hold_id[:64]!r} for this persona",
        code="hold.not_found",
        details={"hold_id": hold_id[:64]},
    )


def _hold_resolved(hold: Hold) -> Conflict:
    return Conflict(
        f"hold {hold.id!r} is already {hold.state}",
        code="hold.resolved",
        details={"hold_id": hold.id, "state": hold.state},
    )


def _hold_outcome(hold_id: str, hold: Hold | None, settles: bool) -> dict[str, Any]:
    """What a charge did to the hold it named, for its answer.

    The charge is recorded whatever the hold's state (the money is already spent); only
    an active hold is settled, so a hold still resolves at most once. Another persona's
    hold was never looked up, so it reads exactly like an unknown id.
    """
    if hold is None:
        state = "not_found"
    else:
        state = Hold.State.SETTLED.value if settles else str(hold.state)
    # Cut like the error details: an id is at most 200 characters, and no more than 64
    # of them are echoed back.
    return {"id": hold_id[:64], "settled": settles, "state": state}


def _charged_before(persona: Persona, request_id: str) -> bool:
    return (
        Charge.objects.filter(persona=persona, request_id=request_id)
        .exclude(source=Charge.Source.IMPORT)
        .exists()
    )


def budget_charge(
    *,
    persona: Persona,
    surface: str,
    model: str,
    cost_nanos: int | None,
    request_id: str,
    hold_id: str | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    cost_source: str = Charge.CostSource.REPORTED,
    price_version: str = "",
    run_id: str | None = None,
    actor: str = "",
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Record money already spent. Never refused for being over a cap, nor for its hold.

    ``cost_nanos`` is what the client reported, or what budgets.prices computed from its
    tokens (``cost_source`` says which), or ``None``: tokens of a model nobody prices,
    recorded all the same and counted as unpriced, never as $0.00.

    With ``hold_id`` an active hold of this persona is settled; a hold that is settled or
    released already, or is not this persona's, is left alone and the charge is recorded
    all the same. The answer's ``hold`` says which.

    Idempotent on (persona, request_id): the same body again returns the first response
    and records nothing; another body with that request_id is 409 ``charge.conflict``.
    """
    now = now or timezone.now()
    body_sha = charge_body_sha256(
        surface=surface,
        model=model,
        cost_nanos=cost_nanos if cost_source == Charge.CostSource.REPORTED else None,
        request_id=request_id,
        hold_id=hold_id,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
        run_id=run_id,
    )
    spent = cost_nanos or 0
    tokens = (input_tokens or 0) + (output_tokens or 0)
    with transaction.atomic():
        row = _lock(persona)
        hold: Hold | None = None
        if hold_id is not None:
            hold = Hold.objects.filter(pk=hold_id, persona=row).first()
        settles = hold is not None and hold.state == Hold.State.ACTIVE
        # Counted against its run whatever the run's state (closed, needs_budget).
        run = runs.run_for_charge(row, run_id, hold)
        # The agent's and the platform's caps: one stat each while their files are unchanged.
        above = scopes.budgets_above(row.agent_id)

        # The response is computed before the insert and stored on the row, because a
        # charge row is never updated afterwards (and a replay must answer the same).
        spec = budget_spec_from_persona(row)
        w = windows_at(row.effective_timezone, now)
        spend, held = spend_and_held(row, w, now)
        after = spend.plus(spent, tokens, 1 if cost_nanos is None else 0)
        if settles and hold is not None and hold.expires_at > now:
            held = Held(held.nanos - hold.amount_nanos, held.tokens - hold.amount_tokens)
        if after.lifetime > LEDGER_MAX_NANOS and not _charged_before(row, request_id):
            # The counters are 64-bit integers: refused rather than overflowed (a 500 that
            # loses the charge on PostgreSQL). A retry of a recorded charge still replays.
            raise BadRequest(
                "cost_usd would take this persona's recorded spend past "
                f"{usd_number(LEDGER_MAX_NANOS):.0f} USD, the most its ledger holds",
                code="budget.invalid_charge",
                details={"key": "cost_usd"},
            )
        response: dict[str, Any] = dict(_state(spec, w, after, held))
        response["recorded"] = True
        response["row"] = {
            "ts": iso(now),
            "surface": surface,
            "model": model,
            "cost_usd": None if cost_nanos is None else usd_number(cost_nanos),
            "request_id": request_id,
            "cost_source": str(cost_source),
        }
        if hold_id is not None:
            # Part of the stored answer, so a replay says what the first charge did.
            response["hold"] = _hold_outcome(hold_id, hold, settles)
        if run_id is not None or run is not None:
            response["run"] = runs.charge_outcome(run_id, run, spent, tokens, now)
        # Idempotency by the unique (persona, request_id) constraint, inside this
        # transaction: the insert does nothing when the request_id is taken (ON CONFLICT
        # DO NOTHING; no savepoint needed, the transaction stays usable).
        created = writer.insert_charges(
            row,
            [
                {
                    "ts": now,
                    "surface": surface,
                    "model": model,
                    "cost_nanos": cost_nanos,
                    "request_id": request_id,
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                    "cache_read_tokens": cache_read_tokens,
                    "cache_write_tokens": cache_write_tokens,
                    "cost_source": str(cost_source),
                    "price_version": price_version,
                    "hold": hold if settles else None,
                    "run": run,
                    "actor": actor[:200],
                    "body_sha256": body_sha,
                    # As JSON text: PostgreSQL's jsonb would give the keys back in its
                    # own order, and a replay must answer byte for byte.
                    "response": json.dumps(response, separators=(",", ":")),
                }
            ],
            source=Charge.Source.API,
            unless_request_id_taken=True,
            # The agent's and the platform's day and month, when cut in other zones.
            zones=scopes.zones_of(*above),
        )
        if not created:
            first = (
                Charge.objects.filter(persona=row, request_id=request_id)
                .exclude(source=Charge.Source.IMPORT)
                .first()
            )
            if first is None:  # cannot be: the constraint found a charge to conflict with
                raise RuntimeError(f"charge {request_id[:64]!r} neither inserted nor found")
            if first.body_sha256 != body_sha or first.response is None:
                raise Conflict(
                    f"request_id {request_id[:64]!r} was already charged with another body",
                    code="charge.conflict",
                    details={"request_id": request_id[:200], "seq": first.pk},
                )
            stored = first.response
            return dict(json.loads(stored) if isinstance(stored, str) else stored)
        # After the counters count this charge: the agent's and the platform's statuses
        # (a lock and one statement, only for a scope with a USD window cap), then the
        # once-per-window alerts of all three scopes, in this transaction.
        above_statuses = scopes.statuses_after_charge(
            row.agent_id,
            *above,
            now,
            settled=lambda kind, w, capped: events.announced(kind, row.agent_id, w, capped),
        )
        events.after_charge(persona=row, spec=spec, w=w, after=after, now=now, above=above_statuses)
        if run is not None:
            runs.bump(run, spent, tokens)
        if settles and hold is not None:
            # Under the persona's lock: the first charge to name an active hold settles it,
            # every later one finds it resolved and leaves it alone.
            Hold.objects.filter(pk=hold.pk).update(state=Hold.State.SETTLED, resolved_at=now)
    return response


# ---------------------------------------------------------------------------------------
# holds and PUT


def hold_release(
    *, persona: Persona, hold_id: str, actor: str = "", now: dt.datetime | None = None
) -> dict[str, Any]:
    """Give a hold's reservation back before it expires. A hold resolves at most once."""
    if unprintable(hold_id) is not None:
        # No hold id has one (they are URL-safe base64), and PostgreSQL cannot even
        # compare a text holding NUL: unknown, without a query.
        raise _hold_not_found(hold_id)
    now = now or timezone.now()
    with transaction.atomic():
        row = _lock(persona)
        hold = Hold.objects.filter(pk=hold_id, persona=row).first()
        if hold is None:
            raise _hold_not_found(hold_id)
        if hold.state != Hold.State.ACTIVE:
            raise _hold_resolved(hold)
        hold.state = Hold.State.RELEASED
        hold.resolved_at = now
        hold.save(update_fields=["state", "resolved_at"])
    return {"hold": {**_hold_json(hold), "state": hold.state}}


def budget_put(*, persona: Persona, spec: BudgetSpec, actor: str) -> BudgetState:
    """Replace the persona's ``[persona.budget]`` (through the one persona writer)."""
    updated = write_budget(persona, spec, actor=actor, via="api")
    return budget_state(persona=updated)


__all__ = [
    "BudgetState",
    "budget_charge",
    "budget_check",
    "budget_check_by_id",
    "budget_put",
    "budget_state",
    "evaluate",
    "hold_release",
]
