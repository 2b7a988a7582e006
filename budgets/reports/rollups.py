"""Spend rollups: charges summed per (UTC hour, persona, model, surface) and per (UTC day,
persona, model, surface).

``add`` runs inside the one charge writer's transaction (``budgets.ledger.writer``): the
new charges are summed per key in Python and written with one upsert statement per table
(``INSERT ... ON CONFLICT DO UPDATE`` adding to the existing row), so a charge costs two
more statements and no extra read. Imports and bench ledgers go through the same path,
many keys a statement.

Why two tables: a 90-day report grouped by day read 24 hourly rows per day, model and
surface, and computing each one's local day in the database was most of its time (about
25 of 30 ms at 1M charges on SQLite); a UTC day's row is one (docs/benchmarks.md, "Spend
report").

Rollups are a cache of the charges, like the window counters: :func:`reconcile` re-sums
them from the ledger and reports (or fixes) every key that differs.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate, TruncHour

from budgets.models import Charge, SpendDailyRollup, SpendRollup
from personas.models import Persona

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
METRICS = ("cost_nanos", "charges", "input_tokens", "output_tokens", "unpriced")

# (hour or day, persona pk, model, surface)
Key = tuple[Any, int, str, str]
# cost_nanos, charges, input_tokens, output_tokens, unpriced
Sums = tuple[int, int, int, int, int]


@dataclass(frozen=True)
class Grain:
    """One rollup table: its model, the column of its period and how a period is cut."""

    name: str  # as reconcile names it
    model: type[models.Model]
    period: str  # the column: "hour" | "day"
    trunc: type[TruncHour] | type[TruncDate]

    def start(self, period: Any) -> dt.datetime:
        """The UTC instant a period starts at."""
        if isinstance(period, dt.datetime):
            return period.astimezone(dt.UTC)
        return dt.datetime.combine(period, dt.time(), tzinfo=dt.UTC)

    @property
    def span(self) -> dt.timedelta:
        return HOUR if self.period == "hour" else DAY

    def adapt(self) -> Callable[[Any], Any]:
        ops = connection.ops
        return ops.adapt_datetimefield_value if self.period == "hour" else ops.adapt_datefield_value

    def key_of(self, period: Any) -> Any:
        """A period as its rollup rows hold it (aware UTC hour, or a date)."""
        if self.period == "hour":
            return period.astimezone(dt.UTC)
        return period


HOURLY = Grain("rollup", SpendRollup, "hour", TruncHour)
DAILY = Grain("daily rollup", SpendDailyRollup, "day", TruncDate)
GRAINS = (HOURLY, DAILY)


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


def by_day(hourly: dict[Key, list[int]]) -> dict[Key, list[int]]:
    """Hourly sums added up per UTC day."""
    totals: dict[Key, list[int]] = {}
    for (hour, persona_id, model, surface), sums in hourly.items():
        key = (hour.date(), persona_id, model, surface)
        row = totals.get(key)
        if row is None:
            totals[key] = list(sums)
        else:
            for i, value in enumerate(sums):
                row[i] += value
    return totals


@lru_cache(maxsize=32)
def _upsert_sql(vendor: str, grain: Grain, rows: int) -> str:
    """One statement adding ``rows`` keys' sums to their rollups, creating missing ones.

    Only quoted constant identifiers are formatted in; every value is a parameter.
    """
    qn = connection.ops.quote_name
    table = qn(grain.model._meta.db_table)
    key = (grain.period, "persona_id", "model", "surface")
    columns = (*key, *METRICS)
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    conflict = ", ".join(qn(c) for c in key)
    add = ", ".join(f"{qn(m)} = {table}.{qn(m)} + excluded.{qn(m)}" for m in METRICS)
    return (
        f"INSERT INTO {table} ({', '.join(qn(c) for c in columns)}) "  # noqa: S608
        f"VALUES {', '.join([one] * rows)} ON CONFLICT ({conflict}) DO UPDATE SET {add}"
    )


def _rows_per_statement() -> int:
    columns = 4 + len(METRICS)
    if connection.vendor != "sqlite":
        return 2_000
    connection.ensure_connection()
    raw = connection.connection
    limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if raw is not None else 999
    return max(1, min(2_000, limit // columns))


def add(charges: Iterable[Charge]) -> None:
    """Add freshly inserted charges to their rollups (inside the writer's transaction).

    One statement per table for a charge; a bulk insert writes as many statements as it
    has thousands of distinct keys.
    """
    hourly = sums_by_key(charges)
    daily = by_day(hourly)
    step = _rows_per_statement()
    if connection.vendor == "postgresql" and 0 < len(hourly) <= step and len(daily) <= step:
        # Both upserts in one statement (a data-modifying CTE runs to completion whether
        # or not it is read): one round trip, not two, inside the charge's lock. About
        # 0.25 ms a charge on a busy machine (docs/benchmarks.md, "Spend report").
        hourly_sql, hourly_params = _upsert(HOURLY, list(hourly.items()))
        daily_sql, daily_params = _upsert(DAILY, list(daily.items()))
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH hourly AS ({hourly_sql}) {daily_sql}", hourly_params + daily_params
            )
        return
    _write(HOURLY, hourly)
    _write(DAILY, daily)


def _upsert(grain: Grain, items: list[tuple[Key, list[int]]]) -> tuple[str, list[Any]]:
    adapt = grain.adapt()
    params: list[Any] = []
    for (period, persona_id, model, surface), sums in items:
        params += [adapt(period), persona_id, model, surface, *sums]
    return _upsert_sql(connection.vendor, grain, len(items)), params


def _write(grain: Grain, totals: dict[Key, list[int]]) -> None:
    if not totals:
        return
    items = list(totals.items())
    step = _rows_per_statement()
    with connection.cursor() as cursor:
        for start in range(0, len(items), step):
            cursor.execute(*_upsert(grain, items[start : start + step]))


# ---------------------------------------------------------------------------------------
# Reconcile


def _charge_sums(grain: Grain, charges: Any) -> Iterator[tuple[Key, Sums]]:
    """The charges' sums per rollup key of ``grain`` (one grouped query)."""
    rows = (
        charges.annotate(p=grain.trunc("ts", tzinfo=dt.UTC))
        .values("p", "persona_id", "model", "surface")
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
        key = (grain.key_of(r["p"]), r["persona_id"], r["model"], r["surface"])
        yield (
            key,
            (int(r["cost"] or 0), r["n"], int(r["tin"] or 0), int(r["tout"] or 0), r["unpriced"]),
        )


def _rollup_sums(grain: Grain, rollups: Any) -> dict[Key, Sums]:
    return {
        (grain.key_of(getattr(r, grain.period)), r.persona_id, r.model, r.surface): (
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
    grain: Grain
    key: Key
    stored: Sums | None  # None: no rollup row for charges that exist
    actual: Sums | None  # None: a rollup row without any charge

    def describe(self) -> str:
        period, persona_id, model, surface = self.key
        when = f"{period:%Y-%m-%d %H}:00 UTC" if self.grain is HOURLY else f"{period:%Y-%m-%d} UTC"
        where = f"{self.grain.name} persona #{persona_id} {when} {surface} {model}"
        return f"{where}: stored {_text(self.stored)}, charges sum to {_text(self.actual)}"


def _text(sums: Sums | None) -> str:
    if sums is None:
        return "nothing"
    return "cost {} nano-USD, {} charges, tokens {} in / {} out, {} unpriced".format(*sums)


def find_drift(*, persona: Persona | None = None) -> tuple[int, list[RollupDrift]]:
    """Every rollup key (hourly and daily) whose sums differ from its charges'; and how
    many rows were read."""
    checked = 0
    drifts: list[RollupDrift] = []
    for grain in GRAINS:
        charges = Charge.objects.all()
        rollups = grain.model.objects.all()  # type: ignore[attr-defined]
        if persona is not None:
            charges = charges.filter(persona=persona)
            rollups = rollups.filter(persona=persona)
        stored = _rollup_sums(grain, rollups)
        checked += len(stored)
        seen: set[Key] = set()
        for key, actual in _charge_sums(grain, charges):
            seen.add(key)
            if stored.get(key) != actual:
                drifts.append(RollupDrift(grain, key, stored.get(key), actual))
        drifts += [
            RollupDrift(grain, key, sums, None) for key, sums in stored.items() if key not in seen
        ]
    return checked, drifts


def reconcile(*, fix: bool, persona: Persona | None = None) -> tuple[int, list[RollupDrift]]:
    """Re-sum every rollup from the charges; with ``fix``, rewrite the keys that differ."""
    checked, drifts = find_drift(persona=persona)
    if fix:
        for drift in drifts:
            _fix(drift.grain, drift.key)
    return checked, drifts


def _fix(grain: Grain, key: Key) -> None:
    period, persona_id, model, surface = key
    start = grain.start(period)
    with transaction.atomic():
        # The persona's lock, as a charge takes it: a charge of this key landing meanwhile
        # is either in the new sum or adds to it after.
        Persona.objects.select_for_update().get(pk=persona_id)
        charges = Charge.objects.filter(
            persona_id=persona_id,
            ts__gte=start,
            ts__lt=start + grain.span,
            model=model,
            surface=surface,
        )
        actual = dict(_charge_sums(grain, charges)).get(key)
        manager = grain.model.objects  # type: ignore[attr-defined]
        where = {grain.period: period, "persona_id": persona_id, "model": model}
        rows = manager.filter(surface=surface, **where)
        if actual is None:
            rows.delete()
            return
        values = dict(zip(METRICS, actual, strict=True))
        if not rows.update(**values):
            manager.create(surface=surface, **where, **values)


def rebuild_all() -> int:
    """Build every rollup from the ledger; returns how many keys were written. Meant for
    empty rollup tables."""
    written = 0
    for grain in GRAINS:
        totals = {key: list(sums) for key, sums in _charge_sums(grain, Charge.objects.all())}
        _write(grain, totals)
        written += len(totals)
    return written
