"""What a browser review of the admin found, each fixed and kept fixed: a persona capped
per call only, warn-only personas in the banner, "just now", the favicon, breadcrumbs that
name tables as the top bar does, and Save on the persona page."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone

from budgets.models import Charge
from personas.models import Persona
from tests.budgets.ledger_support import make_persona, record

pytestmark = pytest.mark.django_db

USD = 1_000_000_000


def capped(agent: str, slug: str, **fields: object) -> Persona:
    persona = make_persona(agent, slug)
    Persona.objects.filter(pk=persona.pk).update(**fields)
    persona.refresh_from_db()
    return persona


def _row(body: str, marker: str) -> str:
    rows = [row for row in body.split("<tr")[1:] if marker in row]
    assert len(rows) == 1, f"no row for {marker}"
    return rows[0].split("</tr>")[0]


def test_a_persona_capped_per_call_only_shows_its_per_call_cap(staff_client: Client) -> None:
    persona = capped("hermes", "coder", per_call_cap_nanos=USD // 2)
    capped("hermes", "free")
    spend = staff_client.get("/admin/spend/").content.decode()
    row = _row(spend, 'data-persona="hermes/coder"')
    assert "per call $0.50" in row
    assert "no caps" not in row
    assert "no caps" in _row(spend, 'data-persona="hermes/free"')
    listing = staff_client.get("/admin/personas/persona/").content.decode()
    assert "per call $0.50" in _row(listing, f"/admin/personas/persona/{persona.pk}/change/")


def test_a_warn_only_persona_reads_warn_only_in_the_banner(staff_client: Client) -> None:
    soft = capped("hermes", "soft", daily_cap_nanos=10 * USD, hard_cap=False)
    hard = capped("hermes", "hard", daily_cap_nanos=10 * USD)
    record(soft, 1, ts=timezone.now(), cost_nanos=12 * USD)
    record(hard, 1, ts=timezone.now(), cost_nanos=12 * USD)
    body = staff_client.get("/admin/spend/").content.decode()
    start = body.index('id="hal0-banner"')
    banner = body[start : body.index("</div>", start)]
    items = re.findall(r"<li[^>]*>.*?</li>", banner, re.S)
    soft_item = next(text for text in items if "hermes/soft" in text)
    hard_item = next(text for text in items if "hermes/hard" in text)
    assert "warn only" in soft_item
    assert "hal0-pill exceeded soft" in soft_item  # outlined, not the solid hard-cap pill
    assert "calls are not blocked" in soft_item
    assert "warn only" not in hard_item
    assert "soft" not in hard_item


def test_a_charge_under_a_minute_old_reads_just_now(staff_client: Client) -> None:
    persona = capped("hermes", "coder")
    record(persona, 1, ts=timezone.now(), cost_nanos=USD)
    page = staff_client.get(f"/admin/personas/persona/{persona.pk}/change/").content.decode()
    latest = page[page.index('id="hal0-latest"') :]
    assert "just now" in latest
    assert "0 minutes ago" not in page


def test_a_reset_under_a_minute_away_reads_in_under_a_minute() -> None:
    from budgets.templatetags.spend import until

    now = timezone.now()
    assert until(now + dt.timedelta(seconds=59), now) == "in under a minute"
    assert until(now + dt.timedelta(minutes=3, seconds=5), now) == "in 3\xa0minutes"
    assert until(None) == ""


def test_the_favicon_is_served(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an icon file's header


def test_breadcrumbs_name_the_tables_as_the_top_bar_does(staff_client: Client) -> None:
    persona = capped("hermes", "coder")
    record(persona, 1, ts=timezone.now(), cost_nanos=USD)
    charge = Charge.objects.get()
    for url, name, old in (
        ("/admin/budgets/charge/", "Ledger", "Charges"),
        (f"/admin/budgets/charge/{charge.pk}/change/", "Ledger", "Charges"),
        ("/admin/personas/budgetchange/", "Cap changes", "Budget changes"),
    ):
        body = staff_client.get(url).content.decode()
        crumbs = body[body.index('class="breadcrumbs"') :]
        crumbs = crumbs[: crumbs.index("</div>")]
        assert name in crumbs, url
        assert old not in crumbs, url


def test_the_persona_page_keeps_save_on_screen_while_the_form_is(staff_client: Client) -> None:
    persona = capped("hermes", "coder")
    page = staff_client.get(f"/admin/personas/persona/{persona.pk}/change/").content.decode()
    assert "model-persona change-form" in page  # what the sticky Save row's rule selects


def test_gauges_and_the_banner_read_in_cents_with_the_exact_figure_in_a_title(
    staff_client: Client,
) -> None:
    persona = capped("hermes", "coder", daily_cap_nanos=USD // 2)
    record(persona, 1, ts=timezone.now(), cost_nanos=516_000_000)  # $0.516 of $0.50
    page = staff_client.get(f"/admin/personas/persona/{persona.pk}/change/").content.decode()
    card = page[page.index('data-window="daily"') :]
    card = card[: card.index("</dl>")]
    assert '<span title="$0.516">$0.52</span>' in card
    spend = staff_client.get("/admin/spend/").content.decode()
    row = _row(spend, 'data-persona="hermes/coder"')
    assert '<span title="$0.516">$0.52</span>' in row
    banner = spend[spend.index('id="hal0-banner"') :]
    assert 'today <span title="$0.516">$0.52</span> of $0.50' in banner


def test_times_in_the_admin_say_their_timezone(staff_client: Client) -> None:
    persona = capped("hermes", "coder")
    record(persona, 1, ts=timezone.now(), cost_nanos=USD)
    charge = Charge.objects.get()
    body = staff_client.get(f"/admin/budgets/charge/{charge.pk}/change/").content.decode()
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", body)
    from budgets.apikeys import create_key

    create_key(scope="operator", name="ci")
    keys = staff_client.get("/admin/budgets/apikey/").content.decode()
    assert re.search(r'class="field-created[^"]*">\d{4}-\d\d-\d\d \d\d:\d\d UTC<', keys)
