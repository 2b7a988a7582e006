"""The Spend page: every persona's windows at a glance, the month's chart, by model."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone

from budgets.models import Hold
from personas.models import Persona
from tests.budgets.ledger_support import make_persona, record

pytestmark = pytest.mark.django_db

URL = "/admin/spend/"
USD = 1_000_000_000


def capped(agent: str, slug: str, **caps: int | None) -> Persona:
    persona = make_persona(agent, slug)
    Persona.objects.filter(pk=persona.pk).update(**caps)
    persona.refresh_from_db()
    return persona


def _row(body: str, persona: Persona) -> str:
    match = re.search(rf'<tr data-persona="{persona}".*?</tr>', body, re.S)
    assert match, f"no row for {persona}"
    return match.group(0)


def test_the_admin_home_lands_on_the_spend_page(staff_client: Client) -> None:
    response = staff_client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/spend/"
    nav = staff_client.get("/admin/budgets/charge/").content.decode()
    assert 'href="/admin/spend/"' in nav[nav.index('class="hal0-nav"') :]


def test_every_table_is_one_click_away_from_the_top_bar(staff_client: Client) -> None:
    spend = staff_client.get(URL).content.decode()
    nav = spend[spend.index('class="hal0-nav"') : spend.index("</nav>")]
    assert 'href="/admin/tables/"' in nav
    tables = staff_client.get("/admin/tables/").content.decode()
    at = tables.index("Every table")
    start = tables[at : tables.index("</div>", at)]
    assert 'href="/admin/spend/"' in start
    assert 'href="/admin/personas/persona/"' in start  # where caps are changed
    assert "/admin/budgets/webhookendpoint/" in tables  # a table the top bar does not name


def test_the_tables_page_names_the_tables_as_the_top_bar_does(staff_client: Client) -> None:
    home = staff_client.get("/admin/tables/").content.decode()
    assert "Cap changes (audit)" in home
    assert "Ledger (charges)" in home


def test_each_window_is_coloured_by_its_status(staff_client: Client) -> None:
    now = timezone.now()
    ok = capped("hermes", "calm", daily_cap_nanos=10 * USD)
    warn = capped("hermes", "close", daily_cap_nanos=10 * USD)
    over = capped("hermes", "over", daily_cap_nanos=10 * USD)
    free = capped("hermes", "free")
    record(ok, 1, ts=now, cost_nanos=1 * USD)
    record(warn, 1, ts=now, cost_nanos=8 * USD)  # warn_at defaults to 0.8
    record(over, 1, ts=now, cost_nanos=10 * USD)
    record(free, 1, ts=now, cost_nanos=3 * USD)
    body = staff_client.get(URL).content.decode()
    assert 'data-status="ok"' in _row(body, ok)
    assert 'data-status="warn"' in _row(body, warn)
    assert 'data-status="exceeded"' in _row(body, over)
    assert "no cap set" in _row(body, free)
    assert "$3.00" in _row(body, free)
    # Worst first.
    assert body.index(f'data-persona="{over}"') < body.index(f'data-persona="{warn}"')
    assert body.index(f'data-persona="{warn}"') < body.index(f'data-persona="{ok}"')


def test_a_custom_warn_threshold_moves_the_warn_line(staff_client: Client) -> None:
    persona = capped("hermes", "early", monthly_cap_nanos=10 * USD)
    Persona.objects.filter(pk=persona.pk).update(warn_at="0.5")
    persona.refresh_from_db()
    record(persona, 1, ts=timezone.now(), cost_nanos=6 * USD)
    assert 'data-status="warn"' in _row(staff_client.get(URL).content.decode(), persona)


def test_remaining_holds_and_resets_are_shown(staff_client: Client) -> None:
    now = timezone.now()
    persona = capped("hermes", "coder", daily_cap_nanos=5 * USD)
    record(persona, 1, ts=now, cost_nanos=2 * USD)
    Hold.objects.create(
        id="hld_1",
        persona=persona,
        amount_nanos=USD // 2,
        created_at=now,
        expires_at=now + dt.timedelta(minutes=5),
    )
    row = _row(staff_client.get(URL).content.decode(), persona)
    assert "$3.00 left" in row
    assert "resets in" in row
    assert "$0.50" in row
    assert "1 hold" in row


def test_an_unrecorded_cost_is_never_shown_as_zero(staff_client: Client) -> None:
    persona = make_persona("hermes", "legacy")
    record(persona, 1, ts=timezone.now(), cost_nanos=None, model="old-model")
    record(persona, 1, ts=timezone.now(), cost_nanos=None, model="mixed-model")
    record(persona, 1, ts=timezone.now(), cost_nanos=USD, model="mixed-model")
    body = staff_client.get(URL).content.decode()
    latest = body[body.index('id="hal0-latest"') :]
    assert "not recorded" in latest
    models = body[body.index('id="hal0-models"') :]
    old = models[models.index("old-model") :].split("</tr>")[0]
    assert "not recorded" in old
    assert "$0.00" not in old
    mixed = models[models.index("mixed-model") :].split("</tr>")[0]
    assert "$1.00" in mixed
    assert "+ 1 not recorded" in mixed


def test_the_month_chart_is_inline_svg_and_the_models_are_broken_down(
    staff_client: Client,
) -> None:
    now = timezone.now()
    persona = make_persona("hermes", "coder")
    record(persona, 2, ts=now, cost_nanos=USD, model="big-model")
    record(persona, 1, ts=now, cost_nanos=USD // 4, model="small-model")
    body = staff_client.get(URL).content.decode()
    assert "<svg" in body
    assert '<path class="line"' in body
    assert "cumulative spend, all personas: $2.25" in body
    models = body[body.index('id="hal0-models"') :]
    assert models.index("big-model") < models.index("small-model")
    assert "$2.00" in models


def test_an_empty_service_says_so(staff_client: Client) -> None:
    body = staff_client.get(URL).content.decode()
    assert "No personas yet" in body
    assert "No spend this month yet" in body
