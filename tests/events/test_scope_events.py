"""Budget events of the scopes above a persona: an agent's and the platform's windows
alert once per window like a persona's, and a check they refuse is one budget.blocked.

Real agent.toml / platform.toml files, the real database, real threads for the race.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from budgets.events.models import Event
from budgets.services import budget_charge, budget_check
from hal0.money import to_nanos
from personas.models import Persona
from tests.budgets.race_support import run_clients

pytestmark = pytest.mark.django_db

DAY1 = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
DAY2 = dt.datetime(2026, 3, 11, 12, 0, tzinfo=dt.UTC)
MakePersona = Callable[..., Persona]
_ids = itertools.count(1)


def agent_caps(data_dir: Path, lines: str, agent_id: str = "hermes") -> None:
    (data_dir / "agents" / agent_id / "agent.toml").write_text(f"[agent.budget]\n{lines}")


def platform_caps(data_dir: Path, lines: str) -> None:
    (data_dir / "platform.toml").write_text(f"[platform.budget]\n{lines}")


def charge(persona: Persona, usd: float, now: dt.datetime = DAY1) -> dict[str, Any]:
    return budget_charge(
        persona=persona,
        surface="openrouter",
        model="m",
        cost_nanos=to_nanos(usd),
        request_id=f"r{next(_ids)}",
        now=now,
    )


def alerts() -> Any:
    """The once-per-window events (a hand edit of agent.toml is a budget.changed too)."""
    return Event.objects.exclude(type="budget.changed").order_by("id")


def events(kind: str | None = None) -> list[tuple[str, str, str, str]]:
    rows = alerts()
    if kind is not None:
        rows = rows.filter(scope_kind=kind)
    return [(e.type, e.scope_kind, e.agent_id, e.persona_id) for e in rows]


def test_an_agents_window_alerts_once_across_its_personas(
    make_persona: MakePersona, data_dir: Path
) -> None:
    a, b = make_persona("hermes", "a", ""), make_persona("hermes", "b", "")
    agent_caps(data_dir, "daily_usd = 1.0\n")
    charge(a, 0.5)
    charge(b, 0.2)
    assert events() == []  # 0.7 of 1.0
    charge(a, 0.1)  # 0.8: warn_at reached exactly, by a's charge after b's
    charge(b, 0.1)
    assert events() == [("budget.warn", "agent", "hermes", "")]
    warn = alerts().get()
    assert (warn.window, warn.window_start) == ("daily", dt.date(2026, 3, 10))
    assert (warn.cap_nanos, warn.spent_nanos) == (to_nanos(1.0), to_nanos(0.8))
    assert warn.resets_at == dt.datetime(2026, 3, 11, tzinfo=dt.UTC)
    assert warn.message == "agent hermes is at 80 % of its daily cap: 0.8 USD spent of 1.0 USD"
    charge(b, 0.1)  # 1.0: the cap
    charge(a, 0.3)
    assert events() == [
        ("budget.warn", "agent", "hermes", ""),
        ("budget.exceeded", "agent", "hermes", ""),
    ]


def test_an_agents_alert_counts_a_persona_whose_counters_were_dropped(
    make_persona: MakePersona, data_dir: Path
) -> None:
    """The charge's read of the agent's spend names a persona without counters (dropped
    by an import) and sums its charges apart: the warn comes at 80 % all the same."""
    from budgets.services import counters

    a, b = make_persona("hermes", "a", ""), make_persona("hermes", "b", "")
    agent_caps(data_dir, "daily_usd = 1.0\n")
    charge(a, 0.7)
    counters.invalidate(a)
    charge(b, 0.05)
    assert events() == []  # 0.75 of 1.0
    charge(b, 0.05)  # 0.8, of which 0.7 only in a's charges
    assert events() == [("budget.warn", "agent", "hermes", "")]
    assert alerts().get().spent_nanos == to_nanos(0.8)


def test_another_agents_spend_does_not_count(make_persona: MakePersona, data_dir: Path) -> None:
    mine, theirs = make_persona("hermes", "a", ""), make_persona("other", "a", "")
    agent_caps(data_dir, "daily_usd = 1.0\n")
    charge(theirs, 5.0)
    charge(mine, 0.5)
    assert events() == []


def test_the_platform_alerts_once_across_agents_and_the_next_window_again(
    make_persona: MakePersona, data_dir: Path
) -> None:
    a, b = make_persona("hermes", "a", ""), make_persona("other", "b", "")
    platform_caps(data_dir, "daily_usd = 2.0\nwarn_at = 0.5\n")
    charge(a, 0.6)
    charge(b, 0.6)  # 1.2 of 2.0, past the platform's own warn_at of 50 %
    charge(a, 1.0)  # 2.2: exceeded
    charge(b, 1.0, DAY2)  # a new day: 1.0 of 2.0, warn again
    rows = alerts()
    assert [(e.type, e.scope_kind, e.agent_id, e.persona_id, e.window_start) for e in rows] == [
        ("budget.warn", "platform", "", "", dt.date(2026, 3, 10)),
        ("budget.exceeded", "platform", "", "", dt.date(2026, 3, 10)),
        ("budget.warn", "platform", "", "", dt.date(2026, 3, 11)),
    ]
    assert rows[0].message == "the platform is at 60 % of its daily cap: 1.2 USD spent of 2.0 USD"


def test_each_scope_alerts_for_itself_with_its_own_caps(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "daily_usd = 1.0\n")
    agent_caps(data_dir, "monthly_usd = 10.0\n")
    platform_caps(data_dir, "lifetime_usd = 1.0\nhard_cap = false\n")
    charge(coder, 0.9)
    got = {(e.type, e.scope_kind, e.window) for e in alerts()}
    assert got == {
        ("budget.warn", "persona", "daily"),  # 0.9 of 1.0
        ("budget.warn", "platform", "lifetime"),  # 0.9 of 1.0, warn-only alerts too
    }  # the agent's month: 0.9 of 10.0, nothing


def test_an_agents_window_starts_in_the_agents_timezone(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "")
    agent_caps(data_dir, 'daily_usd = 1.0\ntimezone = "Pacific/Kiritimati"\n')
    # 12:00 UTC on 10 March is 02:00 on 11 March at UTC+14.
    charge(coder, 0.9)
    warn = alerts().get()
    assert (warn.scope_kind, warn.window_start) == ("agent", dt.date(2026, 3, 11))
    assert warn.resets_at == dt.datetime(2026, 3, 11, 10, 0, tzinfo=dt.UTC)


def test_a_charge_in_a_rolled_back_transaction_leaves_no_scope_event(
    make_persona: MakePersona, data_dir: Path
) -> None:
    from django.db import transaction

    coder = make_persona("hermes", "coder", "")
    agent_caps(data_dir, "daily_usd = 1.0\n")
    inside: list[tuple[str, str, str, str]] = []

    def charge_then_fail() -> None:
        with transaction.atomic():
            charge(coder, 0.9)
            inside.extend(events())
            raise RuntimeError("the caller's transaction fails after the charge")

    with pytest.raises(RuntimeError):
        charge_then_fail()
    assert inside == [("budget.warn", "agent", "hermes", "")]
    assert events() == []


# ---------------------------------------------------------------------------------------
# Refused checks


@pytest.mark.django_db(transaction=True)  # real commits, so the process memo fills
def test_a_check_refused_by_the_agent_is_one_blocked_event_for_every_persona(
    make_persona: MakePersona, data_dir: Path
) -> None:
    a, b = make_persona("hermes", "a", ""), make_persona("hermes", "b", "")
    agent_caps(data_dir, "daily_usd = 1.0\n")
    charge(a, 0.95)
    alerts().delete()
    for persona in (a, b, a, b):
        result = budget_check(persona=persona, estimate_nanos=to_nanos(0.1), now=DAY1)
        assert (result["allowed"], result["scope"]) == (False, "agent")
    blocked = alerts().get()
    assert (blocked.type, blocked.scope_kind, blocked.agent_id, blocked.persona_id) == (
        "budget.blocked",
        "agent",
        "hermes",
        "",
    )
    assert (blocked.window, blocked.window_start, blocked.data) == (
        "daily",
        dt.date(2026, 3, 10),
        {"limit": "daily"},
    )
    assert blocked.message.startswith("agent hermes: a check was refused: estimate 0.1 USD")


def test_a_check_refused_by_the_platform_is_a_platform_blocked_event(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "")
    platform_caps(data_dir, 'monthly_usd = 1.0\ntimezone = "America/New_York"\n')
    charge(coder, 1.0)
    alerts().delete()
    # 1 March 03:00 UTC is still February in New York: the platform's month is February.
    early = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)
    charge(coder, 1.0, early)
    alerts().delete()
    assert not budget_check(persona=coder, estimate_nanos=to_nanos(0.1), now=early)["allowed"]
    blocked = alerts().get()
    assert (blocked.scope_kind, blocked.agent_id, blocked.persona_id) == ("platform", "", "")
    assert (blocked.window, blocked.window_start) == ("monthly", dt.date(2026, 2, 1))


def test_a_paused_agent_is_one_blocked_event_a_day(
    make_persona: MakePersona, data_dir: Path
) -> None:
    a, b = make_persona("hermes", "a", ""), make_persona("hermes", "b", "")
    agent_caps(data_dir, "paused = true\n")
    for persona, now in ((a, DAY1), (b, DAY1), (a, DAY2)):
        assert not budget_check(persona=persona, estimate_nanos=0, now=now)["allowed"]
    blocked = alerts().filter(type="budget.blocked")
    assert [(e.scope_kind, e.agent_id, e.window, e.window_start) for e in blocked] == [
        ("agent", "hermes", "paused", dt.date(2026, 3, 10)),
        ("agent", "hermes", "paused", dt.date(2026, 3, 11)),
    ]


# ---------------------------------------------------------------------------------------
# The payload a webhook and /api/events carry


def test_the_payload_names_each_scope_as_its_kind_does(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "daily_usd = 1.0\n")
    agent_caps(data_dir, "daily_usd = 1.0\n")
    platform_caps(data_dir, "daily_usd = 1.0\n")
    charge(coder, 0.85, dt.datetime.now(dt.UTC))
    body = APIClient().get("/api/events").json()
    body["events"] = [e for e in body["events"] if e["type"] != "budget.changed"]
    scopes = [e["scope"] for e in body["events"]]
    assert [e["type"] for e in body["events"]] == ["budget.warn"] * 3
    assert sorted(scopes, key=lambda s: s["kind"]) == [
        {"kind": "agent", "agent": "hermes", "persona": None},
        {"kind": "persona", "agent": "hermes", "persona": "coder"},
        {"kind": "platform", "agent": None, "persona": None},
    ]
    assert {e["cap_usd"] for e in body["events"]} == {1.0}
    assert {e["spent_usd"] for e in body["events"]} == {0.85}


def test_an_agent_key_sees_its_agents_events_not_the_platforms(
    make_persona: MakePersona, data_dir: Path, agent_client: Callable[[str], APIClient]
) -> None:
    coder = make_persona("hermes", "coder", "")
    make_persona("other", "x", "")
    agent_caps(data_dir, "daily_usd = 1.0\n")
    platform_caps(data_dir, "daily_usd = 1.0\n")
    charge(coder, 0.9, dt.datetime.now(dt.UTC))
    seen = agent_client("hermes").get("/api/events").json()["events"]
    assert [(e["type"], e["scope"]["kind"]) for e in seen] == [
        ("budget.changed", "agent"),  # the hand edit of agent.toml above
        ("budget.warn", "agent"),
    ]
    assert agent_client("other").get("/api/events").json()["events"] == []


# ---------------------------------------------------------------------------------------
# Concurrency: real threads, each with its own connection


@pytest.mark.django_db(transaction=True)
def test_24_concurrent_charges_across_3_personas_write_exactly_one_agent_warn_and_exceeded(
    make_persona: MakePersona, data_dir: Path
) -> None:
    from budgets.events.emit import seen

    personas = [make_persona("fleet", f"p{i}", "") for i in range(3)]
    (data_dir / "agents" / "fleet" / "agent.toml").write_text(
        "[agent.budget]\ndaily_usd = 1.0\nhard_cap = false\n"
    )
    # 24 charges of 0.05 against the agent's 1.00: 80 % is crossed at the 16th and the
    # cap at the 20th, by whichever threads get there; all of them commit.
    now = dt.datetime.now(dt.UTC)

    def client(n: int) -> None:
        charge(Persona.objects.get(pk=personas[n % 3].pk), 0.05, now)

    assert run_clients(24, client) == []
    assert sorted(events("agent")) == [
        ("budget.exceeded", "agent", "fleet", ""),
        ("budget.warn", "agent", "fleet", ""),
    ]
    # Whoever wrote them, a second process (an empty memo) writes no duplicate either.
    seen.clear()
    charge(personas[0], 0.05, now)
    assert len(events("agent")) == 2


@pytest.mark.requires_postgres  # SQLite runs one write transaction at a time anyway
@pytest.mark.django_db(transaction=True)
def test_two_charges_that_cross_together_still_alert_when_each_reads_before_the_others_commit(
    make_persona: MakePersona, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving that loses an alert without the agent's lock, forced.

    Each charge reads the agent's sum, then waits (at most a second) for the other to have
    read too. Without the lock both read 0.75 of 1.00 (each its own charge and not the
    other's, uncommitted) and neither writes the warn that 0.80 deserves. With it, the
    second charge's read waits for the first to commit, the wait times out, and the
    second reads 0.80.
    """
    import threading

    from budgets.services import scopes

    a, b = make_persona("fleet", "a", ""), make_persona("fleet", "b", "")
    (data_dir / "agents" / "fleet" / "agent.toml").write_text("[agent.budget]\ndaily_usd = 1.0\n")
    now = dt.datetime.now(dt.UTC)
    charge(a, 0.7, now)
    met = threading.Barrier(2, timeout=1.0)
    # The read of the agent's sum inside statuses_after_charge.
    real = scopes._usd_spent

    def read_then_meet(*args: Any, **kwargs: Any) -> Any:
        found = real(*args, **kwargs)
        # Broken: the other charge waits for the lock this one holds.
        with contextlib.suppress(threading.BrokenBarrierError):
            met.wait()
        return found

    monkeypatch.setattr(scopes, "_usd_spent", read_then_meet)
    personas = (a, b)

    def client(n: int) -> None:
        charge(personas[n], 0.05, now)

    assert run_clients(2, client) == []
    assert events("agent") == [("budget.warn", "agent", "fleet", "")]


