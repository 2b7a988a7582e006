"""The statements a check and a charge send to the database, in order.

Each one is a round trip on PostgreSQL (about 0.1-0.2 ms on a busy 2-core machine), so
the hot path keeps them few (docs/benchmarks.md). A statement added here should be a
conscious choice: these tests list them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from personas.models import Persona

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/agents/hermes/personas/coder/budget"


@pytest.fixture
def coder(make_persona: Callable[..., Persona]) -> Persona:
    return make_persona("hermes", "coder", "daily_usd = 10.0\nmonthly_usd = 20.0\n")


@pytest.fixture
def client(coder: Persona, agent_client: Callable[[str], APIClient]) -> APIClient:
    return agent_client("hermes")


def _kind(sql: str) -> str:
    """A statement by what it does: its verb and the tables it names."""
    words = sql.replace('"', "").replace("(", " ").replace(")", " ").split()
    verb = words[0].upper()
    if verb in {"SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT"}:
        return verb
    # Table names, not the ORM's qualified columns (budgets_charge.id).
    tables = sorted(
        {w.split(".")[0].rstrip(",") for w in words if w.startswith(("budgets_", "personas_"))}
    )
    return " ".join([verb, *tables])


def statements(call: Callable[[], Any]) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = call()
    assert response.status_code == 200, response.content
    # BEGIN/COMMIT are sent by the driver on PostgreSQL and by Django on SQLite; the
    # lists below are about the statements the code chooses to send.
    return [
        kind
        for kind in (_kind(q["sql"]) for q in captured.captured_queries)
        if kind not in {"BEGIN", "COMMIT"}
    ]


def charge(client: APIClient, request_id: str) -> Any:
    body = {"surface": "s", "model": "m", "cost_usd": 0.01, "request_id": request_id}
    return client.post(f"{URL}/charge", body, format="json")


def test_a_charge_sends_no_savepoint(client: APIClient) -> None:
    charge(client, "warm-up")  # builds the window counters
    assert statements(lambda: charge(client, "r-1")) == [
        "SELECT budgets_apikey",
        "SELECT personas_persona",
        "SELECT personas_persona",  # the same row again, locked
        "SELECT budgets_hold budgets_spendcounter",
        # ON CONFLICT DO NOTHING: a taken request_id inserts nothing, no savepoint needed
        "INSERT budgets_charge",
        *(
            # The drop of other zones' counters and the three windows' updates: one
            # statement on PostgreSQL, two on SQLite.
            ["WITH budgets_spendcounter"]
            if connection.vendor == "postgresql"
            else ["DELETE budgets_spendcounter", "UPDATE budgets_spendcounter"]
        ),
        # The report rollups of the charge's hour and UTC day: two upserts, sent as one
        # statement on PostgreSQL.
        *(
            ["WITH budgets_spenddailyrollup budgets_spendrollup"]
            if connection.vendor == "postgresql"
            else ["INSERT budgets_spendrollup", "INSERT budgets_spenddailyrollup"]
        ),
    ]


def test_a_replayed_charge_inserts_nothing_and_answers_the_first_response(
    client: APIClient, coder: Persona
) -> None:
    from budgets.models import Charge

    first = charge(client, "r-1")
    kinds = statements(lambda: charge(client, "r-1"))
    assert kinds == [
        "SELECT budgets_apikey",
        "SELECT personas_persona",
        "SELECT personas_persona",
        "SELECT budgets_hold budgets_spendcounter",
        "INSERT budgets_charge",
        "SELECT budgets_charge",  # the first charge, for its stored answer
    ]
    assert charge(client, "r-1").content == first.content
    assert Charge.objects.filter(persona=coder).count() == 1


ONE_READ = "SELECT budgets_hold budgets_spendcounter personas_persona"


def check(client: APIClient, estimate: float = 0.5) -> Any:
    return client.post(f"{URL}/check", {"estimated_cost_usd": estimate}, format="json")


def test_a_check_reads_the_persona_its_spend_and_holds_in_one_statement(
    client: APIClient,
) -> None:
    charge(client, "r-1")
    check(client)  # the first check of a persona learns its zone
    assert statements(lambda: check(client)) == ["SELECT budgets_apikey", ONE_READ]


def test_a_check_after_the_zone_changed_reads_again_and_answers_for_the_new_zone(
    client: APIClient, make_persona: Callable[..., Persona]
) -> None:
    charge(client, "r-1")
    check(client)
    make_persona("hermes", "coder", 'daily_usd = 10.0\ntimezone = "Pacific/Kiritimati"\n')
    kinds = statements(lambda: check(client))
    # The file changed: the full lookup (it re-reads the file) and the spend again.
    assert kinds[:2] == ["SELECT budgets_apikey", ONE_READ]
    assert "SELECT budgets_hold budgets_spendcounter" in kinds
    body = check(client, 9.99).json()
    assert body["allowed"] is True
    assert body["remaining_usd"] == {"daily": 9.99}
    assert statements(lambda: check(client)) == ["SELECT budgets_apikey", ONE_READ]


def test_a_check_whose_counters_are_gone_rebuilds_them_from_the_charges(
    client: APIClient, coder: Persona
) -> None:
    from budgets.services import counters

    charge(client, "r-1")
    charge(client, "r-2")
    check(client)
    counters.invalidate(coder)
    body = check(client, 10).json()
    assert body["remaining_usd"] == {"daily": 9.98, "monthly": 19.98}
    assert body["allowed"] is False
    assert statements(lambda: check(client)) == ["SELECT budgets_apikey", ONE_READ]


SCOPES_READ = "SELECT budgets_hold budgets_spendcounter personas_persona"
ALERTS_READ = "SELECT budgets_spendcounter personas_persona"


@pytest.fixture
def three_scopes(coder: Persona, data_dir: Any) -> None:
    (data_dir / "agents" / "hermes" / "agent.toml").write_text(
        "[agent.budget]\ndaily_usd = 30.0\ndaily_tokens = 100000\n"
    )
    (data_dir / "platform.toml").write_text("[platform.budget]\nmonthly_usd = 500.0\n")


def test_with_caps_at_three_scopes_a_check_reads_their_spend_in_the_same_statement(
    client: APIClient, three_scopes: None
) -> None:
    charge(client, "r-1")
    check(client)
    # The agent's and the platform's caps come from their files (a stat each, cached by
    # signature); their spend and holds, whatever the ledger's size, ride along the
    # persona's one statement (CROSS JOINs of one-row sums; on PostgreSQL a prepared
    # statement, planned once per connection).
    expected = ["SELECT budgets_apikey", SCOPES_READ]
    assert statements(lambda: check(client)) == expected
    body = check(client, 9.99).json()
    assert (body["allowed"], body["remaining_usd"]) == (True, {"daily": 9.99, "monthly": 19.99})


def test_with_caps_above_the_persona_a_charge_reads_their_statuses_once_for_their_alerts(
    client: APIClient, three_scopes: None, data_dir: Any
) -> None:
    charge(client, "warm-up")
    kinds = statements(lambda: charge(client, "r-1"))
    assert kinds[:4] == [
        "SELECT budgets_apikey",
        "SELECT personas_persona",
        "SELECT personas_persona",
        "SELECT budgets_hold budgets_spendcounter",
    ]
    # After the charge's own writes: the agent's and the platform's statuses for their
    # alerts, under one statement's advisory locks on PostgreSQL (budgets/services/
    # scopes.py, statuses_after_charge), their USD spend in one statement (no tokens, no
    # holds). No agent or platform row lock: those are the reserves'.
    assert "SELECT personas_agent" not in kinds
    lock = ["SELECT"] if connection.vendor == "postgresql" else []
    tail = [*lock, ALERTS_READ]
    assert kinds[-len(tail) :] == tail
    assert kinds.count(ALERTS_READ) == 1

    # A scope without a USD window cap has nothing to alert on: no lock, no read.
    (data_dir / "agents" / "hermes" / "agent.toml").write_text(
        "[agent.budget]\nper_call_max_usd = 5.0\ndaily_tokens = 100000\n"
    )
    (data_dir / "platform.toml").write_text("[platform.budget]\nper_call_max_usd = 5.0\n")
    charge(client, "r-2")
    kinds = statements(lambda: charge(client, "r-3"))
    assert ALERTS_READ not in kinds
    assert "SELECT" not in kinds


def test_a_reserve_locks_the_agent_and_the_platform_only_when_they_cap_a_window(
    client: APIClient, three_scopes: None, data_dir: Any
) -> None:
    def reserve() -> Any:
        return client.post(
            f"{URL}/check", {"estimated_cost_usd": 0.01, "reserve": True}, format="json"
        )

    reserve()
    locks = [
        k for k in statements(reserve) if k in {"SELECT personas_agent", "SELECT personas_platform"}
    ]
    if connection.vendor == "postgresql":
        assert locks == ["SELECT personas_agent", "SELECT personas_platform"]
    else:
        assert locks == []  # the IMMEDIATE transaction holds SQLite's write lock
    (data_dir / "platform.toml").write_text("[platform.budget]\nper_call_max_usd = 5.0\n")
    reserve()
    locks = [
        k for k in statements(reserve) if k in {"SELECT personas_agent", "SELECT personas_platform"}
    ]
    assert locks == (["SELECT personas_agent"] if connection.vendor == "postgresql" else [])


def test_once_a_scope_past_its_cap_has_announced_both_alerts_its_charges_skip_the_read(
    client: APIClient, data_dir: Any
) -> None:
    from budgets.events.emit import seen

    seen.clear()  # as a fresh process
    (data_dir / "agents" / "hermes" / "agent.toml").write_text(
        "[agent.budget]\ndaily_usd = 0.01\nhard_cap = false\n"
    )
    charge(client, "over")  # 0.01 of 0.01: warn and exceeded, written and committed
    kinds = statements(lambda: charge(client, "r-1"))
    # Nothing left to announce in this window: no lock, no read of the agent's spend.
    assert ALERTS_READ not in kinds
    assert "SELECT" not in kinds
    seen.clear()  # a process that has not seen them reads once more (and writes nothing)
    assert ALERTS_READ in statements(lambda: charge(client, "r-2"))
    seen.clear()


RUN_READ = "SELECT budgets_hold budgets_run"


def test_a_check_naming_a_run_reads_the_run_and_its_holds_in_one_more_statement(
    client: APIClient,
) -> None:
    created = client.post(
        "/api/agents/hermes/personas/coder/runs",
        {"run_id": "task-1", "budget_usd": 1.0},
        format="json",
    )
    assert created.status_code == 201, created.content
    reserved = client.post(
        f"{URL}/check",
        {"estimated_cost_usd": 0.25, "reserve": True, "run_id": "task-1"},
        format="json",
    )
    assert reserved.json()["allowed"] is True

    def run_check() -> Any:
        body = {"estimated_cost_usd": 0.5, "run_id": "task-1"}
        return client.post(f"{URL}/check", body, format="json")

    run_check()
    assert statements(run_check) == ["SELECT budgets_apikey", ONE_READ, RUN_READ]
    # The run's hold counts against its budget, read in that same statement.
    assert run_check().json()["run"]["remaining"]["usd"] == 0.75
    too_much = client.post(
        f"{URL}/check", {"estimated_cost_usd": 0.8, "run_id": "task-1"}, format="json"
    ).json()
    assert (too_much["allowed"], too_much["scope"], too_much["limit"]) == (False, "run", "run_usd")


def test_a_persona_of_the_scope_without_counters_is_summed_apart_once_then_counted(
    client: APIClient, three_scopes: None, coder: Persona
) -> None:
    """A persona with no counter in a scope's windows (never charged in them, or its
    counters dropped by an import) is named by the check's statement; its charges are
    summed by id, so the scope's spend is never short, and the check builds its counters:
    the next checks are one statement again."""
    from budgets.services import counters, scopes
    from personas.services.scopes import agent_scope

    charge(client, "r-1")  # coder: 0.01
    check(client)
    assert statements(lambda: check(client)) == ["SELECT budgets_apikey", SCOPES_READ]
    counters.invalidate(coder)
    agent = scopes.scope_budget(agent_scope("hermes"))
    now = dt.datetime.now(dt.UTC)
    with CaptureQueriesContext(connection) as captured:
        usage = scopes.scope_usage("hermes", agent, None, now)[0]
    # A read builds nothing (a reserve reads this way under its persona's lock).
    assert [_kind(q["sql"]) for q in captured] == [SCOPES_READ, "SELECT budgets_charge"]
    assert usage is not None
    assert (usage.daily, usage.lifetime) == (10_000_000, 10_000_000)  # 0.01 USD
    first = statements(lambda: check(client))
    assert first[:3] == ["SELECT budgets_apikey", SCOPES_READ, "SELECT budgets_charge"]
    assert "INSERT budgets_spendcounter" in first
    assert statements(lambda: check(client)) == ["SELECT budgets_apikey", SCOPES_READ]
    assert check(client, 9.99).json()["remaining_usd"] == {"daily": 9.99, "monthly": 19.99}


@pytest.mark.requires_postgres
def test_without_prepared_statements_the_scopes_sums_take_a_statement_of_their_own(
    client: APIClient, three_scopes: None
) -> None:
    from django.test.utils import override_settings

    charge(client, "r-1")
    with override_settings(HAL0_DB_PREPARE=False):
        check(client)
        assert statements(lambda: check(client)) == [
            "SELECT budgets_apikey",
            ONE_READ,
            SCOPES_READ,
        ]
        body = check(client, 9.99).json()
    assert (body["allowed"], body["remaining_usd"]) == (True, {"daily": 9.99, "monthly": 19.99})


@pytest.mark.requires_postgres
@pytest.mark.parametrize("case", ["persona caps", "three scopes", "a run"])
def test_on_postgresql_a_check_reads_none_of_the_settled_holds(
    client: APIClient, coder: Persona, data_dir: Any, case: str
) -> None:
    """A persona's (or a run's) active holds are found through an index that leads with
    (persona, state) or (run, state): a check reads none of the settled ones, however many
    there are and whatever statistics PostgreSQL had when it planned the statement (here:
    none yet, as on a server whose autovacuum has not come round)."""
    from budgets.models import Hold
    from budgets.runs.services import RunBudget, run_create
    from budgets.services.budget import budget_check_by_id, hold_release

    if case == "three scopes":
        (data_dir / "agents" / "hermes" / "agent.toml").write_text(
            "[agent.budget]\ndaily_usd = 30.0\n"
        )
        (data_dir / "platform.toml").write_text("[platform.budget]\nmonthly_usd = 500.0\n")
    run_id = None
    if case == "a run":
        run_id = "task-1"
        run_create(persona=coder, run_id=run_id, label="", budget=RunBudget(), actor="t")
    # 300 holds reserved and released, one at a time, as callers leave them.
    for _ in range(300):
        taken = budget_check_by_id(
            agent_id="hermes",
            persona_id="coder",
            estimate_nanos=10,
            reserve=True,
            actor="t",
            run_id=run_id,
        )
        hold_release(persona=coder, hold_id=taken["hold"]["id"], actor="t")
    connection.close()  # a new connection: the check's statements are planned now
    body = {"estimated_cost_usd": 0.5, **({"run_id": run_id} if run_id else {})}
    client.post(f"{URL}/check", body, format="json")
    with transaction.atomic():
        assert client.post(f"{URL}/check", body, format="json").status_code == 200
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT seq_tup_read, idx_tup_fetch FROM pg_stat_xact_user_tables "
                "WHERE relname = %s",
                [Hold._meta.db_table],
            )
            seq_read, index_fetched = cursor.fetchone()
    assert seq_read == 0
    assert index_fetched < 10  # rows, not the settled holds
