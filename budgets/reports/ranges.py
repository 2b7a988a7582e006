"""Date ranges an operator picks on the Spend and persona pages, and the period each is
compared with. Pure: ``today`` is passed in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

PRESETS = (
    ("today", "Today"),
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("month", "This month"),
    ("last_month", "Last month"),
    ("custom", "Custom"),
)
DEFAULT = "30d"
MAX_DAYS = 366


@dataclass(frozen=True)
class DateRange:
    preset: str
    start: dt.date
    end: dt.date  # inclusive
    previous_start: dt.date
    previous_end: dt.date
    error: str = ""  # why a custom range was replaced by the default

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def label(self) -> str:
        if self.start == self.end:
            return f"{self.start:%Y-%m-%d}"
        return f"{self.start:%Y-%m-%d} to {self.end:%Y-%m-%d}"

    @property
    def previous_label(self) -> str:
        if self.previous_start == self.previous_end:
            return f"{self.previous_start:%Y-%m-%d}"
        return f"{self.previous_start:%Y-%m-%d} to {self.previous_end:%Y-%m-%d}"


def _month_before(first: dt.date) -> dt.date:
    return (first - dt.timedelta(days=1)).replace(day=1)


def _same_length_before(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    length = (end - start).days + 1
    return start - dt.timedelta(days=length), start - dt.timedelta(days=1)


def _date(raw: str | None) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        return None


def pick(params: Mapping[str, str], today: dt.date) -> DateRange:
    """The range named by ``range`` (and ``from``/``to`` for custom) in ``params``.

    Months compare with the calendar month before (this month so far with the same days of
    last month); other ranges with as many days just before.
    """
    preset = params.get("range") or DEFAULT
    error = ""
    if preset == "custom":
        start, end = _date(params.get("from")), _date(params.get("to"))
        if start is None or end is None:
            error = "Pick both days of a custom range (YYYY-MM-DD)."
        elif start > end:
            error = "A custom range starts on or before its last day."
        elif (end - start).days + 1 > MAX_DAYS:
            error = f"A range covers at most {MAX_DAYS} days."
        else:
            return DateRange("custom", start, end, *_same_length_before(start, end))
        preset = DEFAULT
    if preset == "today":
        return DateRange(preset, today, today, *_same_length_before(today, today), error=error)
    if preset == "7d":
        start = today - dt.timedelta(days=6)
        return DateRange(preset, start, today, *_same_length_before(start, today), error=error)
    if preset == "month":
        first = today.replace(day=1)
        before = _month_before(first)
        # The same days of last month, cut at its own end (31 March vs February).
        previous_end = min(
            before + dt.timedelta(days=(today - first).days),
            first - dt.timedelta(days=1),
        )
        return DateRange(preset, first, today, before, previous_end, error=error)
    if preset == "last_month":
        first = _month_before(today.replace(day=1))
        end = today.replace(day=1) - dt.timedelta(days=1)
        before = _month_before(first)
        return DateRange(preset, first, end, before, first - dt.timedelta(days=1), error=error)
    start = today - dt.timedelta(days=29)
    return DateRange(DEFAULT, start, today, *_same_length_before(start, today), error=error)
