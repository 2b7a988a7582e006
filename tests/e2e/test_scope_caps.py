"""An operator lowers an agent's cap in a real browser, and the persona page's tightest
scope moves from the persona's own cap to the agent, with a link that leads there."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from personas import paths
from personas.models import BudgetChange

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_lowering_an_agent_cap_makes_it_the_persona_s_tightest_scope(
    logged_in: Page, live_server: Any, agent: Any, make_persona: Any
) -> None:
    page = logged_in
    coder = make_persona("hermes", "coder", "daily_usd = 3.0\n")
    paths.agent_file("hermes").write_text(
        '# agent-wide caps\n[agent]\nid = "hermes"\n\n[agent.budget]\ndaily_usd = 10.0\n',
        encoding="utf-8",
    )
    persona_url = f"{live_server.url}/admin/personas/persona/{coder.pk}/change/"

    page.goto(persona_url)
    tightest = page.locator("#hal0-tightest-scope")
    expect(tightest).to_have_attribute("data-scope", "persona")
    expect(page.locator("#hal0-tightest")).to_contain_text("$3.00 left")

    # To the agent's page through the top bar and the list, as an operator would.
    page.click(".hal0-nav >> text=Agents")
    page.click("#result_list >> text=hermes")
    expect(page.locator("#id_daily_usd")).to_have_value("10")
    page.fill("#id_daily_usd", "1.5")
    expect(page.locator(".field-daily_usd .hal0-capnote")).to_have_text("= $1.50")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("daily cap $10.00 → $1.50")
    text = paths.agent_file("hermes").read_text(encoding="utf-8")
    assert "# agent-wide caps" in text
    assert re.search(r"^daily_usd = 1\.5$", text, re.M)
    assert BudgetChange.objects.get(scope="agent", via="admin").actor == "user:olivia"

    page.goto(persona_url)
    expect(tightest).to_have_attribute("data-scope", "agent")
    expect(page.locator("#hal0-tightest")).to_contain_text("$1.50 left")
    tightest.click()
    page.wait_for_url("**/admin/personas/agent/hermes/change/")
    expect(page.locator("#hal0-spend")).to_be_visible()
