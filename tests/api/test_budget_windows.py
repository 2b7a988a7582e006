"""Day and month windows over HTTP, in the budget's timezone (extension: ``timezone``).

The service reads the time from ``django.utils.timezone.now`` (the budget services take
``now=`` but the views pass none), so the ``clock`` fixture sets that one function to a
chosen instant: every charge, check and GET then runs at that instant, end to end through
the real views, counters and database. Expected instants are written out by hand.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone as django_timezone
from rest_framework.test import APIClient

from budgets.models import SpendCounter
from personas.models import Persona

pytestmark = pytest.mark.django_db

URL = "/api/agents/hermes/personas/coder/budget"
CAPS = "daily_usd = 10.0\nmonthly_usd = 100.0\nlifetime_usd = 1000.0\n"


class Clock:
    """The instant ``django.utils.timezone.now()`` returns while a test runs."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)

    def at(self, tz: str, *wall: int, fold: int = 0) -> dt.datetime:
        """Set the clock to a local wall time in ``tz``; returns the instant in UTC."""
        year, month, day, hour, minute, second = (*wall, 0, 0, 0)[:6]
        local = dt.datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(tz), fold=fold)
        self.now = local.astimezone(dt.UTC)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(django_timezone, "now", lambda: c.now)
    return c


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def zoned(make_persona: Callable[..., Persona]) -> Callable[[str], Persona]:
    def make(tz: str) -> Persona:
        return make_persona("hermes", "coder", CAPS + f'timezone = "{tz}"\n')

    return make


_ids = iter(range(1, 10_000))


def charge(client: APIClient, cost: float) -> dict[str, Any]:
    body = {"surface": "openrouter", "model": "m", "cost_usd": cost, "request_id": f"r{next(_ids)}"}
    response = client.post(f"{URL}/charge", body, format="json")
    assert response.status_code == 200, response.content
    out: dict[str, Any] = response.json()
    return out


def state(client: APIClient) -> dict[str, Any]:
    response = client.get(URL)
    assert response.status_code == 200, response.content
    out: dict[str, Any] = response.json()
    return out


def spend(client: APIClient) -> tuple[float, float, float]:
    s = state(client)["spend"]
    return s["today_usd"], s["mtd_usd"], s["lifetime_usd"]


# --- day boundaries -------------------------------------------------------------------------


def test_new_york_2359_and_0001_fall_on_different_days_though_the_utc_date_is_the_same(
    client: APIClient, clock: Clock, zoned: Callable[[str], Persona]
) -> None:
    zoned("America/New_York")

    assert clock.at("America/New_York", 2026, 1, 15, 23, 59) == dt.datetime(
        2026, 1, 16, 4, 59, tzinfo=dt.UTC
    )
    first = charge(client, 1.25)
    assert first["row"]["ts"] == "2026-01-16T04:59:00+00:00"
    assert first["spend"]["today_usd"] == 1.25
    assert first["resets_at"]["daily"] == "2026-01-16T05:00:00+00:00"
    assert spend(client) == (1.25, 1.25, 1.25)

    clock.at("America/New_York", 2026, 1, 16, 0, 1)  # 05:01 UTC, still 16 January in UTC
    second = charge(client, 0.5)
    assert second["spend"] == {"today_usd": 0.5, "mtd_usd": 1.75, "lifetime_usd": 1.75}
    after = state(client)
    assert after["spend"] == {"today_usd": 0.5, "mtd_usd": 1.75, "lifetime_usd": 1.75}
    assert after["remaining"]["daily_usd"] == 9.5
    assert after["resets_at"]["daily"] == "2026-01-17T05:00:00+00:00"
    assert after["resets_at"]["monthly"] == "2026-02-01T05:00:00+00:00"


def test_tokyo_2359_and_0001_fall_on_different_days(
    client: APIClient, clock: Clock, zoned: Callable[[str], Persona]
) -> None:
    zoned("Asia/Tokyo")  # UTC+9: the local day starts at 15:00 UTC the day before

    clock.at("Asia/Tokyo", 2026, 1, 15, 23, 59)
    assert charge(client, 2.0)["resets_at"]["daily"] == "2026-01-15T15:00:00+00:00"
    assert spend(client) == (2.0, 2.0, 2.0)

    clock.at("Asia/Tokyo", 2026, 1, 16, 0, 1)
    charge(client, 0.25)
    assert spend(client) == (0.25, 2.25, 2.25)
    assert state(client)["resets_at"]["daily"] == "2026-01-16T15:00:00+00:00"


