"""An operator's first minute, in a real browser: find a persona, change a cap, see the
file change on disk, see the gauge move after a charge, and the ledger stay read-only.

Screenshots of the persona page and the Spend page land in ``test-artifacts/``; with
``HAL0_DOCS_SCREENSHOTS=1`` they are also copied to ``docs/img/`` for the README.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from personas import paths
from personas.models import BudgetChange, Persona
from tests.e2e.conftest import ROOT, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DOCS_IMG = ROOT / "docs" / "img"


@pytest.fixture
def agent_key(settings: Any, agent: Any) -> str:
    """The hermes agent's own API key, with keys required as in production."""
    from budgets.apikeys import create_key

    settings.HAL0_REQUIRE_API_KEY = True
    return create_key(scope="agent", agent_id="hermes", name="hermes e2e")[1]


def charge(
    live_server: Any, key: str, persona: str, cost: float, request_id: str, model: str
) -> None:
    """A charge as a client reports it: through the HTTP API of the running server."""
    body = json.dumps(
        {"surface": "openrouter", "model": model, "cost_usd": cost, "request_id": request_id}
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the test's own live server
        f"{live_server.url}/api/agents/hermes/personas/{persona}/budget/charge",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310
        assert response.status == 200
        assert json.load(response)["recorded"] is True


MODELS = [
    ("openrouter", "anthropic/claude-3.7-sonnet", 90_000_000),
    ("openrouter", "openai/gpt-4o-mini", 35_000_000),
    ("local", "llama-3.1-8b-instruct", 4_000_000),
]


def seed_history(persona: Persona, scale: int = 1, *, today: bool = False) -> None:
    """Earlier days of the month, so the chart has a shape (through the one writer);
    with ``today`` a few charges earlier today too, so the pages show spend on any day of
    the month (on the 1st there are no earlier days)."""
    from budgets.ledger.writer import insert_charges

    now = timezone.now()
    start = now.replace(day=1, hour=9, minute=0, second=0, microsecond=0)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = []
    for day in range(max(0, now.day - 1)):
        for n, (surface, model, cost) in enumerate(MODELS):
            rows.append(
                {
                    "ts": start + dt.timedelta(days=day, hours=n),
                    "surface": surface,
                    "model": model,
                    "cost_nanos": cost * scale * (1 + day % 3),
                    "request_id": f"hist-{day}-{n}",
                    "input_tokens": 1200,
                    "output_tokens": 300,
                }
            )
    if today:
        for n, (surface, model, cost) in enumerate(MODELS):
            rows.append(
                {
                    "ts": max(midnight, now - dt.timedelta(minutes=3 * (n + 1))),
                    "surface": surface,
                    "model": model,
                    "cost_nanos": cost * scale,
                    "request_id": f"today-{n}",
                    "input_tokens": 900,
                    "output_tokens": 250,
                }
            )
    if rows:
        insert_charges(persona, rows, source="api")


def more_personas(make_persona: Any) -> None:
    """Neighbours for the Spend page: one comfortable, one close to its cap, one uncapped."""
    from budgets.ledger.writer import insert_charges
    from budgets.services import budget_check, budget_state

    scout = make_persona("atlas", "scout", budget_toml="daily_usd = 10.0\nmonthly_usd = 120.0\n")
    seed_history(scout, scale=3, today=True)
    # A client has reserved an estimate and not charged yet: a hold.
    budget_check(persona=scout, estimate_nanos=750_000_000, reserve=True, actor="tests")
    writer = make_persona("atlas", "writer", budget_toml="monthly_usd = 7.0\nwarn_at = 0.75\n")
    seed_history(writer, today=True)
    # Past its warn line (75 % of $7) on any day of the month, still under the cap.
    spent = int(budget_state(persona=writer)["spend"]["mtd_usd"] * 1_000_000_000)
    if spent < 5_600_000_000:
        top_up = {
            "ts": max(
                timezone.now().replace(hour=0, minute=0, second=0, microsecond=0),
                timezone.now() - dt.timedelta(seconds=30),
            ),
            "surface": "openrouter",
            "model": "anthropic/claude-3.7-sonnet",
            "cost_nanos": 5_600_000_000 - spent,
            "request_id": "top-up",
        }
        insert_charges(writer, [top_up], source="api")
    seed_history(Persona.objects.get(agent_id="hermes", slug="hermes"), today=True)


def keep(path: Path, name: str) -> None:
    if os.environ.get("HAL0_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMG / name)


def test_an_operator_changes_a_cap_and_sees_the_file_and_the_gauge(
    logged_in: Page, live_server: Any, agent: Any, make_persona: Any, agent_key: str
) -> None:
    page = logged_in
    # Everything the pages load comes from this server: no CDN, works offline.
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((live_server.url, "data:")) else elsewhere.append(r.url),
    )
    coder = Persona.objects.get(agent_id="hermes", slug="coder")
    file = paths.persona_file("hermes", "coder")
    original = file.read_text(encoding="utf-8")
    seed_history(coder)
    more_personas(make_persona)

    # Find the persona from the top bar, the way a new operator would.
    page.click("nav.hal0-nav >> text=Personas")
    page.click("a:text-is('hermes/coder')")
    expect(page.locator("#id_daily_usd")).to_have_attribute("placeholder", "no cap")
    expect(page.locator('.hal0-card[data-window="daily"]')).to_contain_text("No cap set")
    # Beside each cap field a note says what the value means, as the operator types.
    note = page.locator(".field-daily_usd .hal0-capnote")
    expect(note).to_have_text("no cap: never limited")
    page.fill("#id_daily_usd", "0")
    expect(note).to_have_text("a cap of zero: every call with a cost is over it")
    page.fill("#id_daily_usd", "")
    expect(note).to_have_text("no cap: never limited")

    # Set caps: daily $2, monthly $25.
    page.fill("#id_daily_usd", "2")
    page.fill("#id_monthly_usd", "25")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("caps are in its file")

    text = file.read_text(encoding="utf-8")
    assert re.search(r"^daily_usd = 2(\.0)?$", text, re.M)
    assert re.search(r"^monthly_usd = 25(\.0)?$", text, re.M)
    # Everything else in the file is as it was: comments, prompt, model.
    for line in original.splitlines():
        if line.startswith("#") or "system" in line or "preferred" in line:
            assert line in text
    change = BudgetChange.objects.get(persona=coder, via="admin")
    assert change.actor == "user:olivia"

    daily = page.locator('.hal0-card[data-window="daily"]')
    expect(daily).to_have_attribute("data-status", "ok")
    expect(daily).to_contain_text("of $2.00")

    # A client reports a charge: the gauge moves into warn (80 % of the cap).
    charge(live_server, agent_key, "coder", 1.7, "req-e2e-1", "anthropic/claude-3.7-sonnet")
    page.reload()
    expect(daily).to_have_attribute("data-status", "warn")
    expect(daily.locator(".hal0-spent")).to_have_text("$1.70")
    expect(daily.locator(".hal0-remaining")).to_have_text("$0.30")
    expect(page.locator("#hal0-banner")).to_contain_text("hermes/coder")
    expect(page.locator("#hal0-latest")).to_contain_text("req-e2e-1")
    keep(screenshot(page, "persona-page.png"), "persona-page.png")

    # Over the cap: red, on the persona page and on the Spend page.
    charge(live_server, agent_key, "coder", 0.45, "req-e2e-2", "openai/gpt-4o-mini")
    page.reload()
    expect(daily).to_have_attribute("data-status", "exceeded")
    page.click("nav.hal0-nav >> text=Spend")
    row = page.locator('tr[data-persona="hermes/coder"]')
    expect(row).to_have_attribute("data-status", "exceeded")
    expect(page.locator("#hal0-banner")).to_contain_text("1 persona over a cap")
    expect(page.locator('tr[data-persona="atlas/scout"]')).to_contain_text("1 hold")
    keep(screenshot(page, "spend-page.png"), "spend-page.png")
    assert elsewhere == []


def test_an_api_key_does_not_open_the_operator_pages(
    page: Page, live_server: Any, agent_key: str
) -> None:
    for path in ("/admin/", "/admin/spend/", "/admin/personas/persona/"):
        response = page.request.get(
            f"{live_server.url}{path}",
            headers={"Authorization": f"Bearer {agent_key}"},
            max_redirects=0,
        )
        assert response.status == 302
        assert response.headers["location"].startswith("/admin/login/")


def test_the_ledger_offers_no_way_to_change_a_charge(
    logged_in: Page, live_server: Any, agent: Any, agent_key: str
) -> None:
    charge(live_server, agent_key, "hermes", 0.25, "req-ro-1", "openai/gpt-4o-mini")
    page = logged_in
    page.click("nav.hal0-nav >> text=Ledger")
    expect(page.locator("#result_list")).to_contain_text("req-ro-1")
    options = page.locator("select[name=action] option").all_inner_texts()
    assert not any("Delete" in o for o in options)
    assert any("CSV" in o for o in options)
    assert page.locator("a.addlink").count() == 0
    page.click("#result_list tbody tr >> nth=0 >> th a")
    assert page.locator("input[name=_save]").count() == 0
    assert page.locator("a.deletelink").count() == 0


def test_a_hand_edit_made_while_the_page_was_open_is_not_overwritten(
    logged_in: Page, live_server: Any, agent: Any
) -> None:
    page = logged_in
    coder = Persona.objects.get(agent_id="hermes", slug="coder")
    file = paths.persona_file("hermes", "coder")
    page.goto(f"{live_server.url}/admin/personas/persona/{coder.pk}/change/")
    # Someone raises the cap by hand while the page is open.
    edited = file.read_text(encoding="utf-8").replace(
        "[persona.budget]", "[persona.budget]\ndaily_usd = 9.0  # by hand"
    )
    file.write_text(edited, encoding="utf-8")

    page.fill("#id_daily_usd", "3")
    page.click("input[name=_save]")
    conflict = page.locator("#hal0-conflict")
    expect(conflict).to_contain_text("The file changed on disk while you were editing")
    expect(conflict.locator("tr", has_text="Daily cap")).to_contain_text("$9.00")
    expect(page.locator("#id_daily_usd")).to_have_value("3")
    assert file.read_text(encoding="utf-8") == edited
    screenshot(page, "persona-conflict.png")

    # Saving again, knowingly, applies the operator's value on top of the hand edit.
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("caps are in its file")
    text = file.read_text(encoding="utf-8")
    assert re.search(r"^daily_usd = 3(\.0)?  # by hand$", text, re.M)
