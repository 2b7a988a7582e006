"""Budget windows (budgets/services/windows.py): the local day and month of a persona's zone.

Expected instants are written out by hand (UTC offsets from the tz database), not derived
from the code under test.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from budgets.services.windows import LIFETIME_START, windows_at


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC)


def local(
    tz: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz), fold=fold)


def test_utc_day_and_month_are_half_open_utc_ranges() -> None:
    w = windows_at("UTC", utc(2026, 3, 15, 12, 30))

    assert w.tz == "UTC"
    assert w.day == dt.date(2026, 3, 15)
    assert w.month == dt.date(2026, 3, 1)
    assert (w.day_begin, w.day_end) == (utc(2026, 3, 15), utc(2026, 3, 16))
    assert (w.month_begin, w.month_end) == (utc(2026, 3, 1), utc(2026, 4, 1))


def test_an_empty_zone_name_means_utc() -> None:
    assert windows_at("", utc(2026, 3, 15, 12)) == windows_at("UTC", utc(2026, 3, 15, 12))


def test_the_first_instant_of_a_day_belongs_to_that_day_and_the_last_to_the_one_before() -> None:
    midnight = utc(2026, 3, 16)

    assert windows_at("UTC", midnight).day == dt.date(2026, 3, 16)
    assert windows_at("UTC", midnight - dt.timedelta(microseconds=1)).day == dt.date(2026, 3, 15)


def test_new_york_2359_and_0001_are_different_days_on_the_same_utc_date() -> None:
    # 23:59 EST on 15 Jan is 04:59 UTC on the 16th; 00:01 EST on the 16th is 05:01 UTC.
    late = windows_at("America/New_York", local("America/New_York", 2026, 1, 15, 23, 59))
    early = windows_at("America/New_York", local("America/New_York", 2026, 1, 16, 0, 1))

    assert late.day == dt.date(2026, 1, 15)
    assert early.day == dt.date(2026, 1, 16)
    assert late.day_end == early.day_begin == utc(2026, 1, 16, 5)
    assert late.day_begin == utc(2026, 1, 15, 5)
    assert early.day_end == utc(2026, 1, 17, 5)
    # Same UTC date, different local days: the zone, not UTC, cuts the day.
    assert late.day_begin.date() != early.day_end.date()
    assert local("America/New_York", 2026, 1, 15, 23, 59).astimezone(dt.UTC).date() == (
        local("America/New_York", 2026, 1, 16, 0, 1).astimezone(dt.UTC).date()
    )


def test_tokyo_is_already_in_the_next_month_while_utc_is_not() -> None:
    instant = utc(2026, 1, 31, 15, 30)  # 00:30 on 1 Feb in Tokyo (UTC+9)

    tokyo = windows_at("Asia/Tokyo", instant)
    assert (tokyo.day, tokyo.month) == (dt.date(2026, 2, 1), dt.date(2026, 2, 1))
    assert tokyo.day_begin == tokyo.month_begin == utc(2026, 1, 31, 15)
    assert tokyo.month_end == utc(2026, 2, 28, 15)
    assert windows_at("UTC", instant).month == dt.date(2026, 1, 1)


@pytest.mark.parametrize(
    ("tz", "day_begin"),
    [
        ("Asia/Kolkata", utc(2026, 6, 9, 18, 30)),  # UTC+5:30
        ("Asia/Kathmandu", utc(2026, 6, 9, 18, 15)),  # UTC+5:45
        ("Pacific/Chatham", utc(2026, 6, 9, 11, 15)),  # UTC+12:45 in June (winter)
        ("Pacific/Kiritimati", utc(2026, 6, 9, 10)),  # UTC+14
        ("Pacific/Pago_Pago", utc(2026, 6, 10, 11)),  # UTC-11
    ],
)
def test_zones_with_odd_offsets_start_the_day_at_their_own_midnight(
    tz: str, day_begin: dt.datetime
) -> None:
    w = windows_at(tz, local(tz, 2026, 6, 10, 12))

    assert w.day == dt.date(2026, 6, 10)
    assert w.day_begin == day_begin
    assert w.day_end == day_begin + dt.timedelta(days=1)


def test_new_york_spring_forward_day_has_23_hours() -> None:
    # 8 Mar 2026: 02:00 EST -> 03:00 EDT. Midnight is EST (05:00 UTC), the next one EDT.
    w = windows_at("America/New_York", utc(2026, 3, 8, 12))

    assert w.day == dt.date(2026, 3, 8)
    assert (w.day_begin, w.day_end) == (utc(2026, 3, 8, 5), utc(2026, 3, 9, 4))
    assert w.day_end - w.day_begin == dt.timedelta(hours=23)


def test_new_york_fall_back_day_has_25_hours() -> None:
    # 1 Nov 2026: 02:00 EDT -> 01:00 EST.
    w = windows_at("America/New_York", utc(2026, 11, 1, 12))

    assert (w.day_begin, w.day_end) == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))
    assert w.day_end - w.day_begin == dt.timedelta(hours=25)


def test_both_passes_through_the_repeated_hour_are_the_same_day() -> None:
    first = local("America/New_York", 2026, 11, 1, 1, 30, fold=0)  # 05:30 UTC, EDT
    second = local("America/New_York", 2026, 11, 1, 1, 30, fold=1)  # 06:30 UTC, EST

    assert first.astimezone(dt.UTC) != second.astimezone(dt.UTC)
    assert windows_at("America/New_York", first) == windows_at("America/New_York", second)


def test_a_month_with_a_dst_change_is_an_hour_short_and_starts_at_local_midnight() -> None:
    # Berlin, March 2026: starts at CET (UTC+1), ends at CEST (UTC+2) on 31 March.
    w = windows_at("Europe/Berlin", utc(2026, 3, 29, 12))

    assert (w.month_begin, w.month_end) == (utc(2026, 2, 28, 23), utc(2026, 3, 31, 22))
    assert w.month_end - w.month_begin == dt.timedelta(days=31, hours=-1)
    assert (w.day_begin, w.day_end) == (utc(2026, 3, 28, 23), utc(2026, 3, 29, 22))


def test_sydney_dst_ends_in_april_on_the_southern_calendar() -> None:
    # 5 Apr 2026: 03:00 AEDT (UTC+11) -> 02:00 AEST (UTC+10).
    w = windows_at("Australia/Sydney", utc(2026, 4, 5, 2))

    assert w.day == dt.date(2026, 4, 5)
    assert (w.day_begin, w.day_end) == (utc(2026, 4, 4, 13), utc(2026, 4, 5, 14))
    assert (w.month_begin, w.month_end) == (utc(2026, 3, 31, 13), utc(2026, 4, 30, 14))


def test_a_zone_whose_clocks_skip_midnight_starts_the_day_when_the_clocks_jump() -> None:
    # Santiago, 6 Sep 2026: 00:00 -04 -> 01:00 -03; local midnight never shows.
    w = windows_at("America/Santiago", utc(2026, 9, 6, 4, 30))

    assert w.day == dt.date(2026, 9, 6)
    assert (w.day_begin, w.day_end) == (utc(2026, 9, 6, 4), utc(2026, 9, 7, 3))
    before = windows_at("America/Santiago", utc(2026, 9, 6, 3, 59))
    assert before.day == dt.date(2026, 9, 5)
    assert before.day_end == w.day_begin


def test_a_zone_whose_clocks_go_back_at_midnight_gives_the_day_before_25_hours() -> None:
    # Santiago, 5 Apr 2026: 24:00 -03 -> 23:00 -04 on the 4th; the 5th begins at 04:00 UTC.
    w = windows_at("America/Santiago", utc(2026, 4, 5, 3, 30))

    assert w.day == dt.date(2026, 4, 4)
    assert (w.day_begin, w.day_end) == (utc(2026, 4, 4, 3), utc(2026, 4, 5, 4))
    assert windows_at("America/Santiago", utc(2026, 4, 5, 4)).day == dt.date(2026, 4, 5)


def test_a_calendar_day_a_zone_skipped_is_never_a_window() -> None:
    # Samoa skipped 30 Dec 2011 (UTC-10 -> UTC+14): the 29th ends where the 31st begins.
    before = windows_at("Pacific/Apia", utc(2011, 12, 30, 9, 59))
    after = windows_at("Pacific/Apia", utc(2011, 12, 30, 10))

    assert (before.day, after.day) == (dt.date(2011, 12, 29), dt.date(2011, 12, 31))
    assert before.day_end == after.day_begin == utc(2011, 12, 30, 10)
    # December 2011 in Samoa ended a day early in UTC terms.
    assert after.month_end == utc(2011, 12, 31, 10)


def test_december_rolls_into_january_of_the_next_year() -> None:
    w = windows_at("America/New_York", utc(2027, 1, 1, 4, 59))  # 23:59 on 31 Dec, EST

    assert (w.day, w.month) == (dt.date(2026, 12, 31), dt.date(2026, 12, 1))
    assert w.month_end == utc(2027, 1, 1, 5)


def test_february_of_a_leap_year_has_29_days() -> None:
    w = windows_at("UTC", utc(2028, 2, 29, 23, 59))

    assert w.day == dt.date(2028, 2, 29)
    assert w.month_end == utc(2028, 3, 1)
    assert w.month_end - w.month_begin == dt.timedelta(days=29)


def test_lifetime_counters_are_keyed_by_one_fixed_date() -> None:
    assert dt.date(1970, 1, 1) == LIFETIME_START


@pytest.mark.parametrize(
    "tz",
    [
        "UTC",
        "America/New_York",
        "Europe/Berlin",
        "Australia/Lord_Howe",  # DST moves the clocks by 30 minutes
        "America/Santiago",
        "America/Havana",  # DST changes at midnight
        "Asia/Kathmandu",
    ],
)
def test_every_instant_of_a_year_lies_in_one_day_and_month_that_tile_time(tz: str) -> None:
    """Every quarter hour of 2026: begin <= instant < end, and each day ends exactly where the
    next begins (no gap, no overlap) at an instant whose local date is the next day."""
    zone = ZoneInfo(tz)
    instant = utc(2026, 1, 1)
    previous = windows_at(tz, instant - dt.timedelta(minutes=15))
    while instant < utc(2027, 1, 1):
        w = windows_at(tz, instant)
        assert w.day_begin <= instant < w.day_end
        assert w.month_begin <= instant < w.month_end
        assert w.day == instant.astimezone(zone).date()
        assert w.month == w.day.replace(day=1)
        if w.day != previous.day:
            assert w.day_begin == previous.day_end
            assert w.day_begin.astimezone(zone).date() == w.day
            assert (w.day_begin - dt.timedelta(microseconds=1)).astimezone(zone).date() < w.day
        if w.month != previous.month:
            assert w.month_begin == previous.month_end == w.day_begin
        # A local day is 23 to 25 hours long, whatever the zone does.
        assert dt.timedelta(hours=23) <= w.day_end - w.day_begin <= dt.timedelta(hours=25)
        previous = w
        instant += dt.timedelta(minutes=15)


def test_windows_cut_again_when_an_instant_leaves_the_day_they_were_cut_for() -> None:
    """The windows are reused within a day (one per zone, per process) and cut anew at
    the next day's first instant, and for an earlier day too (a charge's own ts)."""
    tokyo = "Asia/Tokyo"
    evening = dt.datetime(2026, 1, 31, 14, 59, 59, 999999, tzinfo=dt.UTC)  # 23:59:59 there
    first = windows_at(tokyo, evening)
    assert windows_at(tokyo, evening - dt.timedelta(hours=8)) is first
    midnight = windows_at(tokyo, evening + dt.timedelta(microseconds=1))
    assert (midnight.day, midnight.month) == (dt.date(2026, 2, 1), dt.date(2026, 2, 1))
    earlier = windows_at(tokyo, evening - dt.timedelta(days=40))
    assert (earlier.day, earlier.month) == (dt.date(2025, 12, 22), dt.date(2025, 12, 1))
    assert windows_at(tokyo, evening) == first
    # A naive instant is not compared with the cached windows' aware ones.
    assert windows_at(tokyo, dt.datetime(2026, 1, 31, 12, 0)).tz == tokyo
