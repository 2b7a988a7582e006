"""Budget windows: the local day and month of a persona's timezone, and lifetime.

Boundaries are computed in the budget's IANA zone (default UTC) and kept as UTC instants,
so a charge at 23:59 and one at 00:01 local time fall on different days even when both
are the same UTC date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

# Lifetime counters are keyed by this date: the lifetime window never resets.
LIFETIME_START = dt.date(1970, 1, 1)


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True)
class Windows:
    tz: str
    day: dt.date  # local date of the current day
    month: dt.date  # first local day of the current month
    day_begin: dt.datetime  # UTC instants: [begin, end)
    day_end: dt.datetime
    month_begin: dt.datetime
    month_end: dt.datetime


def _local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    # A zone whose clocks jump at midnight has no 00:00 on that day; zoneinfo then gives
    # the instant the wall clock would have shown it (fold=0), which is still the first
    # instant of the local day once converted to UTC.
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(dt.UTC)


def _next_month(first: dt.date) -> dt.date:
    return dt.date(first.year + (first.month == 12), first.month % 12 + 1, 1)


# Per process: the windows last cut in each zone. A check cuts the same ones over and
# over (the persona's, the agent's, the platform's), and cutting them was a tenth of it.
_LAST: dict[str, Windows] = {}
_LAST_MAX = 1_000


def windows_at(tz_name: str, instant: dt.datetime) -> Windows:
    """The day and month windows of ``tz_name`` that contain ``instant``."""
    last = _LAST.get(tz_name)
    if last is not None and instant.tzinfo is not None and last.day_begin <= instant < last.day_end:
        return last
    found = _cut(tz_name, instant)
    if len(_LAST) >= _LAST_MAX:
        _LAST.clear()
    _LAST[tz_name] = found
    return found


def _cut(tz_name: str, instant: dt.datetime) -> Windows:
    tzinfo = zone(tz_name or "UTC")
    day = instant.astimezone(tzinfo).date()
    month = day.replace(day=1)
    return Windows(
        tz=tz_name or "UTC",
        day=day,
        month=month,
        day_begin=_local_midnight(day, tzinfo),
        day_end=_local_midnight(day + dt.timedelta(days=1), tzinfo),
        month_begin=_local_midnight(month, tzinfo),
        month_end=_local_midnight(_next_month(month), tzinfo),
    )


def local_midnight(day: dt.date, tz_name: str) -> dt.datetime:
    """The UTC instant ``day`` starts at in ``tz_name``."""
    return _local_midnight(day, zone(tz_name or "UTC"))
