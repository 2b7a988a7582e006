"""Spend rollups: charges summed per (UTC hour, persona, model, surface).

``add`` runs inside the one charge writer's transaction (``budgets.ledger.writer``): the
new charges are summed per key in Python and written with ONE upsert statement
(``INSERT ... ON CONFLICT DO UPDATE`` adding to the existing row), so a charge costs one
more statement and no extra read. Imports and bench ledgers go through the same path,
many keys a statement.

Rollups are a cache of the charges, like the window counters: :func:`reconcile` re-sums
them from the ledger and reports (or fixes) every key that differs.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncHour

from budgets.models import Charge, SpendRollup
from personas.models import Persona

HOUR = dt.timedelta(hours=1)
METRICS = ("cost_nanos", "charges", "input_tokens", "output_tokens", "unpriced")
_COLUMNS = ("hour", "persona_id", "model", "surface", *METRICS)

# (hour, persona pk, model, surface)
Key = tuple[dt.datetime, int, str, str]
# cost_nanos, charges, input_tokens, output_tokens, unpriced
Sums = tuple[int, int, int, int, int]


def hour_of(ts: dt.datetime) -> dt.datetime:
    """The start of the UTC hour ``ts`` falls in."""
    return ts.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def sums_by_key(charges: Iterable[Charge]) -> dict[Key, list[int]]:
    totals: dict[Key, list[int]] = {}
    for c in charges:
        key = (hour_of(c.ts), c.persona_id, c.model, c.surface)
        row = totals.get(key)
        if row is None:
            row = totals[key] = [0, 0, 0, 0, 0]
        if c.cost_nanos is None:
            row[4] += 1
        else:
            row[0] += c.cost_nanos
        row[1] += 1
        row[2] += c.input_tokens or 0
        row[3] += c.output_tokens or 0
    return totals


@lru_cache(maxsize=16)
def _upsert_sql(vendor: str, rows: int) -> str:
    """One statement adding ``rows`` keys' sums to their rollups, creating missing ones.

    Only quoted constant identifiers are formatted in; every value is a parameter.
    """
    qn = connection.ops.quote_name
    table = qn(SpendRollup._meta.db_table)
    one = "(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"
    conflict = ", ".join(qn(c) for c in ("hour", "persona_id", "model", "surface"))
    add = ", ".join(f"{qn(m)} = {table}.{qn(m)} + excluded.{qn(m)}" for m in METRICS)
    return (
        f"INSERT INTO {table} ({', '.join(qn(c) for c in _COLUMNS)}) "  # noqa: S608
        f"VALUES {', '.join([one] * rows)} ON CONFLICT ({conflict}) DO UPDATE SET {add}"
    )


def _rows_per_statement() -> int:
    if connection.vendor != "sqlite":
        return 2_000
    connection.ensure_connection()
    raw = connection.connection
    limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if raw is not None else 999
    return max(1, min(2_000, limit // len(_COLUMNS)))


def add(charges: Iterable[Charge]) -> None:
    """Add freshly inserted charges to their rollups (inside the writer's transaction).

    One statement for a charge; a bulk insert writes as many statements as it has
    thousands of distinct keys.
    """
    _write(sums_by_key(charges))


def _write(totals: dict[Key, list[int]]) -> None:
    if not totals:
        return
    adapt = connection.ops.adapt_datetimefield_value
    items = list(totals.items())
    step = _rows_per_statement()
    with connection.cursor() as cursor:
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            params: list[Any] = []
            for (hour, persona_id, model, surface), sums in chunk:
                params += [adapt(hour), persona_id, model, surface, *sums]
            cursor.execute(_upsert_sql(connection.vendor, len(chunk)), params)


# ---------------------------------------------------------------------------------------
# Reconcile


def _charge_sums(charges: Any) -> Iterator[tuple[Key, Sums]]:
    """The charges' sums per rollup key (one grouped query)."""
    rows = (
        charges.annotate(h=TruncHour("ts", tzinfo=dt.UTC))
        .values("h", "persona_id", "model", "surface")
        .annotate(
            cost=Sum("cost_nanos"),
            n=Count("id"),
            tin=Sum("input_tokens"),
            tout=Sum("output_tokens"),
            unpriced=Count("id", filter=Q(cost_nanos__isnull=True)),
        )
        .order_by()
    )
    for r in rows.iterator():
        key = (r["h"].astimezone(dt.UTC), r["persona_id"], r["model"], r["surface"])
        yield (
            key,
            (int(r["cost"] or 0), r["n"], int(r["tin"] or 0), int(r["tout"] or 0), r["unpriced"]),
        )


def _rollup_sums(rollups: Any) -> dict[Key, Sums]:
    return {
        (r.hour.astimezone(dt.UTC), r.persona_id, r.model, r.surface): (
            r.cost_nanos,
            r.charges,
            r.input_tokens,
            r.output_tokens,
            r.unpriced,
        )
        for r in rollups.iterator()
    }


@dataclass(frozen=True)
class RollupDrift:
    key: Key
    stored: Sums | None  # None: no rollup row for charges that exist
    actual: Sums | None  # None: a rollup row without any charge

    def describe(self) -> str:
        hour, persona_id, model, surface = self.key
        where = f"rollup persona #{persona_id} {hour:%Y-%m-%d %H}:00 UTC {surface} {model}"
        return f"{where}: stored {_text(self.stored)}, charges sum to {_text(self.actual)}"


def _text(sums: Sums | None) -> str:
    if sums is None:
        return "nothing"
    return "cost {} nano-USD, {} charges, tokens {} in / {} out, {} unpriced".format(*sums)


def find_drift(*, persona: Persona | None = None) -> tuple[int, list[RollupDrift]]:
    """Every rollup key whose sums differ from its charges'; and how many rows were read."""
    charges = Charge.objects.all()
    rollups = SpendRollup.objects.all()
    if persona is not None:
        charges = charges.filter(persona=persona)
        rollups = rollups.filter(persona=persona)
    stored = _rollup_sums(rollups)
    drifts: list[RollupDrift] = []
    seen: set[Key] = set()
    for key, actual in _charge_sums(charges):
        seen.add(key)
        if stored.get(key) != actual:
            drifts.append(RollupDrift(key, stored.get(key), actual))
    drifts += [RollupDrift(key, sums, None) for key, sums in stored.items() if key not in seen]
    return len(stored), drifts


def reconcile(*, fix: bool, persona: Persona | None = None) -> tuple[int, list[RollupDrift]]:
    """Re-sum every rollup from the charges; with ``fix``, rewrite the keys that differ."""
    checked, drifts = find_drift(persona=persona)
    if fix:
        for drift in drifts:
            _fix(drift.key)
    return checked, drifts


def _fix(key: Key) -> None:
    hour, persona_id, model, surface = key
    with transaction.atomic():
        # The persona's lock, as a charge takes it: a charge of this key landing meanwhile
        # is either in the new sum or adds to it after.
        Persona.objects.select_for_update().get(pk=persona_id)
        charges = Charge.objects.filter(
            persona_id=persona_id, ts__gte=hour, ts__lt=hour + HOUR, model=model, surface=surface
        )
        actual = dict(_charge_sums(charges)).get(key)
        rows = SpendRollup.objects.filter(
            hour=hour, persona_id=persona_id, model=model, surface=surface
        )
        if actual is None:
            rows.delete()
            return
        values = dict(zip(METRICS, actual, strict=True))
        if not rows.update(**values):
            SpendRollup.objects.create(
                hour=hour, persona_id=persona_id, model=model, surface=surface, **values
            )


def rebuild_all() -> int:
    """Build every rollup from the ledger (the migration that introduced them); returns
    how many keys were written. Meant for an empty rollup table."""
    totals = {key: list(sums) for key, sums in _charge_sums(Charge.objects.all())}
    _write(totals)
    return len(totals)
