"""The persona list: a status filter (the rules' status, or paused) and sortable status and
spend columns."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from personas.models import Persona
from tests.budgets.ledger_support import make_persona, record

pytestmark = pytest.mark.django_db

URL = "/admin/personas/persona/"
USD = 1_000_000_000


def persona(slug: str, spent_usd: int = 0, **fields: object) -> Persona:
    p = make_persona("hermes", slug)
    Persona.objects.filter(pk=p.pk).update(**fields)
    p.refresh_from_db()
    if spent_usd:
        record(p, 1, ts=timezone.now(), cost_nanos=spent_usd * USD)
    return p


@pytest.fixture
def five() -> dict[str, Persona]:
    return {
        "ok": persona("calm", 1, daily_cap_nanos=10 * USD),
        "warn": persona("close", 9, daily_cap_nanos=10 * USD),
        "exceeded": persona("over", 12, daily_cap_nanos=10 * USD),
        "none": persona("free", 3),
        "paused": persona("stopped", 2, daily_cap_nanos=10 * USD, paused=True),
    }


def listed(client: Client, query: str) -> list[str]:
    body = client.get(f"{URL}?{query}").content.decode()
    body = body[body.index('id="result_list"') :]
    body = body[: body.index("</table>")]  # the list itself, not the banner's links
    return re.findall(r'href="/admin/personas/persona/\d+/change/[^"]*">hermes/([a-z]+)<', body)


@pytest.mark.parametrize("status", ["ok", "warn", "exceeded", "none", "paused"])
def test_the_status_filter_lists_the_personas_in_that_status(
    staff_client: Client, five: dict[str, Persona], status: str
) -> None:
    assert listed(staff_client, f"status={status}") == [five[status].slug]


def test_the_filter_offers_every_status(staff_client: Client, five: dict[str, Persona]) -> None:
    body = staff_client.get(URL).content.decode()
    for value in ("exceeded", "warn", "ok", "none", "paused"):
        assert f"?status={value}" in body


def test_the_status_column_sorts_worst_first_and_back(
    staff_client: Client, five: dict[str, Persona]
) -> None:
    # Columns: 0 persona, 1 display name, 2 status, 3 today, 4 this month.
    assert listed(staff_client, "o=-2") == ["stopped", "over", "close", "calm", "free"]
    assert listed(staff_client, "o=2") == ["free", "calm", "close", "over", "stopped"]


def test_the_spend_columns_sort_by_amount(staff_client: Client, five: dict[str, Persona]) -> None:
    assert listed(staff_client, "o=-3") == ["over", "close", "free", "stopped", "calm"]
    assert listed(staff_client, "o=4") == ["calm", "stopped", "free", "close", "over"]


def test_the_persona_column_sorts_by_agent_and_id(
    staff_client: Client, five: dict[str, Persona]
) -> None:
    assert listed(staff_client, "o=-0") == ["stopped", "over", "free", "close", "calm"]


def test_a_filter_and_a_sort_go_together(staff_client: Client, five: dict[str, Persona]) -> None:
    persona("hot", 11, daily_cap_nanos=10 * USD)
    assert listed(staff_client, "status=exceeded&o=-3") == ["over", "hot"]
