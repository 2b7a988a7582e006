"""The banner and the Spend page include agents and the platform; the banner counts the
charges that have no price, from the counters."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from budgets.models import Charge
from personas import paths
from tests.budgets.ledger_support import make_persona, record

pytestmark = pytest.mark.django_db

USD = 1_000_000_000


def agent_caps(agent_id: str, budget: str) -> None:
    path = paths.agent_file(agent_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[agent]\nid = "{agent_id}"\n\n[agent.budget]\n{budget}', encoding="utf-8")


def spend(agent_id: str, slug: str, nanos: int | None, n: int = 1, **extra: Any) -> None:
    record(make_persona(agent_id, slug), n, ts=timezone.now(), cost_nanos=nanos, **extra)


def test_an_agent_over_its_cap_is_in_the_banner_with_a_link(staff_client: Client) -> None:
    make_persona("hermes", "coder")
    agent_caps("hermes", "daily_usd = 3.0\n")
    spend("hermes", "coder", 2 * USD)
    spend("hermes", "writer", 2 * USD)  # 4 of 3 across two uncapped personas
    body = staff_client.get("/admin/tables/").content.decode()
    assert "1 agent over a cap." in body
    assert '<a href="/admin/personas/agent/hermes/change/">agent hermes</a>' in body
    assert "today $4.00 of $3.00" in body
    assert "persona" not in body.split('id="hal0-banner"')[1].split("</div>")[0].split("<ul>")[0]


def test_the_platform_close_to_its_cap_is_in_the_banner(staff_client: Client) -> None:
    paths.platform_file().write_text("[platform.budget]\nmonthly_tokens = 1000\n", encoding="utf-8")
    spend("hermes", "coder", USD, input_tokens=500, output_tokens=350)
    body = staff_client.get("/admin/spend/").content.decode()
    assert "The platform is close to a cap." in body
    assert "this month tokens 850 of 1,000 tokens" in body


def test_a_warn_only_agent_under_its_cap_is_not_in_the_banner(staff_client: Client) -> None:
    make_persona("hermes", "coder")
    agent_caps("hermes", "daily_usd = 10.0\nhard_cap = false\n")
    spend("hermes", "coder", USD)
    assert 'id="hal0-banner"' not in staff_client.get("/admin/tables/").content.decode()


def test_the_banner_counts_charges_without_a_price_from_the_counters(
    staff_client: Client,
) -> None:
    spend("hermes", "coder", None, n=2, cost_source=Charge.CostSource.UNPRICED)
    spend("atlas", "scout", None, n=1, cost_source=Charge.CostSource.UNPRICED)
    spend("atlas", "scout", USD // 10)  # priced: not counted
    with CaptureQueriesContext(connection) as queries:
        body = staff_client.get("/admin/tables/").content.decode()
    assert (
        '<a href="/admin/budgets/charge/?cost_source__exact=unpriced">3 charges have no price</a>'
        in body
    )
    assert not [q for q in queries if 'FROM "budgets_charge"' in q["sql"]]
    # The link lists exactly them, each shown as "not recorded", never $0.00.
    ledger = staff_client.get("/admin/budgets/charge/?cost_source__exact=unpriced")
    rows = ledger.content.decode().split('id="result_list"')[1].split("</table>")[0]
    assert rows.count("not recorded") >= 3
    assert "$0.00" not in rows


def test_one_charge_without_a_price_reads_in_the_singular(staff_client: Client) -> None:
    spend("hermes", "coder", None, cost_source=Charge.CostSource.UNPRICED)
    assert "1 charge has no price" in staff_client.get("/admin/tables/").content.decode()


def test_no_unpriced_line_while_every_charge_has_a_price(staff_client: Client) -> None:
    spend("hermes", "coder", USD // 10)
    assert "no price" not in staff_client.get("/admin/tables/").content.decode()


def test_the_spend_page_has_a_row_for_the_platform_and_each_agent(staff_client: Client) -> None:
    make_persona("hermes", "coder")
    make_persona("atlas", "scout")
    agent_caps("hermes", "daily_usd = 2.0\n")
    paths.platform_file().write_text("[platform.budget]\nmonthly_usd = 100.0\n", encoding="utf-8")
    spend("hermes", "coder", 3 * USD)
    spend("atlas", "scout", USD)
    response = staff_client.get("/admin/spend/")
    rows = {(s.kind, s.agent_id): s for s in response.context["scopes"]}
    assert rows[("agent", "hermes")].status == "exceeded"
    assert rows[("agent", "atlas")].has_caps is False
    assert rows[("platform", None)].status == "ok"
    assert rows[("platform", None)].window("monthly").spent_nanos == 4 * USD
    body = response.content.decode()
    assert 'data-scope="agent" data-agent="hermes" data-status="exceeded"' in body
    assert 'data-scope="platform" data-status="ok"' in body
    # Worst first: the platform leads, then the exceeded agent before the uncapped one.
    table = body.split('id="hal0-scopes"')[1]
    assert table.index('data-agent="hermes"') < table.index('data-agent="atlas"')


def test_the_banner_costs_the_same_for_one_uncapped_agent_or_many(staff_client: Client) -> None:
    def queries() -> int:
        staff_client.get("/admin/tables/")  # each agent's file is taken in once
        with CaptureQueriesContext(connection) as captured:
            staff_client.get("/admin/tables/")
        return len(captured)

    make_persona("a0", "p")
    one = queries()
    for i in range(1, 12):
        make_persona(f"a{i}", "p")
    assert queries() == one
    # Capped agents cost two statements (their counters, their holds), whatever their
    # number or their personas'.
    agent_caps("a3", "daily_usd = 1.0\n")
    for slug in ("q1", "q2", "q3"):
        spend("a3", slug, USD // 10)
    capped = queries()
    assert capped == one + 2
    for i in range(4, 10):
        agent_caps(f"a{i}", "daily_usd = 1.0\n")
        spend(f"a{i}", "q", USD // 10)
    assert queries() == capped


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_many_agents_read_at_once_match_the_check_s_read_of_each(zone: str) -> None:
    """The banner's and the Spend page's batched read equals the check's per agent, with
    counters in the agent's zone missing (charges made before its caps) or present."""
    from budgets.reports.scopes import agent_budgets, agents_usage
    from budgets.services.scopes import scope_budget, scope_usage
    from personas.services.scopes import agent_scope

    now = timezone.now()
    spend("hermes", "coder", 2 * USD, input_tokens=100, output_tokens=20)
    spend("hermes", "writer", None, input_tokens=7, output_tokens=0)
    spend("atlas", "scout", 3 * USD)
    for agent_id in ("hermes", "atlas", "idle"):
        make_persona(agent_id, "p")
        agent_caps(agent_id, f'daily_usd = 10.0\nmonthly_tokens = 5000\ntimezone = "{zone}"\n')
    spend("hermes", "coder", USD, input_tokens=1, output_tokens=1)  # after the caps
    budgets = agent_budgets()
    batched = agents_usage(budgets, now)
    for agent_id, _ in budgets:
        one = scope_usage(agent_id, scope_budget(agent_scope(agent_id)), None, now)[0]
        assert batched[agent_id] == one, agent_id
    assert batched["hermes"].daily == 3 * USD
    assert batched["hermes"].monthly_tokens == 129
    assert batched["idle"].lifetime == 0
