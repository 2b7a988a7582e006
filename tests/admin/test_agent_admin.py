"""Agents in the admin: persona counts and spend, personas inline (read-only)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.budgets.ledger_support import make_persona, record

pytestmark = pytest.mark.django_db

USD = 1_000_000_000


def test_the_list_shows_personas_and_spend_today_and_this_month(staff_client: Client) -> None:
    now = timezone.now()
    coder = make_persona("hermes", "coder")
    make_persona("hermes", "writer")
    record(coder, 1, ts=now, cost_nanos=2 * USD)
    earlier = now.replace(day=1, hour=0, minute=0, second=1)
    if earlier.date() != now.date():
        record(coder, 1, ts=earlier, cost_nanos=3 * USD)
    month = 5 if earlier.date() != now.date() else 2
    record(coder, 1, ts=now - dt.timedelta(days=40), cost_nanos=7 * USD)
    response = staff_client.get("/admin/personas/agent/")
    row = response.content.decode().split('class="field-id"')[1]
    assert ">2<" in row  # personas
    assert "$2.00" in row
    assert f"${month}.00" in row


def test_the_list_costs_the_same_for_one_agent_or_many(staff_client: Client) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            staff_client.get("/admin/personas/agent/")
        return len(captured)

    record(make_persona("a1", "p"), 1, ts=timezone.now())
    one = queries()
    for i in range(2, 8):
        record(make_persona(f"a{i}", "p"), 1, ts=timezone.now())
    assert queries() == one


def test_an_agent_page_lists_its_personas_read_only_with_links(staff_client: Client) -> None:
    coder = make_persona("hermes", "coder")
    body = staff_client.get("/admin/personas/agent/hermes/change/").content.decode()
    assert f'href="/admin/personas/persona/{coder.pk}/change/"' in body
    assert "no caps" in body
    # The agent's own budget is the only thing saved here; personas stay read-only.
    assert 'name="daily_usd"' in body
    assert 'name="personas-0-display_name"' not in body
    assert "historylink" not in body  # the audit trail is the agent's cap changes


def test_the_agent_page_shows_each_persona_s_status_and_spend(staff_client: Client) -> None:
    from personas.models import Persona

    coder = make_persona("hermes", "coder")
    Persona.objects.filter(pk=coder.pk).update(daily_cap_nanos=2 * USD)
    make_persona("hermes", "writer")
    record(coder, 1, ts=timezone.now(), cost_nanos=int(1.7 * USD))
    body = staff_client.get("/admin/personas/agent/hermes/change/").content.decode()
    rows = re.findall(r'<tr class="form-row has_original.*?</tr>', body, re.S)
    coder_row = next(r for r in rows if ">coder<" in r)
    writer_row = next(r for r in rows if ">writer<" in r)
    assert 'class="hal0-pill warn"' in coder_row
    assert coder_row.count("$1.70") == 2  # today and this month
    assert "no caps" in writer_row
    assert writer_row.count("$0.00") == 2


def test_the_agent_page_costs_the_same_for_two_personas_or_ten(staff_client: Client) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            staff_client.get("/admin/personas/agent/hermes/change/")
        return len(captured)

    for slug in ("p0", "p1"):
        record(make_persona("hermes", slug), 1, ts=timezone.now())
    queries()  # the first view reads agent.toml's state once; later ones use its signature
    two = queries()
    for i in range(2, 10):
        record(make_persona("hermes", f"p{i}"), 1, ts=timezone.now())
    assert queries() == two
