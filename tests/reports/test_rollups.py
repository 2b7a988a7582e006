"""Rollups are a cache of the charges: kept in the charge's transaction, reconciled by
``manage.py counters reconcile`` like the window counters."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from budgets.ledger.writer import BUMP_LIMIT, insert_charges
from budgets.models import SpendDailyRollup, SpendRollup
from budgets.reports import rollups

UTC = dt.UTC


def rows(n: int, **extra: Any) -> list[dict[str, Any]]:
    start = dt.datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    return [
        {
            "ts": start + dt.timedelta(minutes=20 * i),
            "surface": "openrouter",
            "model": f"m{i % 2}",
            "cost_nanos": None if i % 5 == 0 else 1_000 + i,
            "request_id": f"{extra.get('prefix', 'r')}{i}",
            "input_tokens": i,
            "output_tokens": None if i % 3 else 2 * i,
        }
        for i in range(n)
    ]


def reconcile(*args: str) -> str:
    out = StringIO()
    call_command("counters", "reconcile", *args, stdout=out)
    return out.getvalue()


def test_a_charge_lands_in_its_hour_s_rollup(make_persona: Any) -> None:
    coder = make_persona()
    insert_charges(coder, rows(4), source="api")
    stored = {
        (r.hour, r.model): (r.cost_nanos, r.charges, r.input_tokens, r.output_tokens, r.unpriced)
        for r in SpendRollup.objects.all()
    }
    # 10:15 m0 (unpriced, 0 tokens out), 10:35 m1, 10:55 m0, 11:15 m1
    assert stored == {
        (dt.datetime(2026, 3, 1, 10, tzinfo=UTC), "m0"): (1_002, 2, 2, 0, 1),
        (dt.datetime(2026, 3, 1, 10, tzinfo=UTC), "m1"): (1_001, 1, 1, 0, 0),
        (dt.datetime(2026, 3, 1, 11, tzinfo=UTC), "m1"): (1_003, 1, 3, 6, 0),
    }


def test_a_bulk_insert_keeps_the_rollups_in_step(make_persona: Any) -> None:
    coder = make_persona()
    insert_charges(coder, rows(BUMP_LIMIT * 3), source="import")
    insert_charges(coder, rows(7, prefix="again"), source="api")  # adds to existing rows
    assert rollups.find_drift()[1] == []
    assert "0 drifted" in reconcile().splitlines()[-1]


def test_reconcile_finds_and_fixes_a_hand_corrupted_rollup(make_persona: Any) -> None:
    coder = make_persona()
    insert_charges(coder, rows(12), source="api")
    first = SpendRollup.objects.order_by("hour", "model").first()
    assert first is not None
    SpendRollup.objects.filter(pk=first.pk).update(cost_nanos=first.cost_nanos + 5, charges=99)
    last = SpendRollup.objects.order_by("hour", "model").last()
    assert last is not None
    SpendRollup.objects.filter(pk=last.pk).delete()  # a key whose charges lost their row
    SpendRollup.objects.create(  # a row with no charge behind it
        hour=dt.datetime(2020, 1, 1, tzinfo=UTC), persona=coder, model="ghost", surface="x"
    )

    with pytest.raises(CommandError, match="drifted"):
        reconcile()
    fixed = reconcile("--fix")
    assert "checked" in fixed
    assert fixed.count("fixed rollup") == 3
    assert "ghost" in fixed
    assert reconcile().splitlines()[-1].endswith("0 drifted")
    assert not SpendRollup.objects.filter(model="ghost").exists()


def test_a_charge_lands_in_its_utc_day_s_rollup_too(make_persona: Any) -> None:
    coder = make_persona()
    late = dt.datetime(2026, 3, 1, 23, 50, tzinfo=UTC)
    insert_charges(coder, rows(3), source="api")  # 10:15, 10:35, 10:55 on March 1st
    insert_charges(
        coder,
        [{"ts": late, "surface": "openrouter", "model": "m0", "cost_nanos": 7, "request_id": "x"}],
        source="api",
    )
    insert_charges(
        coder,
        [
            {
                "ts": late + dt.timedelta(minutes=20),  # March 2nd, 00:10 UTC
                "surface": "openrouter",
                "model": "m0",
                "cost_nanos": 9,
                "request_id": "y",
            }
        ],
        source="api",
    )
    stored = {
        (r.day, r.model): (r.cost_nanos, r.charges, r.input_tokens, r.output_tokens, r.unpriced)
        for r in SpendDailyRollup.objects.all()
    }
    assert stored == {
        (dt.date(2026, 3, 1), "m0"): (1_002 + 7, 3, 2, 0, 1),
        (dt.date(2026, 3, 1), "m1"): (1_001, 1, 1, 0, 0),
        (dt.date(2026, 3, 2), "m0"): (9, 1, 0, 0, 0),
    }


def test_reconcile_finds_and_fixes_a_hand_corrupted_daily_rollup(make_persona: Any) -> None:
    coder = make_persona()
    insert_charges(coder, rows(BUMP_LIMIT * 2), source="import")  # spans several days
    days = SpendDailyRollup.objects.order_by("day", "model")
    first, last = days.first(), days.last()
    assert first is not None
    assert last is not None
    assert first.day != last.day
    SpendDailyRollup.objects.filter(pk=first.pk).update(input_tokens=first.input_tokens + 1)
    SpendDailyRollup.objects.filter(pk=last.pk).delete()

    with pytest.raises(CommandError, match="drifted"):
        reconcile()
    fixed = reconcile("--fix")
    assert fixed.count("fixed daily rollup") == 2
    assert reconcile().splitlines()[-1].endswith("0 drifted")
    assert rollups.find_drift()[1] == []
    # The hourly rollups were right all along and are left as they were.
    assert "fixed rollup" not in fixed