def test_the_same_two_instants_are_one_day_for_a_utc_budget(
    client: APIClient, clock: Clock, zoned: Callable[[str], Persona]
) -> None:
    zoned("UTC")

    clock.at("America/New_York", 2026, 1, 15, 23, 59)
    charge(client, 1.25)
    clock.at("America/New_York", 2026, 1, 16, 0, 1)
    charge(client, 0.5)

    assert spend(client) == (1.75, 1.75, 1.75)
    assert state(client)["resets_at"]["daily"] == "2026-01-17T00:00:00+00:00"


def test_a_spent_daily_cap_blocks_at_2359_and_allows_again_at_0001(
    client: APIClient, clock: Clock, make_persona: Callable[..., Persona]
) -> None:
    make_persona("hermes", "coder", 'daily_usd = 1.0\ntimezone = "America/New_York"\n')
    clock.at("America/New_York", 2026, 1, 15, 23, 58)
    charge(client, 1.0)

    clock.at("America/New_York", 2026, 1, 15, 23, 59, 59)
    late = client.post(f"{URL}/check", {"estimated_cost_usd": 0.5}, format="json").json()
    assert (late["allowed"], late["limit"], late["remaining_usd"]) == (
        False,
        "daily",
        {"daily": 0.0},
    )

    clock.at("America/New_York", 2026, 1, 16, 0, 0, 1)
    early = client.post(f"{URL}/check", {"estimated_cost_usd": 0.5}, format="json").json()
    assert (early["allowed"], early["remaining_usd"]) == (True, {"daily": 1.0})


# --- month boundaries -----------------------------------------------------------------------


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Tokyo"])
def test_month_rollover_resets_mtd_and_today_but_never_lifetime(
    client: APIClient, clock: Clock, zoned: Callable[[str], Persona], tz: str
) -> None:
    zoned(tz)
    clock.at(tz, 2026, 1, 31, 23, 59)
    before = charge(client, 3.0)
    assert before["spend"] == {"today_usd": 3.0, "mtd_usd": 3.0, "lifetime_usd": 3.0}
    first_of_feb = dt.datetime(2026, 2, 1, tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)
    assert before["resets_at"] == {
        "daily": first_of_feb.isoformat(),
        "monthly": first_of_feb.isoformat(),
    }

    clock.at(tz, 2026, 2, 1, 0, 1)
    charge(client, 0.75)

    after = state(client)
    assert after["spend"] == {"today_usd": 0.75, "mtd_usd": 0.75, "lifetime_usd": 3.75}
    assert after["remaining"] == {"daily_usd": 9.25, "monthly_usd": 99.25, "lifetime_usd": 996.25}
    first_of_mar = dt.datetime(2026, 3, 1, tzinfo=ZoneInfo(tz)).astimezone(dt.UTC)
    assert after["resets_at"]["monthly"] == first_of_mar.isoformat()


def test_new_year_rolls_the_month_over_in_the_budgets_zone(
    client: APIClient, clock: Clock, zoned: Callable[[str], Persona]
) -> None:
    zoned("America/New_York")
    clock.at("America/New_York", 2026, 12, 31, 23, 59)  # already 2027 in UTC
    charge(client, 1.0)
    assert state(client)["resets_at"]["monthly"] == "2027-01-01T05:00:00+00:00"

    clock.at("America/New_York", 2027, 1, 1, 0, 1)
    charge(client, 2.0)

    assert spend(client) == (2.0, 2.0, 3.0)


def test_an_idle_persona_reads_zero_for_the_new_day_and_keeps_the_month(
    client: APIClient, clock: Clock, zoned: Callable[[str], Persona]
) -> None:
    zoned("America/New_York")
    clock.at("America/New_York", 2026, 1, 15, 12)
    charge(client, 4.0)

    clock.at("America/New_York", 2026, 1, 17, 9)  # nothing charged since: no counter yet

    assert spend(client) == (0.0, 4.0, 4.0)
    assert state(client)["remaining"]["daily_usd"] == 10.0


# --- daylight saving time -------------------------------------------------------------------


