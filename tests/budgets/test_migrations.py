"""Migrations that change the schema under existing data, run both ways on the real database."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _persona_only_indexes(table: str) -> list[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return [
        name
        for name, info in found.items()
        if info["index"] and not info["unique"] and info["columns"] == ["persona_id"]
    ]


@pytest.mark.parametrize("table", ["budgets_hold", "budgets_spendcounter"])
def test_the_index_on_the_persona_alone_is_dropped_and_restored_going_back(table: str) -> None:
    # The wider index that starts with the persona stays: it answers the same lookups.
    assert _persona_only_indexes(table) == []
    try:
        call_command("migrate", "budgets", "0014", verbosity=0)
        assert len(_persona_only_indexes(table)) == 1
    finally:
        call_command("migrate", "budgets", verbosity=0)
    assert _persona_only_indexes(table) == []
