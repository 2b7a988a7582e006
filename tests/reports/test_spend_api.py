"""GET /api/spend: the report's sums are the ledger's sums, for every grouping and zone."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from collections import defaultdict
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from budgets.ledger.writer import insert_charges
from budgets.models import Charge
from hal0.money import usd_number
from personas.models import Persona

UTC = dt.UTC
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",  # +05:30: midnights inside a UTC hour
    "Asia/Kathmandu",  # +05:45
    "Australia/Adelaide",  # +09:30 / +10:30 with DST
    "Pacific/Kiritimati",  # +14: most of a UTC day falls on the next local day
    "Pacific/Pago_Pago",  # -11
]
GROUPINGS = ["day", "week", "month", "agent", "persona", "model", "surface"]
_ids = itertools.count()


def charge(persona: Persona, ts: dt.datetime, **row: Any) -> Charge:
    values = {
        "ts": ts,
        "surface": "openrouter",
        "model": "m1",
        "cost_nanos": 1_000_000,
        "request_id": f"r{next(_ids)}",
        **row,
    }
    return insert_charges(persona, [values], source="api")[0]


def expected_rows(
    start: dt.date, end: dt.date, tz: str, group_by: list[str], **filters: str
) -> dict[tuple[str, ...], list[int]]:
    """The report as summed straight from the ledger's rows, in Python."""
    zone = ZoneInfo(tz)
    out: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for c in Charge.objects.select_related("persona"):
        day = c.ts.astimezone(zone).date()
        if not start <= day <= end:
            continue
        fields = {
            "agent": c.persona.agent_id,
            "persona": c.persona.slug,
            "model": c.model,
            "surface": c.surface,
        }
        if any(fields[k] != v for k, v in filters.items()):
            continue
        key: list[str] = []
        for g in group_by:
            if g == "day":
                key.append(day.isoformat())
            elif g == "week":
                key.append((day - dt.timedelta(days=day.weekday())).isoformat())
            elif g == "month":
                key.append(f"{day:%Y-%m}")
            elif g == "persona":
                if "agent" not in group_by:
                    key.append(c.persona.agent_id)
                key.append(c.persona.slug)
            else:
                key.append(fields[g])
        sums = out[tuple(key)]
        sums[0] += c.cost_nanos or 0
        sums[1] += 1
        sums[2] += c.input_tokens or 0
        sums[3] += c.output_tokens or 0
        sums[4] += c.cost_nanos is None
    return out


def as_expected_json(sums: list[int]) -> dict[str, Any]:
    cost, n, tin, tout, unpriced = sums
    return {
        "cost_usd": None if n and unpriced == n else usd_number(cost),
        "charges": n,
        "input_tokens": tin,
        "output_tokens": tout,
        "unpriced_charges": unpriced,
    }


def columns(group_by: list[str]) -> list[str]:
    cols: list[str] = []
    for g in group_by:
        if g == "persona" and "agent" not in group_by:
            cols.append("agent")
        cols.append(g)
    return cols


def get(client: APIClient, **params: str) -> Any:
    return client.get("/api/spend", params)


@pytest.fixture
def two_agents(make_persona: Any) -> tuple[Persona, Persona, Persona]:
    return (
        make_persona("hermes", "coder"),
        make_persona("hermes", "writer"),
        make_persona("atlas", "coder"),
    )


# ---------------------------------------------------------------------------------------
# The property: every grouping, every zone, random charges


def _near_midnight(day: dt.date, tz: str, minutes: int) -> dt.datetime:
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)
    return (midnight + dt.timedelta(minutes=minutes)).replace(tzinfo=None)


# Half of the charges land within 90 minutes of some zone's local midnight, where a wrong
# cut between days would show; the rest anywhere around the month ends and March's DST.
instants = st.one_of(
    st.datetimes(min_value=dt.datetime(2026, 2, 25), max_value=dt.datetime(2026, 4, 5)),
    st.builds(
        _near_midnight,
        st.dates(dt.date(2026, 2, 25), dt.date(2026, 4, 5)),
        st.sampled_from(ZONES),
        st.integers(-90, 90),
    ),
)

