"""The Spend page's and the persona page's range panel: bars, breakdown, CSV, forecast."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from django.test import Client
from django.utils import timezone

from budgets.ledger.writer import insert_charges

UTC = dt.UTC


def spend(persona: Any, ts: dt.datetime, model: str, cost: int | None, rid: str) -> None:
    insert_charges(
        persona,
        [
            {
                "ts": ts,
                "surface": "openrouter",
                "model": model,
                "cost_nanos": cost,
                "request_id": rid,
                "input_tokens": 1000,
                "output_tokens": 10,
            }
        ],
        source="api",
    )


def last_month_first_day() -> dt.datetime:
    first = timezone.now().date().replace(day=1)
    start = (first - dt.timedelta(days=1)).replace(day=1)
    return dt.datetime.combine(start, dt.time(12), tzinfo=UTC)


def test_last_month_by_model_in_two_clicks(staff_client: Client, make_persona: Any) -> None:
    hermes = make_persona("hermes", "hermes", "monthly_usd = 100.0\n")
    day = last_month_first_day()
    spend(hermes, day, "gpt-4o", 2_500_000_000, "a")
    spend(hermes, day + dt.timedelta(days=1), "gpt-4o", 500_000_000, "b")
    spend(hermes, day, "haiku", 1_000_000_000, "c")
    spend(hermes, day, "haiku", None, "d")
    spend(hermes, timezone.now() - dt.timedelta(seconds=5), "haiku", 1_000_000, "e")  # this month
    page = staff_client.get(f"/admin/personas/persona/{hermes.pk}/change/", {"range": "last_month"})
    body = page.content.decode()
    assert page.status_code == 200
    assert 'data-range="last_month" class="current"' in body
    table = body[body.index('id="hal0-breakdown"') :]
    table = table[: table.index("</table>")]
    # Biggest first, with token sums; the unpriced charge says so instead of adding $0.
    assert table.index("gpt-4o") < table.index("haiku")
    assert "$3.00" in table
    assert "$1.00" in table
    assert "+ 1 not recorded" in table
    assert "2,000" in table  # tokens in of the two haiku charges
    forecast = body[body.index('id="hal0-forecast"') :]
    assert "at this pace" in forecast[: forecast.index("</ul>")]


def test_the_csv_is_the_breakdown_on_screen(staff_client: Client, make_persona: Any) -> None:
    coder = make_persona("hermes", "coder")
    writer = make_persona("hermes", "writer")
    now = timezone.now()
    spend(coder, now - dt.timedelta(minutes=5), "m1", 1_234_567, "a")
    spend(writer, now - dt.timedelta(minutes=4), "m2", 2_000_000, "b")
    page = staff_client.get("/admin/spend/", {"range": "today", "by": "persona"}).content.decode()
    href = page[page.index('id="hal0-csv" href="') + len('id="hal0-csv" href="') :]
    href = href[: href.index('"')].replace("&amp;", "&")
    response = staff_client.get(href)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(response.content.decode())))
    assert lines[0] == [
        "agent",
        "persona",
        "cost_usd",
        "charges",
        "input_tokens",
        "output_tokens",
        "unpriced_charges",
    ]
    assert sorted(lines[1:]) == [
        ["hermes", "coder", "0.001234567", "1", "1000", "10", "0"],
        ["hermes", "writer", "0.002", "1", "1000", "10", "0"],
    ]
    assert 'id="hal0-top"' in page


def test_the_csv_needs_a_staff_session(client: Client) -> None:
    response = client.get("/admin/spend/csv/")
    assert response.status_code == 302


def test_a_bad_custom_range_says_why(staff_client: Client, make_persona: Any) -> None:
    make_persona()
    body = staff_client.get(
        "/admin/spend/", {"range": "custom", "from": "2026-02-02", "to": "2026-02-01"}
    ).content.decode()
    assert "A custom range starts on or before its last day." in body
    assert 'data-range="30d" class="current"' in body


def test_the_csv_of_an_unknown_persona_is_404(staff_client: Client, make_persona: Any) -> None:
    make_persona()
    response = staff_client.get("/admin/spend/csv/", {"agent": "hermes", "persona": "nobody"})
    assert response.status_code == 404
