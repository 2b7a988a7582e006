"""Burn rate and when a cap is reached at this pace. Pure: numbers and instants in."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Forecast:
    window: str  # "daily" | "monthly"
    rate_nanos_per_hour: int
    projected_nanos: int  # at the window's end, at this pace
    reaches_cap_at: dt.datetime | None  # None: not within this window (or no cap)
    already_over: bool

    @property
    def per_day_nanos(self) -> int:
        return self.rate_nanos_per_hour * 24


def forecast(
    *,
    window: str,
    spent: int,
    cap: int | None,
    begin: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
) -> Forecast | None:
    """The pace since the window began, carried on to its end.

    ``None`` before a minute of the window has passed (no pace to speak of). The cap is
    "reached" when spend would equal it, as the check's ``>`` lets a call reach it exactly.
    """
    elapsed = (now - begin).total_seconds()
    if elapsed < 60:
        return None
    rate = spent / elapsed  # nanos per second
    left = max(0.0, (end - now).total_seconds())
    projected = int(spent + rate * left)
    reaches: dt.datetime | None = None
    over = cap is not None and spent >= cap
    if cap is not None and not over and rate > 0:
        eta = now + dt.timedelta(seconds=(cap - spent) / rate)
        if eta < end:
            # "around 14:20": to the nearest minute (a pace is no finer than that).
            reaches = (eta + dt.timedelta(seconds=30)).replace(second=0, microsecond=0)
    return Forecast(
        window=window,
        rate_nanos_per_hour=int(rate * 3600),
        projected_nanos=projected,
        reaches_cap_at=reaches,
        already_over=over,
    )
