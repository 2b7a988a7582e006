"""The cap-change audit trail in the admin: who, when, through what, before and after."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from personas.models import BudgetChange, Persona
from personas.services import write_budget
from personas.toml_store import parse_budget_mapping

pytestmark = pytest.mark.django_db

LIST = "/admin/personas/budgetchange/"


@pytest.fixture
def changes(make_persona: Any) -> list[BudgetChange]:
    coder: Persona = make_persona("hermes", "coder", budget_toml="daily_usd = 5.0\n")
    write_budget(coder, parse_budget_mapping({"daily_usd": 3}), actor="user:olivia", via="admin")
    write_budget(
        coder,
        parse_budget_mapping({"daily_usd": 3, "monthly_usd": 40}),
        actor="key:Zx9Yw8Vu (billing bot)",
        via="api",
    )
    return list(BudgetChange.objects.order_by("id"))


def test_every_change_is_listed_with_who_and_what(
    staff_client: Client, changes: list[BudgetChange]
) -> None:
    body = staff_client.get(LIST).content.decode()
    assert "user:olivia" in body
    assert "key:Zx9Yw8Vu (billing bot)" in body
    # Dollars, never the recorded raw decimals (5.0) or nano-USD.
    assert 'daily cap: <span class="old">$5.00</span> → <span class="new">$3.00</span>' in body
    assert 'monthly cap: <span class="old">no cap</span> → <span class="new">$40.00</span>' in body
    assert "5.0<" not in body
    persona = changes[0].persona
    assert persona is not None
    assert f'<a href="/admin/personas/persona/{persona.pk}/change/">hermes/coder</a>' in body


def test_the_list_filters_by_channel(staff_client: Client, changes: list[BudgetChange]) -> None:
    response = staff_client.get(f"{LIST}?via__exact=api")
    assert [c.actor for c in response.context["cl"].result_list] == ["key:Zx9Yw8Vu (billing bot)"]


def test_the_trail_cannot_be_edited_or_deleted(
    staff_client: Client, changes: list[BudgetChange]
) -> None:
    change = changes[0]
    assert staff_client.get(f"{LIST}add/").status_code == 403
    assert staff_client.post(f"{LIST}{change.pk}/change/", {"actor": "x"}).status_code == 403
    assert staff_client.post(f"{LIST}{change.pk}/delete/", {"post": "yes"}).status_code == 403
    assert "delete_selected" not in staff_client.get(LIST).content.decode()
    change.refresh_from_db()
    assert change.actor == "user:olivia"


def test_the_trail_reads_in_dollars_tokens_and_shares(
    make_persona: Any, staff_client: Client
) -> None:
    coder: Persona = make_persona("hermes", "coder", budget_toml="per_call_max_usd = 0.000125\n")
    write_budget(
        coder,
        parse_budget_mapping({"per_call_max_usd": 0.5, "warn_at": 0.9, "daily_tokens": 200000}),
        actor="user:olivia",
        via="admin",
    )
    body = staff_client.get(LIST).content.decode()
    assert (
        'per-call cap: <span class="old">$0.000125</span> → <span class="new">$0.50</span>' in body
    )
    assert 'warn at: <span class="old">—</span> → <span class="new">90 % of a cap</span>' in body
    assert '<span class="new">200,000 tokens</span>' in body
    # The persona page's own trail reads the same.
    page = staff_client.get(f"/admin/personas/persona/{coder.pk}/change/").content.decode()
    assert '<span class="new">$0.50</span>' in page[page.index('id="hal0-audit"') :]
