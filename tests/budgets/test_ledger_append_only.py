"""Charges are insert-only: the ORM and the database itself refuse changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import TestCase
from django.utils import timezone

from budgets.ledger.writer import insert_charges
from budgets.models import Charge, LedgerIsAppendOnly


@pytest.fixture
def charge(make_persona: Callable[..., Any]) -> Charge:
    persona = make_persona(persona_id="ledgered")
    with TestCase.captureOnCommitCallbacks(execute=True):
        (row,) = insert_charges(
            persona,
            [
                {
                    "ts": timezone.now(),
                    "surface": "s",
                    "model": "m",
                    "cost_nanos": 5,
                    "request_id": "r",
                }
            ],
            source="api",
        )
    return row


def test_saving_a_recorded_charge_again_is_refused(charge: Charge) -> None:
    charge.cost_nanos = 0
    with pytest.raises(LedgerIsAppendOnly):
        charge.save()


def test_deleting_a_charge_is_refused(charge: Charge) -> None:
    with pytest.raises(LedgerIsAppendOnly):
        charge.delete()
    with pytest.raises(LedgerIsAppendOnly):
        Charge.objects.filter(pk=charge.pk).delete()


def test_queryset_update_is_refused(charge: Charge) -> None:
    with pytest.raises(LedgerIsAppendOnly):
        Charge.objects.filter(pk=charge.pk).update(cost_nanos=0)


def test_the_database_refuses_an_update_behind_the_orms_back(charge: Charge) -> None:
    with (
        pytest.raises(DatabaseError, match="insert-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE budgets_charge SET cost_nanos = 0 WHERE id = %s", [charge.pk])
    assert Charge.objects.get(pk=charge.pk).cost_nanos == 5