@pytest.mark.django_db(transaction=True)
def test_a_webhook_receives_each_scope_named_as_its_kind(
    make_persona: MakePersona, data_dir: Path, receiver: Any
) -> None:
    """A real local receiver. An endpoint filtered to an agent gets that agent's and its
    personas' events, and the platform's (which reach every endpoint, docs/alerts.md)."""
    import json

    from budgets.events.endpoints import add_endpoint
    from tests.events.test_webhooks import drain

    coder = make_persona("hermes", "coder", "daily_usd = 1.0\n")
    everything, hermes_only = receiver(), receiver()
    add_endpoint(url=everything.url, event_types=["budget.warn"])
    add_endpoint(url=hermes_only.url, event_types=["budget.warn"], agent_id="hermes")
    agent_caps(data_dir, "daily_usd = 1.0\n")
    platform_caps(data_dir, "daily_usd = 1.0\n")
    charge(coder, 0.85, dt.datetime.now(dt.UTC))
    drain()
    scopes = sorted(
        (json.loads(r.body)["scope"] for r in everything.requests), key=lambda s: s["kind"]
    )
    assert scopes == [
        {"kind": "agent", "agent": "hermes", "persona": None},
        {"kind": "persona", "agent": "hermes", "persona": "coder"},
        {"kind": "platform", "agent": None, "persona": None},
    ]
    kinds = sorted(json.loads(r.body)["scope"]["kind"] for r in hermes_only.requests)
    assert kinds == ["agent", "persona", "platform"]


