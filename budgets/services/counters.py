"""Per-window spend counters: the hot path reads three small rows, never the charges.

A ``SpendCounter`` caches the sum of ``cost_nanos`` of one persona's charges inside one
window (day and month in the budget's timezone, lifetime). Charges bump them in the same
transaction that inserts the charge; a missing counter is rebuilt with one indexed SUM
over ``(persona, ts)``. They are a cache: :func:`reconcile` re-sums every counter from the
charges and reports (or fixes) drift.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, Sum

from budgets.models import Charge, Hold, SpendCounter
from budgets.services.windows import LIFETIME_START, Windows, windows_at, zone
from personas.models import Persona
from personas.services import (
    find_persona,
    hot_persona_query,
    hot_row_is_current,
    persona_file_signature,
    persona_from_hot_row,
)

DAY = SpendCounter.Window.DAY
MONTH = SpendCounter.Window.MONTH
LIFETIME = SpendCounter.Window.LIFETIME


@dataclass(frozen=True)
class WindowSpend:
    day: int
    month: int
    lifetime: int


# A counter's identity: (window, tz, start). Lifetime has no timezone.
Key = tuple[str, str, dt.date]


def _keys(w: Windows) -> dict[Key, tuple[dt.datetime | None, dt.datetime | None]]:
    """The three current counters and the UTC range each one sums."""
    return {
        (DAY, w.tz, w.day): (w.day_begin, w.day_end),
        (MONTH, w.tz, w.month): (w.month_begin, w.month_end),
        (LIFETIME, "", LIFETIME_START): (None, None),
    }


def _sum_charges(persona_id: int, begin: dt.datetime | None, end: dt.datetime | None) -> int:
    qs = Charge.objects.filter(persona_id=persona_id)
    if begin is not None and end is not None:
        qs = qs.filter(ts__gte=begin, ts__lt=end)
    return int(qs.aggregate(total=Sum("cost_nanos"))["total"] or 0)


def _create(
    persona_id: int, key: Key, span: tuple[dt.datetime | None, dt.datetime | None]
) -> tuple[int, bool]:
    """Sum the charges of a window and store the counter (one indexed range scan).

    Returns the counter's value and whether this call created it. When another connection
    created it first, its value is returned instead of ours.
    """
    window, tz, start = key
    with transaction.atomic():
        total = _sum_charges(persona_id, *span)
        try:
            # Savepoint: a concurrent rebuild of the same counter may win the insert.
            with transaction.atomic():
                SpendCounter.objects.create(
                    persona_id=persona_id, window=window, tz=tz, start=start, spent_nanos=total
                )
        except IntegrityError:
            existing = SpendCounter.objects.get(
                persona_id=persona_id, window=window, tz=tz, start=start
            ).spent_nanos
            return existing, False
    return total, True


def _rebuild(persona_id: int, key: Key, span: tuple[dt.datetime | None, dt.datetime | None]) -> int:
    """A reader's rebuild of a missing counter. If a concurrent rebuild won the insert, its
    value is as good as ours: both summed the committed charges."""
    return _create(persona_id, key, span)[0]


def window_spend(persona: Persona, w: Windows) -> WindowSpend:
    """Spend in the current day, month and lifetime: one query when the counters exist."""
    keys = _keys(w)
    match = Q()
    for window, tz, start in keys:
        match |= Q(window=window, tz=tz, start=start)
    found: dict[Key, int] = {
        (window, tz, start): spent
        for window, tz, start, spent in SpendCounter.objects.filter(match, persona=persona)
        .values_list("window", "tz", "start", "spent_nanos")
        .iterator()
    }
    for key, span in keys.items():
        if key not in found:
            found[key] = _rebuild(persona.pk, key, span)
    by_window = {key[0]: value for key, value in found.items()}
    return WindowSpend(day=by_window[DAY], month=by_window[MONTH], lifetime=by_window[LIFETIME])


@lru_cache(maxsize=4)
def _hot_sql(vendor: str) -> str:
    # Only quoted constant identifiers are formatted in; every value is a parameter.
    qn = connection.ops.quote_name
    counter = (
        f"(SELECT {qn('spent_nanos')} FROM {qn(SpendCounter._meta.db_table)} "  # noqa: S608
        f"WHERE {qn('persona_id')} = %s AND {qn('window')} = %s AND {qn('tz')} = %s "
        f"AND {qn('start')} = %s)"
    )
    held = (
        f"(SELECT COALESCE(SUM({qn('amount_nanos')}), 0) FROM {qn(Hold._meta.db_table)} "  # noqa: S608
        f"WHERE {qn('persona_id')} = %s AND {qn('state')} = %s AND {qn('expires_at')} > %s)"
    )
    return f"SELECT {counter}, {counter}, {counter}, {held}"


def spend_and_held(persona: Persona, w: Windows, now: dt.datetime) -> tuple[WindowSpend, int]:
    """Current window spend and active holds in ONE plain SQL query (the check's hot path).

    Equivalent to :func:`window_spend` plus the active-holds sum; the ORM is skipped because
    compiling its queries costs more than the whole check may take. A missing counter
    falls back to :func:`window_spend`, which rebuilds it.
    """
    ops = connection.ops
    params: list[Any] = []
    for window, tz, start in _keys(w):
        params += [persona.pk, window, tz, ops.adapt_datefield_value(start)]
    params += [persona.pk, Hold.State.ACTIVE, ops.adapt_datetimefield_value(now)]
    with connection.cursor() as cursor:
        cursor.execute(_hot_sql(connection.vendor), params)
        day, month, lifetime, held = cursor.fetchone()
    if day is None or month is None or lifetime is None:
        return window_spend(persona, w), int(held)
    return WindowSpend(day=int(day), month=int(month), lifetime=int(lifetime)), int(held)


# The zone each persona's windows were last cut in, to cut the next ones before its row
# is read (see find_persona_with_spend). A wrong guess costs a second query, never a
# wrong answer; bounded so a process serving many personas does not grow without end.
_ZONE_GUESS: dict[tuple[str, str], str] = {}
_ZONE_GUESS_MAX = 10_000


def _remember_zone(persona: Persona) -> Persona:
    if len(_ZONE_GUESS) >= _ZONE_GUESS_MAX:
        _ZONE_GUESS.clear()
    _ZONE_GUESS[(persona.agent_id, persona.slug)] = persona.effective_timezone
    return persona


@lru_cache(maxsize=4)
def _persona_and_spend_sql(vendor: str) -> str:
    qn = connection.ops.quote_name
    columns, table, _ = hot_persona_query()
    counter = (
        f"(SELECT {qn('spent_nanos')} FROM {qn(SpendCounter._meta.db_table)} "  # noqa: S608
        f"WHERE {qn('persona_id')} = p.{qn('id')} AND {qn('window')} = %s AND {qn('tz')} = %s "
        f"AND {qn('start')} = %s)"
    )
    held = (
        f"(SELECT COALESCE(SUM({qn('amount_nanos')}), 0) FROM {qn(Hold._meta.db_table)} "  # noqa: S608
        f"WHERE {qn('persona_id')} = p.{qn('id')} AND {qn('state')} = %s "
        f"AND {qn('expires_at')} > %s)"
    )
    return (
        f"SELECT {columns}, {counter}, {counter}, {counter}, {held} "  # noqa: S608
        f"FROM {table} p WHERE p.{qn('agent_id')} = %s AND p.{qn('slug')} = %s"
    )


def find_persona_with_spend(
    agent_id: str, persona_id: str, now: dt.datetime
) -> tuple[Persona, tuple[WindowSpend, int] | None]:
    """``find_persona`` and, in the same query, :func:`spend_and_held` at ``now``.

    The read-only check's hot path: one round trip instead of two. The windows are cut
    before the row is read, in the zone this persona had last time (UTC the first time);
    when the row says otherwise, or a counter is missing, or the file changed, the spend
    is ``None`` and the caller reads it the usual way. Errors (404s) are find_persona's.
    """
    sig = persona_file_signature(agent_id, persona_id)
    if sig is None:
        return _remember_zone(find_persona(agent_id, persona_id)), None
    guess = _ZONE_GUESS.get((agent_id, persona_id), "UTC")
    w = windows_at(guess, now)
    ops = connection.ops
    params: list[Any] = []
    for window, tz, start in _keys(w):
        params += [window, tz, ops.adapt_datefield_value(start)]
    params += [Hold.State.ACTIVE, ops.adapt_datetimefield_value(now), agent_id, persona_id]
    with connection.cursor() as cursor:
        cursor.execute(_persona_and_spend_sql(connection.vendor), params)
        values = cursor.fetchone()
    _, _, width = hot_persona_query()
    if values is None or not hot_row_is_current(values[:width], sig):
        return _remember_zone(find_persona(agent_id, persona_id)), None
    persona = persona_from_hot_row(values[:width])
    if persona.effective_timezone != guess:
        return _remember_zone(persona), None
    day, month, lifetime, held = values[width:]
    if day is None or month is None or lifetime is None:
        return persona, None  # a counter to rebuild: spend_and_held does that
    return persona, (WindowSpend(day=int(day), month=int(month), lifetime=int(lifetime)), int(held))


def bump(persona: Persona, charges: Iterable[Charge]) -> None:
    """Add freshly inserted charges to their windows' counters (inside their transaction).

    Counters cut in another timezone are dropped first: after the persona's timezone
    changed they are stale, and they would be wrong if it ever changed back.
    """
    tz = persona.effective_timezone
    totals: dict[Key, int] = defaultdict(int)
    spans: dict[Key, tuple[dt.datetime | None, dt.datetime | None]] = {}
    for charge in charges:
        if not charge.cost_nanos:
            continue
        for key, span in _keys(windows_at(tz, charge.ts)).items():
            totals[key] += charge.cost_nanos
            spans[key] = span
    if not totals:
        return
    # Counters that get the same amount (all three for a single charge) are updated by
    # one statement, and on PostgreSQL the drop of other zones' counters rides along:
    # this runs inside every charge's locked transaction, where each statement is a
    # round trip (docs/benchmarks.md).
    by_amount: dict[int, list[Key]] = defaultdict(list)
    for key, amount in totals.items():
        by_amount[amount].append(key)
    matched: set[Key] = set()
    drop_zones = True
    for amount, keys in by_amount.items():
        matched |= _add_all(persona, keys, amount, drop_other_zones=drop_zones)
        drop_zones = False
    for key, amount in totals.items():
        if key in matched:
            continue
        # No counter yet: build it from the charges, the new ones included (same
        # transaction). Another connection may have built it in the meantime, from the
        # committed charges only: it cannot see ours before we commit, so ours are added.
        _, created = _create(persona.pk, key, spans[key])
        if not created:
            _add_all(persona, [key], amount, drop_other_zones=False)


@lru_cache(maxsize=64)
def _add_sql(vendor: str, keys: int, *, drop_other_zones: bool) -> tuple[str | None, str]:
    """``(delete, update)``: drop other zones' counters (``None`` when folded into the
    update, or not asked for); add an amount to ``keys`` counters and return the keys of
    those that exist. Only quoted constant identifiers are formatted in."""
    qn = connection.ops.quote_name
    table = qn(SpendCounter._meta.db_table)
    persona, window, tz, start = (qn(c) for c in ("persona_id", "window", "tz", "start"))
    spent, updated = qn("spent_nanos"), qn("updated_at")
    delete = f"DELETE FROM {table} WHERE {persona} = %s AND {tz} <> '' AND {tz} <> %s"  # noqa: S608
    which = ", ".join(["(%s, %s, %s)"] * keys)
    update = (
        f"UPDATE {table} SET {spent} = {spent} + %s, {updated} = %s "  # noqa: S608
        f"WHERE {persona} = %s AND ({window}, {tz}, {start}) IN ({which}) "
        f"RETURNING {window}, {tz}, {start}"
    )
    if not drop_other_zones:
        return None, update
    if vendor == "postgresql":
        # Both parts see the same snapshot and touch different rows (other zones vs this
        # zone and lifetime), so one statement does what the two did.
        return None, f"WITH dropped AS ({delete}) {update}"
    return delete, update


def _add_all(persona: Persona, keys: list[Key], amount: int, *, drop_other_zones: bool) -> set[Key]:
    """Add ``amount`` to each of ``keys``' counters; the keys whose counter existed."""
    ops = connection.ops
    delete, update = _add_sql(connection.vendor, len(keys), drop_other_zones=drop_other_zones)
    zone_params: list[Any] = [persona.pk, persona.effective_timezone]
    params: list[Any] = [amount, ops.adapt_datetimefield_value(dt.datetime.now(dt.UTC)), persona.pk]
    for window, tz, start in keys:
        params += [str(window), tz, ops.adapt_datefield_value(start)]
    with connection.cursor() as cursor:
        if delete is not None:
            cursor.execute(delete, zone_params)
        elif drop_other_zones:
            params = zone_params + params
        cursor.execute(update, params)
        rows = cursor.fetchall()
    # A date comes back as a date (PostgreSQL) or as ISO text (SQLite): compare as text.
    wanted = {(str(w), tz, str(start)[:10]): (w, tz, start) for w, tz, start in keys}
    return {wanted[(str(w), tz, str(start)[:10])] for w, tz, start in rows}


