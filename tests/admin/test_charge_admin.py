"""The ledger in the admin: readable by staff, unchangeable by anyone, built for size."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from budgets.admin import CappedCountPaginator
from budgets.models import Charge
from hal0.money import to_decimal
from tests.budgets.ledger_support import make_persona, record

pytestmark = pytest.mark.django_db

LIST = "/admin/budgets/charge/"


@pytest.fixture
def charges(db: None) -> list[Charge]:
    coder = make_persona("hermes", "coder")
    other = make_persona("atlas", "scout")
    rows = record(coder, 3)
    rows += record(coder, 1, cost_nanos=None, request_id="req-unpriced")
    rows += record(other, 2, surface="local", model="llama-3.1-8b")
    return rows


def test_it_lists_charges_with_their_agent_persona_and_cost(
    staff_client: Client, charges: list[Charge]
) -> None:
    body = staff_client.get(LIST).content.decode()
    assert "hermes" in body
    assert "atlas" in body
    assert f"${to_decimal(charges[0].cost_nanos or 0)}" in body
    assert "llama-3.1-8b" in body


def test_a_cost_that_was_not_recorded_reads_not_recorded_never_zero(
    staff_client: Client, charges: list[Charge]
) -> None:
    body = staff_client.get(f"{LIST}?q=req-unpriced").content.decode()
    assert "not recorded" in body
    assert "$0.00" not in body


def test_nobody_may_add_a_charge_not_even_a_superuser(
    staff_client: Client, charges: list[Charge]
) -> None:
    assert staff_client.get(f"{LIST}add/").status_code == 403
    before = Charge.objects.count()
    response = staff_client.post(
        f"{LIST}add/",
        {"persona": charges[0].persona_id, "surface": "x", "model": "y", "request_id": "forged"},
    )
    assert response.status_code == 403
    assert Charge.objects.count() == before


def test_a_charge_page_is_view_only_and_a_post_changes_nothing(
    staff_client: Client, charges: list[Charge]
) -> None:
    charge = charges[0]
    page = staff_client.get(f"{LIST}{charge.pk}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'name="_save"' not in body
    assert "Delete" not in body
    assert charge.ts.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") in body  # to the second
    response = staff_client.post(f"{LIST}{charge.pk}/change/", {"model": "rewritten"})
    assert response.status_code == 403
    charge.refresh_from_db()
    assert charge.model == "anthropic/claude-3.7-sonnet"


def test_nobody_may_delete_a_charge(staff_client: Client, charges: list[Charge]) -> None:
    charge = charges[0]
    assert staff_client.get(f"{LIST}{charge.pk}/delete/").status_code == 403
    assert staff_client.post(f"{LIST}{charge.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Charge.objects.filter(pk=charge.pk).exists()


def test_the_list_offers_no_delete_action_and_refuses_a_forged_one(
    staff_client: Client, charges: list[Charge]
) -> None:
    body = staff_client.get(LIST).content.decode()
    assert "delete_selected" not in body
    assert "export_csv" in body
    before = Charge.objects.count()
    staff_client.post(
        LIST,
        {"action": "delete_selected", "_selected_action": [c.pk for c in charges], "post": "yes"},
    )
    assert Charge.objects.count() == before


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("persona__agent__id__exact=atlas", {"atlas"}),
        ("surface=local", {"atlas"}),
        ("model=anthropic/claude-3.7-sonnet", {"hermes"}),
        ("q=req-unpriced", {"hermes"}),
    ],
)
def test_filters_and_search_narrow_the_list(
    staff_client: Client, charges: list[Charge], query: str, expected: set[str]
) -> None:
    response = staff_client.get(f"{LIST}?{query}")
    assert response.status_code == 200
    shown = {row.persona.agent_id for row in response.context["cl"].result_list}
    assert shown == expected


def test_filtering_by_persona_and_date(staff_client: Client, charges: list[Charge]) -> None:
    coder = charges[0].persona
    response = staff_client.get(f"{LIST}?persona__id__exact={coder.pk}")
    assert {c.persona_id for c in response.context["cl"].result_list} == {coder.pk}
    day = charges[0].ts.date()
    response = staff_client.get(f"{LIST}?ts__year={day.year}&ts__month={day.month}")
    assert len(response.context["cl"].result_list) == len(charges)
    response = staff_client.get(f"{LIST}?ts__year={day.year - 1}")
    assert len(response.context["cl"].result_list) == 0


def test_search_takes_an_exact_request_id_or_its_first_characters(
    staff_client: Client, charges: list[Charge]
) -> None:
    found = staff_client.get(f"{LIST}?q=req-unpr").context["cl"].result_list
    assert [c.request_id for c in found] == ["req-unpriced"]
    # Not a substring search: the middle of an id finds nothing.
    assert len(staff_client.get(f"{LIST}?q=unpriced").context["cl"].result_list) == 0
    # Under four characters a term is an exact id only (a prefix would match too much).
    assert len(staff_client.get(f"{LIST}?q=req").context["cl"].result_list) == 0


def test_the_total_covers_every_filtered_row_and_says_what_was_not_recorded(
    staff_client: Client, charges: list[Charge]
) -> None:
    coder = charges[0].persona
    for query, rows in [
        ("", charges),
        (f"persona__id__exact={coder.pk}", [c for c in charges if c.persona_id == coder.pk]),
        ("surface=local", [c for c in charges if c.surface == "local"]),
        ("source=api", charges),  # not a rollup key: summed from the rows
        ("q=req-unpriced", [c for c in charges if c.request_id == "req-unpriced"]),
    ]:
        response = staff_client.get(f"{LIST}?{query}")
        total = response.context["ledger_total"]
        assert total.cost_nanos == sum(c.cost_nanos or 0 for c in rows), query
        assert total.charges == len(rows), query
        assert total.unpriced == sum(c.cost_nanos is None for c in rows), query
    assert 'id="hal0-ledger-total"' in staff_client.get(LIST).content.decode()


def test_a_custom_date_range_is_inclusive_of_its_last_day(
    staff_client: Client, charges: list[Charge]
) -> None:
    day = charges[0].ts.astimezone(dt.UTC).date()
    same_day = f"{LIST}?from_day={day}&to_day={day}"
    response = staff_client.get(same_day)
    assert len(response.context["cl"].result_list) == len(charges)
    assert response.context["ledger_total"].charges == len(charges)
    before = day - dt.timedelta(days=1)
    response = staff_client.get(f"{LIST}?from_day={before}&to_day={before}")
    assert len(response.context["cl"].result_list) == 0
    assert response.context["ledger_total"].charges == 0
    assert 'id="hal0-ledger-range"' in response.content.decode()


def test_the_filter_sidebar_offers_surfaces_and_models_seen_recently(
    staff_client: Client, charges: list[Charge]
) -> None:
    body = staff_client.get(LIST).content.decode()
    assert "?surface=local" in body
    assert "?model=llama-3.1-8b" in body


def test_the_list_never_counts_the_whole_ledger(
    staff_client: Client, charges: list[Charge]
) -> None:
    with CaptureQueriesContext(connection) as queries:
        staff_client.get(LIST)
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "charge" in q["sql"]]
    assert counts, "expected the capped count"
    assert all("LIMIT" in sql.upper() for sql in counts), counts


def test_past_the_cap_the_list_says_more_than(
    staff_client: Client, charges: list[Charge], monkeypatch: Any
) -> None:
    monkeypatch.setattr(CappedCountPaginator, "CAP", 2)
    body = staff_client.get(LIST).content.decode()
    assert "more than 2 charges" in body


def test_csv_export_streams_the_selected_charges(
    staff_client: Client, charges: list[Charge]
) -> None:
    response = staff_client.post(
        LIST, {"action": "export_csv", "_selected_action": [c.pk for c in charges[:4]]}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="charges-')
    text = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(r["seq"]) for r in rows] == sorted(c.pk for c in charges[:4])
    first = rows[0]
    assert first["agent_id"] == "hermes"
    assert first["persona_id"] == "coder"
    assert first["cost_usd"] == str(to_decimal(charges[0].cost_nanos or 0))
    assert first["ts"].endswith("+00:00")
    unpriced = next(r for r in rows if r["request_id"] == "req-unpriced")
    assert unpriced["cost_usd"] == ""


def test_csv_export_of_all_matching_rows_and_cells_that_look_like_formulas(
    staff_client: Client, charges: list[Charge]
) -> None:
    record(charges[0].persona, 1, model="=HYPERLINK(1)", request_id="req-formula")
    response = staff_client.post(
        LIST, {"action": "export_csv", "select_across": "1", "_selected_action": [charges[0].pk]}
    )
    text = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(charges) + 1
    formula = next(r for r in rows if r["request_id"] == "req-formula")
    assert formula["model"] == "'=HYPERLINK(1)"


def test_the_list_never_offers_facet_counts(staff_client: Client, charges: list[Charge]) -> None:
    body = staff_client.get(f"{LIST}?_facets=True").content.decode()
    assert "Show counts" not in body
    assert "Hide counts" not in body
