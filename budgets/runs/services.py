"""Run services: create, read, list, extend, close, and the charge's bump of a run.

Keyword-only, one transaction each, like the budget services. Changes of a run take the
persona's lock (``lock_persona``): a run belongs to one persona, and the check with
reserve and the charge of that persona hold the same lock, so a run's budget, counters
and holds are always read and changed in one order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet, Sum
from django.utils import timezone

from budgets import rules
from budgets.events import record_event
from budgets.models import Hold, Run, RunCheckpoint
from hal0.errors import BadRequest, Conflict, NotFound
from hal0.money import usd_number
from personas.models import Persona
from personas.services import lock_persona

# Client-chosen run ids: short, printable, safe in a URL path segment.
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
LIST_LIMIT_DEFAULT = 50
LIST_LIMIT_MAX = 200


@dataclass(frozen=True)
class RunBudget:
    """A run's limits, or additions to them; ``None`` = no limit (or nothing added)."""

    usd_nanos: int | None = None
    tokens: int | None = None
    seconds: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "usd": None if self.usd_nanos is None else usd_number(self.usd_nanos),
            "tokens": self.tokens,
            "seconds": self.seconds,
        }


def iso(ts: dt.datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(dt.UTC).isoformat()


def run_not_found(run_id: str) -> NotFound:
    # The same answer for an unknown id and for another persona's run.
    return NotFound(
        f"no run {run_id[:64]!r} for this persona",
        code="run.not_found",
        details={"run_id": run_id[:64]},
    )


def run_closed(run: Run) -> Conflict:
    return Conflict(
        f"run {run.run_id!r} is closed",
        code="run.closed",
        details={"run_id": run.run_id, "closed_at": iso(run.closed_at)},
    )


# ---------------------------------------------------------------------------------------
# numbers of a run


def elapsed_seconds(run: Run, now: dt.datetime) -> float:
    """Wall-clock seconds since the run was created (until it was closed, if it was)."""
    end = run.closed_at or now
    return max(0.0, (end - run.created_at).total_seconds())


def held_of(run: Run, now: dt.datetime) -> int:
    """Active, unexpired holds taken for this run: they count as spent for its checks."""
    return holds_of(run, now)[0]


def holds_of(run: Run, now: dt.datetime) -> tuple[int, int]:
    """(nano-USD, tokens) of the run's active, unexpired holds, in one query: a hold
    reserves its token estimate against the run's token budget as its USD against the
    USD budget."""
    sums = Hold.objects.filter(run=run, state=Hold.State.ACTIVE, expires_at__gt=now).aggregate(
        nanos=Sum("amount_nanos"), tokens=Sum("amount_tokens")
    )
    return int(sums["nanos"] or 0), int(sums["tokens"] or 0)


def _seconds_number(value: float) -> float | int:
    # Milliseconds are plenty for a task's clock; whole seconds print without ".0".
    rounded = round(value, 3)
    return int(rounded) if rounded == int(rounded) else rounded


def budget_of(run: Run) -> RunBudget:
    return RunBudget(run.budget_nanos, run.budget_tokens, run.budget_seconds)


def spent_json(run: Run, now: dt.datetime) -> dict[str, Any]:
    return {
        "usd": usd_number(run.spent_nanos),
        "tokens": run.spent_tokens,
        "seconds": _seconds_number(elapsed_seconds(run, now)),
    }


def remaining_json(run: Run, now: dt.datetime) -> dict[str, Any]:
    """max(0, budget - spent) per kind; ``None`` where the run has no such limit."""
    seconds = None
    if run.budget_seconds is not None:
        seconds = _seconds_number(max(0.0, run.budget_seconds - elapsed_seconds(run, now)))
    return {
        "usd": None
        if run.budget_nanos is None
        else usd_number(max(0, run.budget_nanos - run.spent_nanos)),
        "tokens": None
        if run.budget_tokens is None
        else max(0, run.budget_tokens - run.spent_tokens),
        "seconds": seconds,
    }


def run_json(
    run: Run, now: dt.datetime, *, held: int | None = None, checkpoints: bool = False
) -> dict[str, Any]:
    """The API's ``run`` object."""
    out: dict[str, Any] = {
        "id": run.run_id,
        "label": run.label,
        "state": run.state,
        "hard_cap": run.hard_cap,
        "budget": budget_of(run).as_json(),
        "spent": spent_json(run, now),
        "remaining": remaining_json(run, now),
        "held_usd": usd_number(held_of(run, now) if held is None else held),
        "charges": run.charge_count,
        "exhausted_limit": run.exhausted_limit or None,
        "created_at": iso(run.created_at),
        "closed_at": iso(run.closed_at),
    }
    if checkpoints:
        out["checkpoints"] = [checkpoint_json(c) for c in run.checkpoints.all()]
    return out


def checkpoint_json(checkpoint: RunCheckpoint) -> dict[str, Any]:
    return {
        "kind": checkpoint.kind,
        "at": iso(checkpoint.at),
        "actor": checkpoint.actor,
        "budget": checkpoint.budget,
        "spent": checkpoint.spent,
        "details": checkpoint.details,
    }


def _checkpoint(
    run: Run, kind: str, *, actor: str, now: dt.datetime, details: dict[str, Any] | None = None
) -> RunCheckpoint:
    return RunCheckpoint.objects.create(
        run=run,
        kind=kind,
        at=now,
        actor=actor[:200],
        budget=budget_of(run).as_json(),
        spent=spent_json(run, now),
        details=details or {},
    )


# ---------------------------------------------------------------------------------------
# create, read, list


def _create_sha256(label: str, budget: RunBudget, hard_cap: bool) -> str:
    canonical = json.dumps(
        [label, budget.usd_nanos, budget.tokens, budget.seconds, hard_cap], separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def run_create(
    *,
    persona: Persona,
    run_id: str | None,
    label: str = "",
    budget: RunBudget,
    hard_cap: bool = True,
    actor: str = "",
    now: dt.datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """Start a run; returns its ``run`` object and whether it was created just now.

    Idempotent on (persona, run_id) by the unique constraint: the same body again
    answers with the run as it is now and creates nothing; another body is 409
    ``run.conflict``. Without ``run_id`` one is generated.
    """
    now = now or timezone.now()
    sha = _create_sha256(label, budget, hard_cap)
    chosen = run_id if run_id is not None else "run_" + secrets.token_urlsafe(12)
    try:
        with transaction.atomic():
            run = Run.objects.create(
                persona=persona,
                run_id=chosen,
                label=label,
                hard_cap=hard_cap,
                budget_nanos=budget.usd_nanos,
                budget_tokens=budget.tokens,
                budget_seconds=budget.seconds,
                created_at=now,
                created_by=actor[:200],
                body_sha256=sha,
            )
            _checkpoint(run, RunCheckpoint.Kind.CREATED, actor=actor, now=now)
    except IntegrityError:
        existing = Run.objects.filter(persona=persona, run_id=chosen).first()
        if existing is None:  # the constraint found one: it cannot have gone since
            raise
        if existing.body_sha256 != sha:
            raise Conflict(
                f"run {chosen!r} already exists with another body",
                code="run.conflict",
                details={"run_id": chosen},
            ) from None
        return run_json(existing, now), False
    return run_json(run, now, held=0), True


def find_run(persona: Persona, run_id: str) -> Run:
    """This persona's run with that id, else 404 ``run.not_found``."""
    if not RUN_ID_RE.match(run_id):
        raise run_not_found(run_id)
    run = Run.objects.filter(persona=persona, run_id=run_id).first()
    if run is None:
        raise run_not_found(run_id)
    return run


def run_get(*, persona: Persona, run_id: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """The run's report: budget, spent, remaining, state and its checkpoints."""
    now = now or timezone.now()
    return run_json(find_run(persona, run_id), now, checkpoints=True)


def run_list(
    *,
    persona: Persona,
    state: str | None = None,
    limit: int = LIST_LIMIT_DEFAULT,
    after: int | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """This persona's runs, newest first, ``limit`` a page; ``next`` continues the list."""
    now = now or timezone.now()
    qs: QuerySet[Run] = Run.objects.filter(persona=persona).order_by("-id")
    if state is not None:
        qs = qs.filter(state=state)
    if after is not None:
        qs = qs.filter(id__lt=after)
    page = list(qs[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    held = _held_by_run([r.pk for r in page], now)
    return {
        "runs": [run_json(r, now, held=held.get(r.pk, 0)) for r in page],
        "next": page[-1].pk if more and page else None,
    }


def _held_by_run(pks: list[int], now: dt.datetime) -> dict[int, int]:
    rows = (
        Hold.objects.filter(run_id__in=pks, state=Hold.State.ACTIVE, expires_at__gt=now)
        .values("run_id")
        .annotate(total=Sum("amount_nanos"))
    )
    return {int(r["run_id"]): int(r["total"] or 0) for r in rows}


# ---------------------------------------------------------------------------------------
# extend and close


def extended_total(budget: int | None, used: int | float, added: int) -> int:
    """omk's rule: ``max(budget, used) + added``. Extending never hands back overspend:
    a run that went past its budget gets ``added`` on top of what it used. A run with no
    limit of that kind gets ``used + added``: from now on it has one."""
    base = used if budget is None else max(budget, used)
    return int(base) + added


def run_extend(
    *,
    persona: Persona,
    run_id: str,
    added: RunBudget,
    actor: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Add to a run's limits; a ``needs_budget`` run becomes ``active`` again. Audited."""
    now = now or timezone.now()
    if added.usd_nanos is None and added.tokens is None and added.seconds is None:
        raise BadRequest(
            "say what to add: usd, tokens and/or seconds",
            code="run.invalid_extension",
            details={},
        )
    with transaction.atomic():
        lock_persona(persona.pk)
        run = find_run(persona, run_id)
        if run.state == Run.State.CLOSED:
            raise run_closed(run)
        before = budget_of(run)
        if added.usd_nanos is not None:
            run.budget_nanos = extended_total(run.budget_nanos, run.spent_nanos, added.usd_nanos)
        if added.tokens is not None:
            run.budget_tokens = extended_total(run.budget_tokens, run.spent_tokens, added.tokens)
        if added.seconds is not None:
            # Time used is the clock since creation, in whole seconds rounded up, so an
            # extension of 60 s always gives 60 s more from now at least.
            used = -int(-elapsed_seconds(run, now) // 1)
            run.budget_seconds = extended_total(run.budget_seconds, used, added.seconds)
        reactivated = run.state == Run.State.NEEDS_BUDGET
        if reactivated:
            run.state = Run.State.ACTIVE
            run.exhausted_limit = ""
        run.save(
            update_fields=[
                "budget_nanos",
                "budget_tokens",
                "budget_seconds",
                "state",
                "exhausted_limit",
            ]
        )
        details = {
            "added": added.as_json(),
            "before": before.as_json(),
            "reactivated": reactivated,
        }
        _checkpoint(run, RunCheckpoint.Kind.EXTENDED, actor=actor, now=now, details=details)
        record_event(
            type="run.extended",
            scope_kind="run",
            agent_id=persona.agent_id,
            persona_id=persona.slug,
            message=(
                f"run {run.run_id!r} of {persona.agent_id}/{persona.slug} extended by "
                f"{actor[:200]}" + (": it is active again" if reactivated else "")
            ),
            cap_nanos=run.budget_nanos,
            spent_nanos=run.spent_nanos,
            data={
                "run_id": run.run_id,
                "label": run.label,
                "actor": actor[:200],
                **details,
                "budget": budget_of(run).as_json(),
                "spent": spent_json(run, now),
            },
            now=now,
        )
    return run_json(run, now, checkpoints=True)


def run_close(
    *, persona: Persona, run_id: str, actor: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Close a run: later checks naming it are 409 ``run.closed``; charges still count.

    Closing a closed run changes nothing and answers the same (a retried close is safe).
    """
    now = now or timezone.now()
    with transaction.atomic():
        lock_persona(persona.pk)
        run = find_run(persona, run_id)
        if run.state != Run.State.CLOSED:
            run.state = Run.State.CLOSED
            run.closed_at = now
            run.save(update_fields=["state", "closed_at"])
            _checkpoint(run, RunCheckpoint.Kind.CLOSED, actor=actor, now=now)
    return run_json(run, now, checkpoints=True)


# ---------------------------------------------------------------------------------------
# checks


def run_scope(
    run: Run,
    now: dt.datetime,
    *,
    held: int | None = None,
    holds: tuple[int, int] | None = None,
) -> rules.RunScope:
    """The rules' view of a run at ``now`` (``holds``: its holds' sums, already read)."""
    exhausted = run.exhausted_limit if run.state == Run.State.NEEDS_BUDGET else ""
    if holds is not None:
        held_nanos, held_tokens = holds
    else:
        held_nanos, held_tokens = holds_of(run, now) if held is None else (held, 0)
    return rules.RunScope(
        usd=run.budget_nanos,
        tokens=run.budget_tokens,
        seconds=run.budget_seconds,
        hard_cap=run.hard_cap,
        spent=run.spent_nanos,
        spent_tokens=run.spent_tokens,
        elapsed=elapsed_seconds(run, now),
        held=held_nanos,
        held_tokens=held_tokens,
        exhausted=exhausted or None,
    )


@lru_cache(maxsize=4)
def _run_and_holds_sql(vendor: str) -> str:
    """The run's row and its active holds' sums. Only quoted constant identifiers are
    formatted in; values are parameters."""
    qn = connection.ops.quote_name
    run_t, hold_t = qn(Run._meta.db_table), qn(Hold._meta.db_table)
    active = (
        f"FROM {hold_t} h WHERE h.{qn(Hold._meta.get_field('run').column)} = r.{qn('id')} "
        f"AND h.{qn('state')} = %s AND h.{qn('expires_at')} > %s"
    )
    return (
        f"SELECT r.*, (SELECT COALESCE(SUM(h.{qn('amount_nanos')}), 0) {active}) AS held_n, "  # noqa: S608
        f"(SELECT COALESCE(SUM(h.{qn('amount_tokens')}), 0) {active}) AS held_t "
        f"FROM {run_t} r WHERE r.{qn(Run._meta.get_field('persona').column)} = %s "
        f"AND r.{qn(Run._meta.get_field('run_id').column)} = %s"
    )


def run_for_check_at(persona: Persona, run_id: str, now: dt.datetime) -> tuple[Run, rules.RunScope]:
    """The run a check names (404 ``run.not_found``, 409 ``run.closed``) and the rules'
    view of it, in one statement: a check's hot path, where the ORM's two queries (the
    run, then its holds) cost more than the rest of the check."""
    if not RUN_ID_RE.match(run_id):
        raise run_not_found(run_id)
    stamp = connection.ops.adapt_datetimefield_value(now)
    active = [Hold.State.ACTIVE, stamp]
    params = [*active, *active, persona.pk, run_id]
    # A raw queryset: the model's own converters turn the columns into field values.
    found = list(Run.objects.raw(_run_and_holds_sql(connection.vendor), params))
    if not found:
        raise run_not_found(run_id)
    run = found[0]
    if run.state == Run.State.CLOSED:
        raise run_closed(run)
    holds = (int(run.held_n), int(run.held_t))  # type: ignore[attr-defined]
    return run, run_scope(run, now, holds=holds)


def check_outcome(run: Run, scope: rules.RunScope) -> dict[str, Any]:
    """The ``run`` object of a check's answer: its state and what it may still use."""
    room = scope.headroom()
    usd, seconds = room["usd"], room["seconds"]
    return {
        "id": run.run_id,
        "state": run.state,
        "remaining": {
            "usd": None if usd is None else usd_number(int(usd)),
            "tokens": room["tokens"],
            "seconds": None if seconds is None else _seconds_number(float(seconds)),
        },
    }


def after_check(
    run: Run,
    verdict: rules.Verdict,
    scope: rules.RunScope,
    *,
    persona: Persona,
    actor: str,
    now: dt.datetime,
) -> None:
    """A check refused by one of the run's own limits parks the run in needs_budget.

    Exactly once, however many checks are refused at the same moment: the state changes
    by an UPDATE conditional on "active", and only the check whose UPDATE changed the row
    writes the checkpoint and the ``run.exhausted`` event (in the same transaction, so
    neither is lost nor written twice). Runs in the caller's transaction when there is
    one (a reserve), else in its own.
    """
    if verdict.allowed or verdict.scope != "run" or verdict.limit not in rules.RUN_LIMITS:
        return
    if run.state != Run.State.ACTIVE:
        return
    limit = str(verdict.limit)
    with transaction.atomic():
        changed = Run.objects.filter(pk=run.pk, state=Run.State.ACTIVE).update(
            state=Run.State.NEEDS_BUDGET, exhausted_limit=limit
        )
        if not changed:
            return
        run.state, run.exhausted_limit = Run.State.NEEDS_BUDGET, limit
        source = limit.removeprefix("run_")
        remaining = check_outcome(run, scope)["remaining"]
        _checkpoint(
            run,
            RunCheckpoint.Kind.EXHAUSTED,
            actor=actor,
            now=now,
            details={"limit": limit, "source": source, "remaining": remaining},
        )
        what = rules.RUN_LIMIT_LABELS[limit]
        record_event(
            type="run.exhausted",
            scope_kind="run",
            agent_id=persona.agent_id,
            persona_id=persona.slug,
            message=(
                f"run {run.run_id!r} of {persona.agent_id}/{persona.slug} ran out of its "
                f"{what}; checks naming it are refused until an operator extends it"
            ),
            cap_nanos=run.budget_nanos,
            spent_nanos=run.spent_nanos,
            data={
                "run_id": run.run_id,
                "label": run.label,
                "limit": limit,
                "source": source,
                "remaining": remaining,
                "budget": budget_of(run).as_json(),
                "spent": spent_json(run, now),
            },
            now=now,
        )


# ---------------------------------------------------------------------------------------
# charges


def run_for_charge(persona: Persona, run_id: str | None, hold: Hold | None) -> Run | None:
    """The run a charge counts against: the one it names, else its hold's run.

    Inside the charge's transaction, under the persona's lock. An unknown id gives
    ``None``: the charge is recorded all the same (the money is spent) and its answer
    says the run was not found.
    """
    if run_id is None:
        if hold is not None and hold.run_id is not None:
            return Run.objects.filter(pk=hold.run_id, persona=persona).first()
        return None
    if not RUN_ID_RE.match(run_id):
        return None
    return Run.objects.filter(persona=persona, run_id=run_id).first()


def charge_outcome(
    run_id: str | None, run: Run | None, cost_nanos: int, tokens: int, now: dt.datetime
) -> dict[str, Any]:
    """What a charge did to its run, for the charge's (stored) answer."""
    if run is None:
        return {"id": (run_id or "")[:64], "state": "not_found", "counted": False}
    after = Run(
        run_id=run.run_id,
        state=run.state,
        budget_nanos=run.budget_nanos,
        budget_tokens=run.budget_tokens,
        budget_seconds=run.budget_seconds,
        spent_nanos=run.spent_nanos + cost_nanos,
        spent_tokens=run.spent_tokens + tokens,
        created_at=run.created_at,
        closed_at=run.closed_at,
    )
    return {
        "id": run.run_id,
        "state": run.state,
        "counted": True,
        "spent": spent_json(after, now),
        "remaining": remaining_json(after, now),
    }


def bump(run: Run, cost_nanos: int, tokens: int) -> None:
    """Add a recorded charge to its run's counters (in the charge's transaction)."""
    Run.objects.filter(pk=run.pk).update(
        spent_nanos=F("spent_nanos") + cost_nanos,
        spent_tokens=F("spent_tokens") + tokens,
        charge_count=F("charge_count") + 1,
    )


# ---------------------------------------------------------------------------------------
# gauges for the admin


@dataclass(frozen=True)
class Gauge:
    """One of a run's three limits, as the admin draws it."""

    kind: str  # usd | tokens | seconds
    label: str
    spent: str
    budget: str | None  # None = no limit of this kind
    percent: float  # of the budget used, capped at 100 for the bar
    status: str  # none | ok | warn | exceeded


def gauges(run: Run, now: dt.datetime) -> list[Gauge]:
    """USD, tokens and wall-clock time of a run: used, budget, share and status."""
    seconds = elapsed_seconds(run, now)
    statuses = run_scope(run, now, held=0).statuses()
    rows: list[tuple[str, str, float, float | None, str, str | None]] = [
        (
            "usd",
            "USD",
            run.spent_nanos,
            run.budget_nanos,
            f"${usd_number(run.spent_nanos):,.4f}",
            None if run.budget_nanos is None else f"${usd_number(run.budget_nanos):,.4f}",
        ),
        (
            "tokens",
            "Tokens",
            run.spent_tokens,
            run.budget_tokens,
            f"{run.spent_tokens:,}",
            None if run.budget_tokens is None else f"{run.budget_tokens:,}",
        ),
        (
            "seconds",
            "Time",
            seconds,
            run.budget_seconds,
            _duration(seconds),
            None if run.budget_seconds is None else _duration(run.budget_seconds),
        ),
    ]
    out = []
    for kind, label, used, budget, used_text, budget_text in rows:
        if budget is None:
            percent = 0.0
        else:
            percent = 100.0 if budget == 0 else min(100.0, 100.0 * used / budget)
        out.append(Gauge(kind, label, used_text, budget_text, percent, statuses[kind]))
    return out


def _duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"