charges_strategy = st.lists(
    st.tuples(
        st.integers(0, 2),  # which persona
        instants,
        st.sampled_from(["m1", "m2", "m3"]),
        st.sampled_from(["openrouter", "local"]),
        st.one_of(st.none(), st.integers(0, 5_000_000_000)),  # None: cost not recorded
        st.one_of(st.none(), st.integers(0, 100_000)),
        st.one_of(st.none(), st.integers(0, 100_000)),
    ),
    max_size=25,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=charges_strategy,
    tz=st.sampled_from(ZONES),
    group_by=st.lists(st.sampled_from(GROUPINGS), unique=True, max_size=3).filter(
        lambda g: sum(x in ("day", "week", "month") for x in g) <= 1
    ),
    start=st.dates(dt.date(2026, 2, 26), dt.date(2026, 3, 31)),
    length=st.integers(0, 10),
    filter_by=st.sampled_from([{}, {"model": "m2"}, {"agent": "hermes"}, {"surface": "local"}]),
)
def test_the_report_sums_equal_the_ledger_s_sums(
    api_client: APIClient,
    two_agents: tuple[Persona, Persona, Persona],
    rows: list[tuple[Any, ...]],
    tz: str,
    group_by: list[str],
    start: dt.date,
    length: int,
    filter_by: dict[str, str],
) -> None:
    # Charges pile up across examples (the ledger is insert-only): the expected sums are
    # always taken over every charge recorded so far.
    for who, ts, model, surface, cost, tin, tout in rows:
        charge(
            two_agents[who],
            ts.replace(tzinfo=UTC),
            model=model,
            surface=surface,
            cost_nanos=cost,
            input_tokens=tin,
            output_tokens=tout,
        )
    end = start + dt.timedelta(days=length)
    params = {"from": start.isoformat(), "to": end.isoformat(), "tz": tz, **filter_by}
    if group_by:
        params["group_by"] = ",".join(group_by)
    response = get(api_client, **params)
    assert response.status_code == 200, response.content
    body = response.json()
    group_by = group_by or ["day"]
    expected = expected_rows(start, end, tz, group_by, **filter_by)
    cols = columns(group_by)
    assert body["rows"] == [
        {**dict(zip(cols, key, strict=True)), **as_expected_json(sums)}
        for key, sums in sorted(expected.items())
    ]
    total = [sum(s[i] for s in expected.values()) for i in range(5)]
    assert body["total"] == as_expected_json(total)


# ---------------------------------------------------------------------------------------
# Range edges


def test_to_is_inclusive_and_the_next_midnight_is_not(
    api_client: APIClient, two_agents: tuple[Persona, ...]
) -> None:
    coder = two_agents[0]
    charge(coder, dt.datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC), cost_nanos=1)
    charge(coder, dt.datetime(2026, 4, 1, 0, 0, tzinfo=UTC), cost_nanos=10)
    charge(coder, dt.datetime(2026, 3, 1, 0, 0, tzinfo=UTC), cost_nanos=100)
    charge(coder, dt.datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC), cost_nanos=1000)
    body = get(api_client, **{"from": "2026-03-01", "to": "2026-03-31", "group_by": "month"})
    assert body.json()["rows"] == [
        {"month": "2026-03", **as_expected_json([101, 2, 0, 0, 0])},
    ]
    one_day = get(api_client, **{"from": "2026-03-31", "to": "2026-03-31"}).json()
    assert one_day["rows"] == [{"day": "2026-03-31", **as_expected_json([1, 1, 0, 0, 0])}]


