"""Migrations that change the schema under existing data, run both ways on the real database."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _narrow_indexes(table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return [
        name
        for name, info in found.items()
        if info["index"] and not info["unique"] and info["columns"] == [column]
    ]


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("budgets_hold", "persona_id"),
        ("budgets_spendcounter", "persona_id"),
        ("budgets_hold", "run_id"),
    ],
)
def test_an_index_on_one_column_that_a_wider_one_leads_with_is_dropped_and_restored(
    table: str, column: str
) -> None:
    """0015: the wider index (``hold_persona_active``, ``counter_unique_window``,
    ``hold_run_active``) answers the same lookups, and a plan can no longer pick the
    narrow one and read every settled hold (tests/api/test_hot_path_statements.py)."""
    assert _narrow_indexes(table, column) == []
    try:
        call_command("migrate", "budgets", "0014", verbosity=0)
        assert len(_narrow_indexes(table, column)) == 1
    finally:
        call_command("migrate", "budgets", verbosity=0)
    assert _narrow_indexes(table, column) == []
