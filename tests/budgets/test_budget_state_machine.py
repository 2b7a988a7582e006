"""The budget services as a state machine (hypothesis ``RuleBasedStateMachine``).

Random sequences of check, check + reserve, charge (with and without a hold, replays,
conflicts), release, the clock moving on (holds expire, days and months turn) and PUT of
caps and timezone, on the real database (SQLite, or PostgreSQL with ``DATABASE_URL``) and
real files. Each step is compared with a small model of what the service promises; after
every step the invariants hold:

- every window counter equals the sum of its charges, and the spend and held amounts the
  service reports equal the model's sums;
- a hold resolves at most once, and the database agrees with the model on each hold;
- the JSONL mirror equals the database (``ledger verify`` finds nothing);
- a reserve is granted only when the estimate fits every hard cap's headroom (spent plus
  active holds); so, while every charge stays inside its hold, no hard-capped window's
  spent + held ever exceeds its cap.

Bounded: ``HAL0_STATE_MACHINE_EXAMPLES`` sequences (default 12) of up to
``HAL0_STATE_MACHINE_STEPS`` steps (default 25); README, "For developers".
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from budgets.ledger.reconcile import verify_persona
from budgets.models import Charge, Hold
from budgets.services import (
    budget_charge,
    budget_check,
    budget_put,
    budget_state,
    hold_release,
)
from budgets.services.counters import find_drift
from budgets.services.windows import windows_at
from hal0.errors import ApiError
from hal0.money import usd_number
from personas import paths
from personas.models import Agent, Persona
from personas.services import resolve_persona
from personas.toml_store import BudgetSpec, write_atomic

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES = int(os.environ.get("HAL0_STATE_MACHINE_EXAMPLES", "12"))
STEPS = int(os.environ.get("HAL0_STATE_MACHINE_STEPS", "25"))
USD = 1_000_000_000
# Round amounts, so estimates meet headrooms exactly (the comparison is strict).
AMOUNTS = st.sampled_from([0, 1, USD // 10, 3 * USD // 10, USD // 2, USD, 2 * USD])
CAPS = st.sampled_from([None, None, 0, USD // 2, USD, 2 * USD, 5 * USD])
ZONES = st.sampled_from([None, "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
# From a second to past a month: holds expire, days and months turn.
STEPS_OF_TIME = st.sampled_from([1, 59, 299, 301, 3_600, 6 * 3_600, 86_400, 32 * 86_400])
TTLS = st.sampled_from([60, 300, 3_600])
WINDOWS = ("daily", "monthly", "lifetime")
# The sequences share one test database: each gets a persona of its own.
_sequence = itertools.count()
explored = {"sequences": 0, "steps": 0, "capped": 0}


@dataclass
class ModelHold:
    amount: int
    expires_at: dt.datetime
    state: str = "active"  # active | settled | released
    resolutions: int = 0


@dataclass
class ModelCharge:
    body: tuple[Any, ...]
    cost: int
    ts: dt.datetime
    response: dict[str, Any]


@dataclass
class Model:
    spec: BudgetSpec = field(default_factory=BudgetSpec)
    charges: dict[str, ModelCharge] = field(default_factory=dict)
    holds: dict[str, ModelHold] = field(default_factory=dict)
    # True while nothing but charges inside their own active hold has spent money and no
    # PUT set a cap below what was spent and held: then spent + held stays within every
    # hard cap.
    within_holds: bool = True


class BudgetMachine(RuleBasedStateMachine):
    holds = Bundle("holds")
    request_ids = Bundle("request_ids")

    def __init__(self) -> None:
        super().__init__()
        n = next(_sequence)
        explored["sequences"] += 1
        self.now = dt.datetime(2026, 3, 28, 21, 0, tzinfo=dt.UTC)  # before Berlin's DST
        self.model = Model()
        agent, _ = Agent.objects.get_or_create(id="machine")
        slug = f"p{n}"
        write_atomic(
            paths.persona_file(agent.id, slug),
            f'[persona]\nid = "{slug}"\ndisplay_name = "P"\nsummary = ""\n\n'
            "[persona.budget]\nhard_cap = true\n",
        )
        self.pk = resolve_persona(agent, slug).pk
        self.ids = itertools.count()

    # -----------------------------------------------------------------------------------
    # the model's view

    def persona(self) -> Persona:
        return Persona.objects.select_related("agent").get(pk=self.pk)

    def spent(self) -> dict[str, int]:
        w = windows_at(self.model.spec.timezone or "UTC", self.now)
        costs = [(c.ts, c.cost) for c in self.model.charges.values()]
        return {
            "daily": sum(c for ts, c in costs if w.day_begin <= ts < w.day_end),
            "monthly": sum(c for ts, c in costs if w.month_begin <= ts < w.month_end),
            "lifetime": sum(c for _, c in costs),
        }

    def held(self) -> int:
        return sum(
            h.amount
            for h in self.model.holds.values()
            if h.state == "active" and h.expires_at > self.now
        )

    def cap(self, window: str) -> int | None:
        return self.model.spec.cap(f"{window}_usd")

    def breach(self, estimate: int) -> bool:
        """hal0's rules: per-call, then each window's headroom; strict comparisons."""
        per_call = self.model.spec.per_call_nanos
        if per_call is not None and estimate > per_call:
            return True
        spent, held = self.spent(), self.held()
        return any(
            (cap := self.cap(window)) is not None and estimate > max(0, cap - spent[window] - held)
            for window in WINDOWS
        )

    def new_request_id(self) -> str:
        return f"req-{next(self.ids)}"

    def charge(self, request_id: str, cost: int, hold_id: str | None) -> dict[str, Any]:
        return budget_charge(
            persona=self.persona(),
            surface="openrouter",
            model="m",
            cost_nanos=cost,
            request_id=request_id,
            hold_id=hold_id,
            actor="machine",
            now=self.now,
        )

    # -----------------------------------------------------------------------------------
    # rules

    @rule(estimate=AMOUNTS)
    def check(self, estimate: int) -> None:
        answer = budget_check(persona=self.persona(), estimate_nanos=estimate, now=self.now)

        breach = self.breach(estimate)
        assert answer["allowed"] is (not breach or not self.model.spec.hard_cap)
        assert (answer["limit"] is not None) is breach
        assert "hold" not in answer

    @rule(target=holds, estimate=AMOUNTS, ttl=TTLS)
    def reserve(self, estimate: int, ttl: int) -> str:
        breach = self.breach(estimate)
        answer = budget_check(
            persona=self.persona(),
            estimate_nanos=estimate,
            reserve=True,
            hold_ttl_s=ttl,
            actor="machine",
            now=self.now,
        )
        hard = self.model.spec.hard_cap
        assert answer["allowed"] is (not breach or not hard)
        if not answer["allowed"]:
            assert "hold" not in answer
            return "hold_never_taken"
        hold_id: str = answer["hold"]["id"]
        if hard:
            # The promise of holds: a granted reserve fits every hard cap's headroom, so it
            # never takes a window that was within its cap past it (a window already past
            # its cap, through charges made without holds, grants only a zero estimate).
            spent, held = self.spent(), self.held()
            for window in WINDOWS:
                cap = self.cap(window)
                assert cap is None or estimate <= max(0, cap - spent[window] - held)
        elif breach:
            self.model.within_holds = False
        self.model.holds[hold_id] = ModelHold(estimate, self.now + dt.timedelta(seconds=ttl))
        return hold_id

    @rule(target=request_ids, hold_id=consumes(holds), share=st.sampled_from([0, 1, 2, 3, 4]))
    def charge_with_hold(self, hold_id: str, share: int) -> str:
        hold = self.model.holds.get(hold_id)
        amount = hold.amount if hold else USD // 10
        cost = amount * share // 4  # 0 %, 25 %, 50 %, 75 % or 100 % of the estimate
        request_id = self.new_request_id()

        answer = self.charge(request_id, cost, hold_id)

        settles = hold is not None and hold.state == "active"
        assert answer["recorded"] is True
        assert answer["hold"]["settled"] is settles
        if settles and hold is not None:
            if hold.expires_at <= self.now:
                # Its headroom went back when it expired; someone may have taken it.
                self.model.within_holds = False
            hold.state = "settled"
            hold.resolutions += 1
        else:
            self.model.within_holds = self.model.within_holds and cost == 0
        self.model.charges[request_id] = ModelCharge(
            ("hold", cost, hold_id), cost, self.now, answer
        )
        return request_id

    @rule(target=request_ids, cost=AMOUNTS)
    def charge_without_hold(self, cost: int) -> str:
        request_id = self.new_request_id()

        answer = self.charge(request_id, cost, None)

        assert answer["recorded"] is True
        if cost:
            self.model.within_holds = False  # never refused: may go past a cap
        self.model.charges[request_id] = ModelCharge(("plain", cost, None), cost, self.now, answer)
        return request_id

    @rule(request_id=request_ids)
    def replay(self, request_id: str) -> None:
        first = self.model.charges[request_id]
        _, cost, hold_id = first.body
        rows = Charge.objects.count()

        answer = self.charge(request_id, cost, hold_id)

        assert answer == first.response  # the first answer, byte for byte
        assert Charge.objects.count() == rows  # and nothing recorded

    @rule(request_id=request_ids)
    def conflict(self, request_id: str) -> None:
        first = self.model.charges[request_id]
        _, cost, hold_id = first.body
        rows = Charge.objects.count()

        with pytest.raises(ApiError) as refused:
            self.charge(request_id, cost + 1, hold_id)

        assert refused.value.code == "charge.conflict"
        assert Charge.objects.count() == rows

    @rule(hold_id=holds)
    def release(self, hold_id: str) -> None:
        hold = self.model.holds.get(hold_id)
        if hold is None or hold.state != "active":
            with pytest.raises(ApiError) as refused:
                hold_release(persona=self.persona(), hold_id=hold_id, now=self.now)
            expected = "hold.not_found" if hold is None else "hold.resolved"
            assert refused.value.code == expected
            return

        answer = hold_release(persona=self.persona(), hold_id=hold_id, now=self.now)

        assert answer["hold"]["state"] == "released"
        hold.state = "released"
        hold.resolutions += 1

    @rule(seconds=STEPS_OF_TIME)
    def clock_moves_on(self, seconds: int) -> None:
        self.now += dt.timedelta(seconds=seconds)

    @rule(
        daily=CAPS,
        monthly=CAPS,
        lifetime=CAPS,
        per_call=CAPS,
        hard_cap=st.sampled_from([True, True, False]),
        tz=ZONES,
    )
    def put(
        self,
        daily: int | None,
        monthly: int | None,
        lifetime: int | None,
        per_call: int | None,
        hard_cap: bool,
        tz: str | None,
    ) -> None:
        spec = BudgetSpec(
            daily_nanos=daily,
            monthly_nanos=monthly,
            lifetime_nanos=lifetime,
            per_call_nanos=per_call,
            hard_cap=hard_cap,
            timezone=tz,
        )

        answer = budget_put(persona=self.persona(), spec=spec, actor="machine")

        assert answer["budget"] == spec.to_api()
        self.model.spec = spec
        # A new cap (or a new zone, which moves the day and month boundaries over charges
        # already made) may sit below what was spent and held. Checking now is enough: a
        # window that starts later holds only charges made later.
        spent, held = self.spent(), self.held()
        if any(
            (cap := self.cap(window)) is not None and spent[window] + held > cap
            for window in WINDOWS
        ):
            self.model.within_holds = False

    @precondition(lambda self: bool(self.model.holds))
    @rule()
    def unknown_hold_is_not_found(self) -> None:
        with pytest.raises(ApiError) as refused:
            hold_release(persona=self.persona(), hold_id="hold_nobody", now=self.now)
        assert refused.value.code == "hold.not_found"

    # -----------------------------------------------------------------------------------
    # invariants, after every step

    @invariant()
    def counters_equal_the_charges(self) -> None:
        explored["steps"] += 1
        persona = self.persona()
        assert list(find_drift(persona=persona)) == []
        state = budget_state(persona=persona, now=self.now)
        spent = self.spent()
        assert state["spend"] == {
            "today_usd": usd_number(spent["daily"]),
            "mtd_usd": usd_number(spent["monthly"]),
            "lifetime_usd": usd_number(spent["lifetime"]),
        }
        assert state["held_usd"] == usd_number(self.held())
        assert Charge.objects.filter(persona_id=self.pk).count() == len(self.model.charges)

    @invariant()
    def every_hold_resolves_at_most_once(self) -> None:
        rows = dict(Hold.objects.filter(persona_id=self.pk).values_list("id", "state"))
        assert rows == {hold_id: h.state for hold_id, h in self.model.holds.items()}
        assert all(h.resolutions <= 1 for h in self.model.holds.values())

    @invariant()
    def the_mirror_equals_the_database(self) -> None:
        report = verify_persona(self.persona())
        assert report.ok, report.summary()

    @invariant()
    def hard_caps_hold_while_charges_stay_inside_their_holds(self) -> None:
        if not (self.model.within_holds and self.model.spec.hard_cap):
            return
        spent, held = self.spent(), self.held()
        for window in WINDOWS:
            cap = self.cap(window)
            if cap is not None:
                explored["capped"] += 1
                assert spent[window] + held <= cap, (window, spent, held, cap)


def test_the_budget_services_keep_their_promises_in_any_order() -> None:
    run_state_machine_as_test(
        BudgetMachine,
        settings=hypothesis_settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,  # nothing written into the checkout
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # Reported with -s: how much the run explored.
    print(
        f"\nstate machine: {explored['sequences']} sequences, {explored['steps']} steps, "
        f"{explored['capped']} hard-capped windows checked within their holds"
    )
