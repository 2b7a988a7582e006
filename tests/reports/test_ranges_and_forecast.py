"""The ranges the Spend page offers, the period each is compared with, and the forecast."""

from __future__ import annotations

import datetime as dt

import pytest

from budgets.reports.forecast import forecast
from budgets.reports.ranges import pick

D = dt.date
UTC = dt.UTC


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"range": "today"}, (D(2026, 3, 31), D(2026, 3, 31), D(2026, 3, 30), D(2026, 3, 30))),
        ({"range": "7d"}, (D(2026, 3, 25), D(2026, 3, 31), D(2026, 3, 18), D(2026, 3, 24))),
        ({}, (D(2026, 3, 2), D(2026, 3, 31), D(2026, 1, 31), D(2026, 3, 1))),
        # This month so far against the same days of February, cut at February's end.
        ({"range": "month"}, (D(2026, 3, 1), D(2026, 3, 31), D(2026, 2, 1), D(2026, 2, 28))),
        (
            {"range": "last_month"},
            (D(2026, 2, 1), D(2026, 2, 28), D(2026, 1, 1), D(2026, 1, 31)),
        ),
        (
            {"range": "custom", "from": "2026-01-10", "to": "2026-01-12"},
            (D(2026, 1, 10), D(2026, 1, 12), D(2026, 1, 7), D(2026, 1, 9)),
        ),
    ],
)
def test_each_range_and_the_period_it_is_compared_with(
    params: dict[str, str], expected: tuple[dt.date, ...]
) -> None:
    r = pick(params, D(2026, 3, 31))
    assert (r.start, r.end, r.previous_start, r.previous_end) == expected
    assert not r.error


def test_this_month_on_the_second_compares_with_the_first_two_days_of_last_month() -> None:
    r = pick({"range": "month"}, D(2026, 3, 2))
    assert (r.start, r.end, r.previous_start, r.previous_end) == (
        D(2026, 3, 1),
        D(2026, 3, 2),
        D(2026, 2, 1),
        D(2026, 2, 2),
    )


def test_last_month_in_january_is_december() -> None:
    r = pick({"range": "last_month"}, D(2026, 1, 15))
    assert (r.start, r.end) == (D(2025, 12, 1), D(2025, 12, 31))


@pytest.mark.parametrize(
    "params",
    [
        {"range": "custom", "from": "2026-01-12", "to": "2026-01-10"},
        {"range": "custom", "from": "2024-01-01", "to": "2026-01-10"},
        {"range": "custom", "from": "soon"},
    ],
)
def test_a_bad_custom_range_falls_back_to_30_days_and_says_why(params: dict[str, str]) -> None:
    r = pick(params, D(2026, 3, 31))
    assert r.preset == "30d"
    assert r.error


def test_at_this_pace_the_daily_cap_is_reached_around_14_20() -> None:
    begin = dt.datetime(2026, 3, 31, tzinfo=UTC)
    now = begin + dt.timedelta(hours=10)
    # $4 in 10 hours, cap $5.73: the remaining $1.73 at $0.40/h takes 4h20m.
    f = forecast(
        window="daily",
        spent=4_000_000_000,
        cap=5_733_333_333,
        begin=begin,
        end=begin + dt.timedelta(days=1),
        now=now,
    )
    assert f is not None
    assert f.reaches_cap_at is not None
    assert f.reaches_cap_at.strftime("%H:%M") == "14:20"
    assert f.rate_nanos_per_hour == 400_000_000
    assert not f.already_over


def test_a_pace_that_stays_under_the_cap_projects_the_window_s_end() -> None:
    begin = dt.datetime(2026, 3, 1, tzinfo=UTC)
    f = forecast(
        window="monthly",
        spent=1_000_000_000,
        cap=100_000_000_000,
        begin=begin,
        end=dt.datetime(2026, 4, 1, tzinfo=UTC),
        now=begin + dt.timedelta(days=10),
    )
    assert f is not None
    assert f.reaches_cap_at is None
    assert f.projected_nanos == 3_100_000_000


def test_no_pace_in_the_first_minute_and_over_the_cap_says_so() -> None:
    begin = dt.datetime(2026, 3, 1, tzinfo=UTC)
    end = begin + dt.timedelta(days=1)
    assert forecast(window="daily", spent=5, cap=10, begin=begin, end=end, now=begin) is None
    over = forecast(
        window="daily", spent=10, cap=10, begin=begin, end=end, now=begin + dt.timedelta(hours=1)
    )
    assert over is not None
    assert over.already_over
    assert over.reaches_cap_at is None