def test_a_dst_day_has_its_own_hours(
    api_client: APIClient, two_agents: tuple[Persona, ...]
) -> None:
    """Berlin, 2026-03-29: clocks jump 02:00 -> 03:00, the day is 23 hours long."""
    coder = two_agents[0]
    charge(coder, dt.datetime(2026, 3, 28, 22, 59, tzinfo=UTC), cost_nanos=1)  # 28th 23:59 CET
    charge(coder, dt.datetime(2026, 3, 28, 23, 0, tzinfo=UTC), cost_nanos=10)  # 29th 00:00 CET
    charge(coder, dt.datetime(2026, 3, 29, 21, 59, tzinfo=UTC), cost_nanos=100)  # 29th 23:59 CEST
    charge(coder, dt.datetime(2026, 3, 29, 22, 0, tzinfo=UTC), cost_nanos=1000)  # 30th 00:00 CEST
    params = {"from": "2026-03-28", "to": "2026-03-30", "tz": "Europe/Berlin"}
    rows = get(api_client, **params).json()["rows"]
    assert [(r["day"], r["charges"], r["cost_usd"]) for r in rows] == [
        ("2026-03-28", 1, 0.000000001),
        ("2026-03-29", 2, 0.00000011),
        ("2026-03-30", 1, 0.000001),
    ]


def test_a_half_hour_zone_cuts_the_hour_at_its_midnight(
    api_client: APIClient, two_agents: tuple[Persona, ...]
) -> None:
    """Asia/Kolkata (+05:30): 18:29 UTC is 23:59 of one day, 18:30 UTC 00:00 of the next."""
    coder = two_agents[0]
    charge(coder, dt.datetime(2026, 3, 9, 18, 29, tzinfo=UTC), cost_nanos=1)
    charge(coder, dt.datetime(2026, 3, 9, 18, 30, tzinfo=UTC), cost_nanos=10)
    params = {"from": "2026-03-09", "to": "2026-03-10", "tz": "Asia/Kolkata"}
    rows = get(api_client, **params).json()["rows"]
    assert [(r["day"], r["charges"]) for r in rows] == [("2026-03-09", 1), ("2026-03-10", 1)]