def test_spring_forward_day_is_23_hours_and_resets_at_the_next_local_midnight(
    client: APIClient, clock: Clock, zoned: Callable[[str], Persona]
) -> None:
    zoned("America/New_York")  # 8 Mar 2026: 02:00 EST -> 03:00 EDT

    clock.at("America/New_York", 2026, 3, 8, 0, 30)  # 05:30 UTC
    assert charge(client, 1.0)["resets_at"]["daily"] == "2026-03-09T04:00:00+00:00"
    clock.at("America/New_York", 2026, 3, 8, 23, 59)  # 03:59 UTC on the 9th, EDT
    charge(client, 2.0)
    assert spend(client) == (3.0, 3.0, 3.0)

    clock.at("America/New_York", 2026, 3, 9, 0, 1)
    charge(client, 0.5)
    assert spend(client) == (0.5, 3.5, 3.5)
    assert state(client)["resets_at"]["daily"] == "2026-03-10T04:00:00+00:00"


def test_fall_back_day_counts_both_passes_through_the_repeated_hour(
    client: APIClient, clock: Clock, zoned: Callable[[str], Persona]
) -> None:
    zoned("America/New_York")  # 1 Nov 2026: 02:00 EDT -> 01:00 EST

    assert clock.at("America/New_York", 2026, 11, 1, 1, 30, fold=0).hour == 5
    charge(client, 1.0)
    assert clock.at("America/New_York", 2026, 11, 1, 1, 30, fold=1).hour == 6
    charge(client, 1.0)
    clock.at("America/New_York", 2026, 11, 1, 23, 59)  # 04:59 UTC on the 2nd
    charge(client, 1.0)

    after = state(client)
    assert after["spend"]["today_usd"] == 3.0
    assert after["resets_at"]["daily"] == "2026-11-02T05:00:00+00:00"
    clock.at("America/New_York", 2026, 11, 2, 0, 0)
    assert spend(client) == (0.0, 3.0, 3.0)


def test_berlin_dst_day_in_a_positive_offset_zone(
    client: APIClient, clock: Clock, zoned: Callable[[str], Persona]
) -> None:
    zoned("Europe/Berlin")  # 29 Mar 2026: 02:00 CET -> 03:00 CEST

    clock.at("Europe/Berlin", 2026, 3, 29, 0, 1)  # 23:01 UTC on the 28th
    first = charge(client, 1.0)
    assert first["resets_at"] == {
        "daily": "2026-03-29T22:00:00+00:00",
        "monthly": "2026-03-31T22:00:00+00:00",
    }
    clock.at("Europe/Berlin", 2026, 3, 29, 23, 59)
    charge(client, 1.0)
    assert spend(client)[0] == 2.0


# --- timezone changes -------------------------------------------------------------------------


def test_a_put_that_moves_the_timezone_recuts_the_day_around_existing_charges(
    client: APIClient, clock: Clock, zoned: Callable[[str], Persona]
) -> None:
    zoned("UTC")
    clock.now = dt.datetime(2026, 1, 15, 23, tzinfo=dt.UTC)  # 18:00 in New York
    charge(client, 1.5)
    clock.now = dt.datetime(2026, 1, 16, 2, tzinfo=dt.UTC)  # 21:00 on the 15th in New York
    assert spend(client) == (0.0, 1.5, 1.5)

    body = {"daily_usd": 10.0, "timezone": "America/New_York"}
    moved = client.put(URL, body, format="json").json()

    assert moved["budget"]["timezone"] == "America/New_York"
    assert moved["spend"]["today_usd"] == 1.5
    assert moved["resets_at"]["daily"] == "2026-01-16T05:00:00+00:00"
    back = client.put(URL, {"daily_usd": 10.0}, format="json").json()
    assert back["spend"]["today_usd"] == 0.0
    assert back["resets_at"]["daily"] == "2026-01-17T00:00:00+00:00"


