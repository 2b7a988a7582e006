"""Holds in the admin: read-only, each with its status (active, expired, settled, released)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from budgets.models import Hold
from tests.budgets.ledger_support import make_persona

pytestmark = pytest.mark.django_db

LIST = "/admin/budgets/hold/"


@pytest.fixture
def holds(db: None) -> dict[str, Hold]:
    # Rows stand in for what the check service records; the admin only reads them.
    persona = make_persona()
    now = timezone.now()
    later, earlier = now + dt.timedelta(minutes=5), now - dt.timedelta(minutes=5)

    def hold(hid: str, state: str, expires: dt.datetime) -> Hold:
        return Hold.objects.create(
            id=hid,
            persona=persona,
            amount_nanos=50_000_000,
            created_at=now - dt.timedelta(minutes=10),
            expires_at=expires,
            state=state,
        )

    return {
        "active": hold("hld_active", "active", later),
        "expired": hold("hld_expired", "active", earlier),
        "settled": hold("hld_settled", "settled", later),
        "released": hold("hld_released", "released", later),
    }


def test_each_hold_shows_its_status(staff_client: Client, holds: dict[str, Hold]) -> None:
    body = staff_client.get(LIST).content.decode()
    for status in ("active", "expired", "settled", "released"):
        assert f'hal0-hold-{status}">{status}</span>' in body
    assert "$0.05" in body


def test_a_hold_shows_the_request_id_that_took_it(
    staff_client: Client, holds: dict[str, Hold]
) -> None:
    Hold.objects.filter(pk=holds["active"].pk).update(request_id="req_from_the_client")
    body = staff_client.get(LIST).content.decode()
    assert "req_from_the_client" in body


@pytest.mark.parametrize("status", ["active", "expired", "settled", "released"])
def test_the_status_filter(staff_client: Client, holds: dict[str, Hold], status: str) -> None:
    response = staff_client.get(f"{LIST}?status={status}")
    assert [h.pk for h in response.context["cl"].result_list] == [holds[status].pk]


def test_holds_cannot_be_added_changed_or_deleted(
    staff_client: Client, holds: dict[str, Hold]
) -> None:
    hold = holds["active"]
    assert staff_client.get(f"{LIST}add/").status_code == 403
    assert staff_client.post(f"{LIST}{hold.pk}/change/", {"state": "released"}).status_code == 403
    assert staff_client.post(f"{LIST}{hold.pk}/delete/", {"post": "yes"}).status_code == 403
    hold.refresh_from_db()
    assert hold.state == "active"
    assert "delete_selected" not in staff_client.get(LIST).content.decode()


def test_the_list_never_counts_or_scans_every_hold(
    staff_client: Client, holds: dict[str, Hold]
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        body = staff_client.get(LIST).content.decode()
    on_holds = [q["sql"] for q in queries if '"budgets_hold"' in q["sql"]]
    assert not [sql for sql in on_holds if "DISTINCT" in sql.upper()]  # the calendar instead
    assert not [sql for sql in on_holds if "MIN(" in sql.upper() or "MAX(" in sql.upper()]
    counts = [sql for sql in on_holds if "COUNT(" in sql.upper() and "GROUP BY" not in sql.upper()]
    assert counts
    assert all("LIMIT" in sql.upper() for sql in counts)
    year = holds["active"].created_at.year
    assert f"?created_at__year={year}" in body


def test_the_holds_list_is_ordered_through_an_index() -> None:
    indexed = [index.fields for index in Hold._meta.indexes]
    assert ["created_at"] in indexed
    assert Hold._meta.ordering == ["-created_at"]
