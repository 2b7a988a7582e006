"""Window counters: a cache of the charges that the hot path reads instead of scanning."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import TestCase

from budgets.ledger.writer import BUMP_LIMIT, insert_charges
from budgets.models import SpendCounter
from budgets.services.counters import find_drift, window_spend
from budgets.services.windows import windows_at
from personas.models import Persona

NOON = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)


def _rows(*specs: tuple[dt.datetime, int], prefix: str = "r") -> list[dict[str, Any]]:
    return [
        {"ts": ts, "surface": "s", "model": "m", "cost_nanos": cost, "request_id": f"{prefix}{n}"}
        for n, (ts, cost) in enumerate(specs)
    ]


def _record(persona: Persona, rows: list[dict[str, Any]]) -> None:
    with TestCase.captureOnCommitCallbacks(execute=True):
        insert_charges(persona, rows, source="api")


@pytest.fixture
def persona(make_persona: Callable[..., Any]) -> Persona:
    p: Persona = make_persona(persona_id="counted", budget_toml="daily_usd = 5.0\n")
    return p


def test_counters_sum_each_window_of_the_charges(persona: Persona) -> None:
    _record(
        persona,
        _rows(
            (NOON, 100),
            (NOON - dt.timedelta(days=1), 20),  # yesterday: month and lifetime only
            (NOON - dt.timedelta(days=40), 3),  # last month: lifetime only
        ),
    )
    spend = window_spend(persona, windows_at("UTC", NOON))
    assert (spend.day, spend.month, spend.lifetime) == (100, 120, 123)
    assert list(find_drift(persona=persona)) == []


def test_a_missing_counter_is_rebuilt_from_the_charges_and_stored(persona: Persona) -> None:
    _record(persona, _rows((NOON, 7), (NOON, 8)))
    SpendCounter.objects.filter(persona=persona).delete()

    spend = window_spend(persona, windows_at("UTC", NOON))

    assert spend.lifetime == 15
    assert SpendCounter.objects.filter(persona=persona).count() == 3


def test_a_bulk_insert_drops_counters_and_the_next_read_rebuilds_them(persona: Persona) -> None:
    _record(persona, _rows((NOON, 1)))
    _record(persona, _rows(*[(NOON, 2)] * (BUMP_LIMIT + 1), prefix="bulk"))

    assert not SpendCounter.objects.filter(persona=persona).exists()
    spend = window_spend(persona, windows_at("UTC", NOON))
    assert spend.day == 1 + 2 * (BUMP_LIMIT + 1)


def test_counters_of_another_timezone_are_dropped_when_a_charge_lands(
    persona: Persona, make_persona: Callable[..., Any]
) -> None:
    _record(persona, _rows((NOON, 5)))
    assert SpendCounter.objects.filter(persona=persona, tz="UTC").exists()

    moved = make_persona(
        persona_id="counted", budget_toml='daily_usd = 5.0\ntimezone = "Asia/Tokyo"\n'
    )
    _record(moved, _rows((NOON, 6), prefix="tokyo"))

    assert not SpendCounter.objects.filter(persona=moved, tz="UTC").exists()
    spend = window_spend(moved, windows_at("Asia/Tokyo", NOON))
    assert spend.day == 11


def test_reconcile_reports_drift_and_fix_corrects_it(persona: Persona) -> None:
    _record(persona, _rows((NOON, 40)))
    SpendCounter.objects.filter(persona=persona, window="day").update(spent_nanos=1)

    with pytest.raises(CommandError, match="drifted"):
        call_command("counters", "reconcile")
    call_command("counters", "reconcile", "--fix")
    call_command("counters", "reconcile")  # clean now: no error

    assert SpendCounter.objects.get(persona=persona, window="day").spent_nanos == 40