def test_switching_zones_back_and_forth_never_shows_a_stale_counter(
    client: APIClient, clock: Clock, zoned: Callable[[str], Persona]
) -> None:
    zoned("UTC")
    clock.now = dt.datetime(2026, 1, 16, 12, tzinfo=dt.UTC)  # 21:00 in Tokyo, same date
    charge(client, 1.0)  # counters cut in UTC
    client.put(URL, {"daily_usd": 10.0, "timezone": "Asia/Tokyo"}, format="json")
    charge(client, 2.0)  # counters cut in Tokyo time
    client.put(URL, {"daily_usd": 10.0, "timezone": "UTC"}, format="json")
    assert spend(client) == (3.0, 3.0, 3.0)
    charge(client, 4.0)  # lands while the Tokyo counters still say 3.0
    assert SpendCounter.objects.filter(tz="Asia/Tokyo").count() == 0

    back = client.put(URL, {"daily_usd": 10.0, "timezone": "Asia/Tokyo"}, format="json").json()

    assert back["spend"] == {"today_usd": 7.0, "mtd_usd": 7.0, "lifetime_usd": 7.0}


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tz",
    [
        "Mars/Base",
        "",
        "america/new_york",
        "America/New_York ",
        "../../../etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "A" * 65,
        5,
        True,
        ["UTC"],
    ],
)
def test_put_refuses_an_unknown_timezone_and_leaves_the_file_alone(
    client: APIClient, zoned: Callable[[str], Persona], data_dir: Any, tz: object
) -> None:
    zoned("America/New_York")
    file = data_dir / "agents" / "hermes" / "personas" / "coder.toml"
    before = file.read_bytes()

    response = client.put(URL, {"daily_usd": 1.0, "timezone": tz}, format="json")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "budget.invalid"
    assert error["details"] == {"key": "timezone"}
    assert "timezone" in error["message"]
    assert "/usr/share" not in error["message"].replace("'/usr/share/zoneinfo/UTC'", "")
    assert file.read_bytes() == before
    assert state(client)["budget"]["timezone"] == "America/New_York"


def test_put_accepts_a_known_timezone_and_writes_it_to_the_file(
    client: APIClient, zoned: Callable[[str], Persona], data_dir: Any
) -> None:
    zoned("UTC")

    response = client.put(URL, {"daily_usd": 1.0, "timezone": "Asia/Kolkata"}, format="json")

    assert response.status_code == 200
    assert response.json()["budget"] == {
        "daily_usd": 1.0,
        "hard_cap": True,
        "timezone": "Asia/Kolkata",
    }
    text = (data_dir / "agents" / "hermes" / "personas" / "coder.toml").read_text()
    assert 'timezone = "Asia/Kolkata"' in text


# --- a counter built by a reader while charges for its window are being inserted -----------


@pytest.mark.requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_reader_building_a_counter_while_charges_are_inserted_never_loses_them(
    client: APIClient,
    clock: Clock,
    zoned: Callable[[str], Persona],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Charges written for a window that has no counter yet (a small ``ledger import`` of
    today's lines, say) build that counter in their own transaction. A GET at that moment
    runs on another connection, cannot see the uncommitted charges, and may build the
    counter first from the charges it can see; the insert must still add its own.

    The interleaving is made deterministic at one point: right after the writer's UPDATE
    of the counters left one without a row (``counters._add_all`` did not return its
    key), a real GET runs to completion in another thread (its own connection and
    transaction) before the writer goes on. The wrapper only adds that pause; the
    writer's code runs unchanged.
    """
    from django.db import connections, transaction
    from django.test import TestCase

    from budgets.ledger.writer import insert_charges
    from budgets.services import counters
    from budgets.services.counters import find_drift

    persona = zoned("America/New_York")
    clock.at("America/New_York", 2026, 1, 16, 9)
    main = threading.current_thread()
    seen: list[dict[str, Any]] = []
    original_add = counters._add_all

    def reader() -> None:
        try:
            seen.append(state(APIClient()))
        finally:
            connections.close_all()

    def add(persona: Persona, keys: list[Any], amount: Any, **kwargs: Any) -> set[Any]:
        matched = original_add(persona, keys, amount, **kwargs)
        if len(matched) < len(keys) and threading.current_thread() is main and not seen:
            thread = threading.Thread(target=reader)
            thread.start()
            thread.join(timeout=60)
        return matched

    monkeypatch.setattr(counters, "_add_all", add)
    row = {"ts": clock.now, "surface": "s", "model": "m", "cost_nanos": 1_500_000_000}
    with TestCase.captureOnCommitCallbacks(execute=True), transaction.atomic():
        insert_charges(persona, [{**row, "request_id": "imported-1"}], source="api")
    monkeypatch.setattr(counters, "_add_all", original_add)

    assert seen[0]["spend"]["today_usd"] == 0.0  # the reader ran before the commit
    assert spend(client) == (1.5, 1.5, 1.5)
    assert list(find_drift(persona=persona)) == []