def test_lowering_an_agents_or_the_platforms_cap_under_the_spend_alerts_at_once(
    make_persona: MakePersona, data_dir: Path
) -> None:
    from personas.services import parse_budget_body
    from personas.services.scopes import PLATFORM, agent_scope, write_scope_budget

    coder = make_persona("hermes", "coder", "")
    agent_caps(data_dir, "daily_usd = 10.0\n")
    charge(coder, 0.5, dt.datetime.now(dt.UTC))
    assert events() == []
    write_scope_budget(
        agent_scope("hermes"), parse_budget_body({"daily_usd": 0.4}), actor="ops", via="api"
    )
    assert [t for t, *_ in events("agent")] == ["budget.warn", "budget.exceeded"]
    write_scope_budget(PLATFORM, parse_budget_body({"monthly_usd": 0.6}), actor="ops", via="cli")
    assert [t for t, *_ in events("platform")] == ["budget.warn"]  # 0.5 of 0.6
    rows = Event.objects.filter(scope_kind="platform").order_by("id")
    assert [e.type for e in rows] == ["budget.changed", "budget.warn"]  # the change first


def test_a_hand_edit_that_lowers_the_agents_cap_alerts_at_the_next_check(
    make_persona: MakePersona, data_dir: Path
) -> None:
    coder = make_persona("hermes", "coder", "")
    agent_caps(data_dir, "daily_usd = 10.0\n")
    charge(coder, 0.5, dt.datetime.now(dt.UTC))
    agent_caps(data_dir, "daily_usd = 0.5\n")
    budget_check(persona=coder, estimate_nanos=0)  # sees the file, as any check does
    assert [t for t, *_ in events("agent")] == ["budget.warn", "budget.exceeded"]
