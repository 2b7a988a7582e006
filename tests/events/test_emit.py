"""Budget events are written with the charge, check or change that caused them, once per
scope, window and window start."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from budgets.events.emit import seen
from budgets.events.models import Event
from budgets.services import budget_charge, budget_check, budget_put
from hal0.money import to_nanos
from personas.services import parse_budget_body

DAY1 = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
DAY2 = dt.datetime(2026, 3, 11, 0, 0, 1, tzinfo=dt.UTC)


def charge(persona: Any, usd: float, rid: str, now: dt.datetime = DAY1) -> dict[str, Any]:
    return budget_charge(
        persona=persona,
        surface="openrouter",
        model="m",
        cost_nanos=to_nanos(usd),
        request_id=rid,
        now=now,
    )


def types() -> list[str]:
    return list(Event.objects.order_by("id").values_list("type", flat=True))


def test_crossing_warn_at_writes_one_budget_warn_for_the_window(capped: Any) -> None:
    charge(capped, 0.5, "r1")
    assert types() == []
    charge(capped, 0.3, "r2")  # 0.8 of 1.0: warn_at reached exactly
    charge(capped, 0.05, "r3")
    assert types() == ["budget.warn"]
    event = Event.objects.get()
    assert (event.scope_kind, event.agent_id, event.persona_id) == ("persona", "hermes", "coder")
    assert (event.window, event.window_start) == ("daily", dt.date(2026, 3, 10))
    assert (event.cap_nanos, event.spent_nanos) == (to_nanos(1.0), to_nanos(0.8))
    assert event.resets_at == dt.datetime(2026, 3, 11, tzinfo=dt.UTC)
    assert event.message == (
        "persona hermes/coder is at 80 % of its daily cap: 0.8 USD spent of 1.0 USD"
    )


def test_the_memo_is_a_shortcut_not_the_guarantee(capped: Any) -> None:
    charge(capped, 0.9, "r1")
    seen.clear()  # as a second process that never saw the key
    charge(capped, 0.01, "r2")
    assert types() == ["budget.warn"]


def test_reaching_the_cap_writes_budget_exceeded_once(capped: Any) -> None:
    charge(capped, 0.85, "r1")
    charge(capped, 0.15, "r2")
    charge(capped, 0.5, "r3")
    assert types() == ["budget.warn", "budget.exceeded"]


def test_jumping_past_both_thresholds_writes_both(capped: Any) -> None:
    charge(capped, 2.0, "r1")
    assert types() == ["budget.warn", "budget.exceeded"]


def test_the_next_window_gets_its_own_events(capped: Any) -> None:
    charge(capped, 0.9, "r1", DAY1)
    charge(capped, 0.9, "r2", DAY2)
    warns = Event.objects.filter(type="budget.warn").order_by("id")
    assert [e.window_start for e in warns] == [dt.date(2026, 3, 10), dt.date(2026, 3, 11)]


def test_a_replayed_charge_writes_no_event(capped: Any) -> None:
    charge(capped, 0.9, "r1")
    Event.objects.all().delete()
    seen.clear()
    charge(capped, 0.9, "r1")  # same request_id and body: a replay, nothing recorded
    assert types() == []


@pytest.mark.django_db(transaction=True)
def test_an_event_is_never_written_when_its_transaction_rolls_back(capped: Any) -> None:
    class Crash(Exception):
        pass

    inside: list[str] = []

    def charge_then_crash() -> None:
        with transaction.atomic():
            charge(capped, 0.9, "r1")
            inside.extend(types())
            raise Crash

    with pytest.raises(Crash):
        charge_then_crash()
    assert inside == ["budget.warn"]  # written inside the transaction...
    assert types() == []  # ...and gone with it
    # The process did not remember a key it never committed: the next charge writes it.
    charge(capped, 0.9, "r2")
    assert types() == ["budget.warn"]


@pytest.mark.django_db(transaction=True)  # real commits, so the process memo fills
def test_a_refused_check_writes_one_budget_blocked_then_no_more_writes(capped: Any) -> None:
    charge(capped, 0.95, "r1")
    Event.objects.all().delete()
    budget_check(persona=capped, estimate_nanos=to_nanos(0.1), now=DAY1)
    event = Event.objects.get()
    assert (event.type, event.window, event.data) == ("budget.blocked", "daily", {"limit": "daily"})
    assert "a check was refused: estimate 0.1 USD exceeds the daily cap" in event.message
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            result = budget_check(persona=capped, estimate_nanos=to_nanos(0.1), now=DAY1)
            assert not result["allowed"]
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []
    assert Event.objects.count() == 1


def test_a_per_call_refusal_alerts_once_a_day(make_persona: Any) -> None:
    persona = make_persona(persona_id="coder", budget_toml="per_call_max_usd = 0.1\n")
    for now in (DAY1, DAY1, DAY2):
        budget_check(persona=persona, estimate_nanos=to_nanos(0.5), now=now)
    blocked = Event.objects.filter(type="budget.blocked").order_by("id")
    assert [(e.window, e.window_start) for e in blocked] == [
        ("per_call", dt.date(2026, 3, 10)),
        ("per_call", dt.date(2026, 3, 11)),
    ]


def test_a_warn_only_budget_is_never_blocked(make_persona: Any) -> None:
    persona = make_persona(persona_id="coder", budget_toml="daily_usd = 0.1\nhard_cap = false\n")
    assert budget_check(persona=persona, estimate_nanos=to_nanos(0.5), now=DAY1)["allowed"]
    assert not Event.objects.filter(type="budget.blocked").exists()


def test_budget_changed_once_per_change_from_the_api_writer(capped: Any) -> None:
    budget_put(persona=capped, spec=parse_budget_body({"daily_usd": 2.0}), actor="key:abc (ops)")
    budget_put(persona=capped, spec=parse_budget_body({"daily_usd": 2.0}), actor="key:abc (ops)")
    event = Event.objects.get()
    assert event.type == "budget.changed"
    assert event.data == {
        "actor": "key:abc (ops)",
        "via": "api",
        "before": {"daily_usd": 1.0, "hard_cap": True},
        "after": {"daily_usd": 2.0, "hard_cap": True},
    }


def test_a_hand_edit_of_the_file_is_a_budget_changed_too(capped: Any, data_dir: Any) -> None:
    from personas.services import find_persona

    path = data_dir / "agents/hermes/personas/coder.toml"
    path.write_text(path.read_text().replace("daily_usd = 1.0", "daily_usd = 3.0"))
    find_persona("hermes", "coder")
    event = Event.objects.get()
    assert (event.type, event.data["via"], event.data["actor"]) == (
        "budget.changed",
        "file",
        "file edit",
    )


def test_lowering_a_cap_under_the_spend_alerts_at_once(capped: Any) -> None:
    charge(capped, 0.5, "r1", dt.datetime.now(dt.UTC))
    budget_put(persona=capped, spec=parse_budget_body({"daily_usd": 0.4}), actor="ops")
    assert types() == ["budget.changed", "budget.warn", "budget.exceeded"]


def test_an_admin_edit_is_a_budget_changed_naming_the_admin(capped: Any) -> None:
    from personas.services import write_budget

    write_budget(capped, parse_budget_body({"daily_usd": 5}), actor="olivia", via="admin")
    event = Event.objects.get()
    assert (event.type, event.data["via"], event.data["actor"]) == (
        "budget.changed",
        "admin",
        "olivia",
    )
    assert event.message == "persona hermes/coder: caps changed by olivia (via admin)"


def test_a_paused_persona_alerts_blocked_once_a_day(make_persona: Any) -> None:
    persona = make_persona(persona_id="coder", budget_toml="paused = true\n")
    for _ in range(2):
        assert not budget_check(persona=persona, estimate_nanos=0, now=DAY1)["allowed"]
    event = Event.objects.get(type="budget.blocked")
    assert (event.window, event.window_start, event.data) == (
        "paused",
        dt.date(2026, 3, 10),
        {"limit": "paused"},
    )
    assert "an operator paused" in event.message


def test_agent_and_platform_cap_changes_are_budget_changed_of_their_scope(agent: Any) -> None:
    from personas.services.scopes import PLATFORM, agent_scope, write_scope_budget

    spec = parse_budget_body({"daily_usd": 50})
    write_scope_budget(agent_scope("hermes"), spec, actor="ops", via="api")
    write_scope_budget(PLATFORM, spec, actor="ops", via="cli")
    changed = Event.objects.filter(type="budget.changed").order_by("id")
    assert [(e.scope_kind, e.agent_id, e.persona_id) for e in changed] == [
        ("agent", "hermes", ""),
        ("platform", "", ""),
    ]
    assert changed[0].message == "agent hermes: caps changed by ops (via API)"
    assert changed[1].message == "the platform: caps changed by ops (via command line)"
