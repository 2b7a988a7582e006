"""The spend panel of the persona page agrees with the budget service, window by window."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from budgets.reports import selectors
from budgets.services import budget_state
from personas.models import Persona
from tests.budgets.ledger_support import record

pytestmark = pytest.mark.django_db

USD = 1_000_000_000


def test_the_gauges_show_what_the_budget_api_reports(
    staff_client: Client, make_persona: Any
) -> None:
    coder: Persona = make_persona(
        "hermes", "coder", budget_toml="daily_usd = 2.0\nmonthly_usd = 10.0\nwarn_at = 0.5\n"
    )
    record(coder, 1, ts=dt.datetime.now(dt.UTC), cost_nanos=1_200_000_000)
    response = staff_client.get(f"/admin/personas/persona/{coder.pk}/change/")
    state = budget_state(persona=coder)
    spend = response.context["spend"]
    assert spend.status == state["status"] == "warn"
    daily = spend.window("daily")
    assert daily.spent_nanos == 1_200_000_000
    assert daily.remaining_nanos == 800_000_000
    assert state["remaining"]["daily_usd"] == 0.8
    assert daily.resets_at.isoformat() == state["resets_at"]["daily"]
    body = response.content.decode()
    assert 'data-window="daily" data-status="warn"' in body
    assert 'data-window="monthly" data-status="ok"' in body
    assert 'data-window="lifetime" data-status="none"' in body
    assert "No cap set" in body


def test_the_month_chart_counts_days_in_the_persona_s_timezone(make_persona: Any) -> None:
    coder: Persona = make_persona(
        "hermes", "coder", budget_toml='monthly_usd = 10.0\ntimezone = "Europe/Berlin"\n'
    )
    now = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
    # 23:30 UTC on the 4th is already the 5th in Berlin (UTC+1 in March before the switch).
    record(coder, 1, ts=dt.datetime(2026, 3, 4, 23, 30, tzinfo=dt.UTC), cost_nanos=USD)
    record(coder, 1, ts=dt.datetime(2026, 3, 4, 22, 30, tzinfo=dt.UTC), cost_nanos=2 * USD)
    # 23:30 UTC on Feb 28 is March 1st in Berlin: this month.
    record(coder, 1, ts=dt.datetime(2026, 2, 28, 23, 30, tzinfo=dt.UTC), cost_nanos=4 * USD)
    per_day, days, today = selectors.daily_totals(coder, now)
    assert days == 31
    assert today == 10
    assert per_day[0] == 4 * USD
    assert per_day[3] == 2 * USD  # the 4th
    assert per_day[4] == USD  # the 5th
    assert sum(per_day) == 7 * USD


def test_latest_charges_are_the_newest_by_time_even_if_recorded_later(
    staff_client: Client, make_persona: Any
) -> None:
    coder: Persona = make_persona("hermes", "coder")
    now = dt.datetime.now(dt.UTC)
    record(coder, 1, ts=now, request_id="req-today")
    # An old ledger imported afterwards: recorded later, but a month older.
    record(coder, 12, ts=now - dt.timedelta(days=30))
    response = staff_client.get(f"/admin/personas/persona/{coder.pk}/change/")
    latest = response.context["latest"]
    assert latest[0].request_id == "req-today"
    assert len(latest) == 10
