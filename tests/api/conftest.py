"""Fixtures of the API tests: a clock the services read instead of the wall clock."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone as django_timezone

T0 = dt.datetime(2026, 5, 12, 9, 30, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Fixes ``django.utils.timezone.now`` (where the services read the time when the
    views pass no ``now``): time moves by ``clock.advance(seconds)``, never by sleeping."""
    c = Clock()
    monkeypatch.setattr(django_timezone, "now", lambda: c.now)
    return c
