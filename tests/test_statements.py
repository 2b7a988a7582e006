"""``hal0.statements.fetch_one``: the hot path's statements, on the real database."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext, override_settings

from hal0.statements import fetch_one, prepared_statements

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = "personas_agent"


def test_it_returns_the_first_row_with_its_values_bound() -> None:
    assert fetch_one("SELECT %s + 1, %s", [41, "forty-two"]) == (42, "forty-two")


def test_it_returns_none_when_there_is_no_row() -> None:
    assert fetch_one(f"SELECT id FROM {TABLE} WHERE id = %s", ["nobody"]) is None  # noqa: S608


def test_a_doubled_percent_sign_is_a_percent_sign() -> None:
    assert fetch_one("SELECT 'a%%b' || %s", ["c"]) == ("a%bc",)


def test_its_errors_are_djangos() -> None:
    with pytest.raises(DatabaseError):
        fetch_one("SELECT * FROM no_such_table WHERE id = %s", [1])
    # The connection is still good for the next statement.
    assert fetch_one("SELECT %s", [1]) == (1,)


def test_it_refuses_to_run_in_a_transaction_that_already_failed() -> None:
    with transaction.atomic():
        with pytest.raises(DatabaseError), transaction.atomic(savepoint=False):
            fetch_one("SELECT * FROM no_such_table WHERE id = %s", [1])
        # As Django's own cursor: nothing more until the transaction is rolled back.
        with pytest.raises(TransactionManagementError):
            fetch_one("SELECT %s", [1])


def test_it_is_in_the_query_log() -> None:
    with CaptureQueriesContext(connection) as captured:
        fetch_one("SELECT %s", [7])
    assert len(captured.captured_queries) == 1
    assert captured.captured_queries[0]["sql"].startswith("SELECT %s")


@pytest.mark.requires_postgres
def test_on_postgresql_it_prepares_each_statement_once_per_connection() -> None:
    sql = f"SELECT count(*) FROM {TABLE} WHERE id <> %s"  # noqa: S608
    assert prepared_statements()
    fetch_one(sql, ["a"])
    fetch_one(sql, ["b"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            [f"%FROM {TABLE} WHERE id <> $1%"],
        )
        assert cursor.fetchone() == (1,)


@pytest.mark.requires_postgres
def test_on_postgresql_prepared_statements_can_be_turned_off() -> None:
    sql = f"SELECT count(*) FROM {TABLE} WHERE id <> %s AND id <> %s"  # noqa: S608
    with override_settings(HAL0_DB_PREPARE=False):
        assert not prepared_statements()
        assert fetch_one(sql, ["a", "b"]) == (0,)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            [f"%FROM {TABLE} WHERE id <> $1 AND%"],
        )
        assert cursor.fetchone() == (0,)


@pytest.mark.requires_postgres
def test_on_postgresql_a_prepared_statement_keeps_one_plan_for_any_values() -> None:
    sql = f"SELECT count(*) FROM {TABLE} WHERE id <> %s AND id <> %s AND id <> %s"  # noqa: S608
    for n in range(7):
        fetch_one(sql, [f"a{n}", "b", "c"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            [f"%FROM {TABLE} WHERE id <> $1 AND id <> $2 AND id <> $3%"],
        )
        assert cursor.fetchone() == (7, 0)


def test_an_instant_is_adapted_for_the_database_as_django_adapts_it() -> None:
    import datetime as dt

    from hal0.statements import stamp_of

    first = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    second = first + dt.timedelta(microseconds=1)
    adapt = connection.ops.adapt_datetimefield_value
    assert stamp_of(first) == adapt(first)
    assert stamp_of(second) == adapt(second)
    assert stamp_of(first) == adapt(first)  # the last one is remembered, not the first
