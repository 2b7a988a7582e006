"""The one writer of charge rows.

Every charge, whether from the API, ``ledger import`` or ``bench``, is created here, so
the three things that must happen together always do: the insert, the window counters,
and the JSONL mirror append scheduled for after the commit (the mirror may fall behind
the database, never run ahead of it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from budgets.models import Charge
from budgets.services import counters
from personas.models import Persona

# Up to this many rows the counters are bumped in place; a larger insert (an import, a
# bench ledger) drops them instead and lets the next read rebuild each with one SUM.
BUMP_LIMIT = 100
BATCH_SIZE = 2_000


def insert_charges(
    persona: Persona,
    rows: Sequence[Mapping[str, Any]],
    *,
    source: str,
    batch_size: int = BATCH_SIZE,
) -> list[Charge]:
    """Insert charges for one persona (fields of ``Charge`` per row); returns them with ids.

    Runs in the caller's transaction when there is one (the charge service holds the
    persona lock around it), else in its own.
    """
    if not rows:
        return []
    charges = [Charge(persona=persona, source=source, **row) for row in rows]
    with transaction.atomic():
        created = Charge.objects.bulk_create(charges, batch_size=batch_size)
        if len(created) <= BUMP_LIMIT:
            counters.bump(persona, created)
        else:
            counters.invalidate(persona)
        transaction.on_commit(lambda: _mirror(created))
    return created


def _mirror(charges: list[Charge]) -> None:
    from budgets.ledger import mirror

    mirror.append(charges)