@pytest.mark.parametrize(
    "tz",
    [
        "UTC",
        "Europe/Berlin",  # +01:00 then +02:00: 23:00 UTC (22:00 in summer) is the next day
        "America/Los_Angeles",  # -08:00 / -07:00: the first hours of a UTC day are the last
        "Pacific/Kiritimati",  # +14:00: most of a UTC day is the next local day
        "Asia/Kolkata",  # +05:30: 18:00-19:00 UTC is cut in two
    ],
)
def test_whole_utc_days_and_the_hours_that_move_to_another_local_day_add_up(
    api_client: APIClient, two_agents: tuple[Persona, ...], tz: str
) -> None:
    """A charge every 50 minutes across three weeks around Europe's and America's DST
    change: every day of the report, read from the daily rollups with the moved hours
    taken from one day and added to the next, equals the ledger's sum."""
    coder, writer, _ = two_agents
    start = dt.datetime(2026, 3, 1, 0, 5, tzinfo=UTC)
    for n in range(21 * 24 * 60 // 50):
        who = coder if n % 3 else writer
        charge(who, start + dt.timedelta(minutes=50 * n), model=f"m{n % 2}", cost_nanos=n)
    first, last = dt.date(2026, 3, 3), dt.date(2026, 3, 19)
    params = {"from": first.isoformat(), "to": last.isoformat(), "tz": tz}
    body = get(api_client, **params, group_by="day,model").json()
    expected = expected_rows(first, last, tz, ["day", "model"])
    assert body["rows"] == [
        {**dict(zip(["day", "model"], key, strict=True)), **as_expected_json(sums)}
        for key, sums in sorted(expected.items())
    ]
    assert len(body["rows"]) == 2 * 17


def test_weeks_start_on_monday_and_months_end_where_they_end(
    api_client: APIClient, two_agents: tuple[Persona, ...]
) -> None:
    coder = two_agents[0]
    for day in (dt.date(2026, 1, 31), dt.date(2026, 2, 1), dt.date(2026, 2, 2)):
        charge(coder, dt.datetime.combine(day, dt.time(12), tzinfo=UTC))
    weeks = get(api_client, **{"from": "2026-01-31", "to": "2026-02-02", "group_by": "week"})
    # 2026-01-31 is a Saturday: its week began on Monday 2026-01-26; 2026-02-02 is a Monday.
    assert [(r["week"], r["charges"]) for r in weeks.json()["rows"]] == [
        ("2026-01-26", 2),
        ("2026-02-02", 1),
    ]
    months = get(api_client, **{"from": "2026-01-31", "to": "2026-02-02", "group_by": "month"})
    assert [(r["month"], r["charges"]) for r in months.json()["rows"]] == [
        ("2026-01", 1),
        ("2026-02", 2),
    ]


# ---------------------------------------------------------------------------------------
# CSV


def test_the_csv_holds_the_json_rows(
    api_client: APIClient, two_agents: tuple[Persona, ...]
) -> None:
    coder, writer, atlas = two_agents
    charge(coder, dt.datetime(2026, 3, 2, 9, tzinfo=UTC), cost_nanos=421_000_000, input_tokens=7)
    charge(writer, dt.datetime(2026, 3, 2, 10, tzinfo=UTC), model="m2", output_tokens=3)
    charge(atlas, dt.datetime(2026, 3, 3, 10, tzinfo=UTC), cost_nanos=None)
    params = {"from": "2026-03-01", "to": "2026-03-31", "group_by": "day,persona,model"}
    body = get(api_client, **params).json()
    response = api_client.get("/api/spend", params, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="spend-20260301-20260331.csv"' in response["Content-Disposition"]
    lines = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(lines) == len(body["rows"]) == 3

    def typed(line: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = dict(line)
        out["cost_usd"] = float(Decimal(line["cost_usd"])) if line["cost_usd"] else None
        for key in ("charges", "input_tokens", "output_tokens", "unpriced_charges"):
            out[key] = int(line[key])
        return out

    assert [typed(line) for line in lines] == body["rows"]
    assert lines[0]["cost_usd"] == "0.421"


# ---------------------------------------------------------------------------------------
# Who sees what


def test_an_agent_key_sees_its_own_agent_only(
    agent_client: Any, two_agents: tuple[Persona, ...]
) -> None:
    for p in two_agents:
        charge(p, dt.datetime(2026, 3, 2, 9, tzinfo=UTC))
    client = agent_client("hermes")
    params = {"from": "2026-03-01", "to": "2026-03-31", "group_by": "agent,persona"}
    rows = get(client, **params).json()["rows"]
    assert [(r["agent"], r["persona"]) for r in rows] == [
        ("hermes", "coder"),
        ("hermes", "writer"),
    ]
    other = get(client, **{**params, "agent": "atlas"})
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "agent.unknown"
    # atlas's persona "coder" shares a name with hermes's: the key still sees only its own.
    same_name = get(client, **{**params, "persona": "coder"}).json()
    assert same_name["total"]["charges"] == 1


def test_an_unknown_persona_is_404(api_client: APIClient, two_agents: tuple[Persona, ...]) -> None:
    response = get(api_client, agent="hermes", persona="nobody")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "persona.not_found"
    assert get(api_client, agent="nobody").json()["error"]["code"] == "agent.unknown"


def test_a_report_needs_a_key(db: None, settings: Any) -> None:
    settings.HAL0_REQUIRE_API_KEY = True
    response = APIClient().get("/api/spend")
    assert response.status_code == 401


# ---------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"from": "2026-3-1"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),  # 367 days
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"tz": "../../etc/passwd"}, "tz"),
        ({"group_by": "day,hour"}, "group_by"),
        ({"group_by": "day,month"}, "group_by"),
        ({"group_by": "model,model"}, "group_by"),
        ({"model": "x" * 201}, "model"),
    ],
)
def test_bad_parameters_are_400_naming_the_key(
    api_client: APIClient, params: dict[str, str], key: str
) -> None:
    response = get(api_client, **params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "report.invalid"
    assert error["details"] == {"key": key}


def test_errors_are_json_even_when_csv_was_asked_for(api_client: APIClient) -> None:
    response = api_client.get("/api/spend", {"tz": "nowhere"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "report.invalid"


def test_a_whole_leap_year_is_allowed(api_client: APIClient) -> None:
    response = get(api_client, **{"from": "2028-01-01", "to": "2028-12-31"})
    assert response.status_code == 200
    assert response.json()["rows"] == []
    assert response.json()["total"]["cost_usd"] == 0