def invalidate(persona: Persona) -> int:
    """Drop a persona's counters (after a bulk insert); they are rebuilt when next read."""
    deleted, _ = SpendCounter.objects.filter(persona=persona).delete()
    return deleted


@dataclass(frozen=True)
class Drift:
    counter: SpendCounter
    actual: int

    def describe(self) -> str:
        c = self.counter
        where = f"{c.persona} {c.window} {c.start:%Y-%m-%d}{' ' + c.tz if c.tz else ''}"
        return f"{where}: counter {c.spent_nanos} nano-USD, charges sum to {self.actual}"


def _span_of(counter: SpendCounter) -> tuple[dt.datetime | None, dt.datetime | None]:
    if counter.window == LIFETIME:
        return None, None
    # Local noon of the counter's start date is inside that local day and month.
    local_noon = dt.datetime.combine(counter.start, dt.time(12), tzinfo=zone(counter.tz))
    w = windows_at(counter.tz, local_noon)
    if counter.window == DAY:
        return w.day_begin, w.day_end
    return w.month_begin, w.month_end


def find_drift(*, persona: Persona | None = None) -> Iterator[Drift]:
    """Every counter whose value differs from the sum of its charges."""
    counters = SpendCounter.objects.select_related("persona", "persona__agent").order_by("pk")
    if persona is not None:
        counters = counters.filter(persona=persona)
    for counter in counters.iterator():
        actual = _sum_charges(counter.persona_id, *_span_of(counter))
        if actual != counter.spent_nanos:
            yield Drift(counter, actual)


def reconcile(*, fix: bool, persona: Persona | None = None) -> tuple[int, list[Drift]]:
    """Re-sum every counter from the charges; with ``fix``, correct the drifting ones.

    Returns how many counters were checked and the drifts found.
    """
    checked = SpendCounter.objects.filter(**({"persona": persona} if persona else {})).count()
    drifts = list(find_drift(persona=persona))
    if fix:
        for drift in drifts:
            with transaction.atomic():
                # Locked and re-summed inside the transaction: a charge landing meanwhile
                # is either in the sum or bumps the corrected value afterwards.
                Persona.objects.select_for_update().get(pk=drift.counter.persona_id)
                actual = _sum_charges(drift.counter.persona_id, *_span_of(drift.counter))
                SpendCounter.objects.filter(pk=drift.counter.pk).update(spent_nanos=actual)
    return checked, drifts
