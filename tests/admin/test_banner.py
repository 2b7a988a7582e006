"""The banner: a persona in warn or exceeded is announced on every admin page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from budgets.models import SpendCounter
from personas.models import Persona
from tests.budgets.ledger_support import make_persona, record

pytestmark = pytest.mark.django_db

USD = 1_000_000_000
PAGES = ["/admin/tables/", "/admin/spend/", "/admin/budgets/charge/", "/admin/personas/agent/"]


def over(slug: str, spent: int, cap: int = 10 * USD) -> Persona:
    persona = make_persona("hermes", slug)
    Persona.objects.filter(pk=persona.pk).update(daily_cap_nanos=cap)
    record(persona, 1, ts=timezone.now(), cost_nanos=spent)
    return persona


@pytest.mark.parametrize("url", PAGES)
def test_an_exceeded_persona_shows_on_every_page(staff_client: Client, url: str) -> None:
    over("coder", 12 * USD)
    body = staff_client.get(url).content.decode()
    assert 'id="hal0-banner"' in body
    assert "1 persona over a cap" in body
    assert "hermes/coder" in body
    assert "today $12.00 of $10.00" in body


def test_a_persona_in_warn_shows_too(staff_client: Client) -> None:
    over("coder", 9 * USD)
    body = staff_client.get("/admin/tables/").content.decode()
    assert "1 persona close to a cap" in body


def test_no_banner_while_every_persona_is_fine(staff_client: Client) -> None:
    over("coder", 1 * USD)
    make_persona("hermes", "uncapped")
    assert 'id="hal0-banner"' not in staff_client.get("/admin/tables/").content.decode()


def test_the_banner_lists_five_and_links_to_the_rest(staff_client: Client) -> None:
    for i in range(7):
        over(f"p{i}", 11 * USD)
    body = staff_client.get("/admin/tables/").content.decode()
    assert "7 personas over a cap" in body
    assert "and 2 more on the Spend page" in body


def test_the_banner_reads_counters_not_the_ledger(staff_client: Client) -> None:
    persona = over("coder", 12 * USD)
    record(persona, 50, ts=timezone.now(), cost_nanos=USD // 100)
    with CaptureQueriesContext(connection) as queries:
        staff_client.get("/admin/tables/")
    ledger_reads = [q["sql"] for q in queries if 'FROM "budgets_charge"' in q["sql"]]
    assert ledger_reads == []


def test_the_banner_is_not_shown_outside_the_admin(client: Client) -> None:
    over("coder", 12 * USD)
    assert "hal0-banner" not in client.get("/admin/login/").content.decode()


def test_after_a_bulk_import_the_ledger_is_summed_once_then_counters_are_read(
    staff_client: Client,
) -> None:
    persona = over("coder", 12 * USD)
    # A large insert (an import) drops the persona's counters instead of bumping them.
    record(persona, 150, ts=timezone.now(), cost_nanos=USD // 100)
    assert not SpendCounter.objects.filter(persona=persona).exists()

    def ledger_reads() -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            body = staff_client.get("/admin/tables/").content.decode()
        assert "today $13.50 of $10.00" in body
        return [q["sql"] for q in queries if 'FROM "budgets_charge"' in q["sql"]]

    assert ledger_reads()  # the first page sums the ledger and rebuilds the counters
    assert SpendCounter.objects.filter(persona=persona, window="lifetime").exists()
    assert ledger_reads() == []  # every page after that reads the counters only
