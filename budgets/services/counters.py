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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Coalesce

from budgets.models import Charge, Hold, SpendCounter
from budgets.services.windows import LIFETIME_START, Windows, windows_at, zone
from hal0.statements import fetch_one, stamp_of
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
    """Spend in the current day, month and lifetime: nano-USD, tokens, unpriced charges."""

    day: int
    month: int
    lifetime: int
    day_tokens: int = 0
    month_tokens: int = 0
    lifetime_tokens: int = 0
    day_unpriced: int = 0
    month_unpriced: int = 0
    lifetime_unpriced: int = 0

    @classmethod
    def of(cls, day: Totals, month: Totals, lifetime: Totals) -> WindowSpend:
        return cls(
            day=day.nanos,
            month=month.nanos,
            lifetime=lifetime.nanos,
            day_tokens=day.tokens,
            month_tokens=month.tokens,
            lifetime_tokens=lifetime.tokens,
            day_unpriced=day.unpriced,
            month_unpriced=month.unpriced,
            lifetime_unpriced=lifetime.unpriced,
        )

    def plus(self, nanos: int, tokens: int, unpriced: int) -> WindowSpend:
        """This spend with one more charge in every window."""
        return WindowSpend(
            day=self.day + nanos,
            month=self.month + nanos,
            lifetime=self.lifetime + nanos,
            day_tokens=self.day_tokens + tokens,
            month_tokens=self.month_tokens + tokens,
            lifetime_tokens=self.lifetime_tokens + tokens,
            day_unpriced=self.day_unpriced + unpriced,
            month_unpriced=self.month_unpriced + unpriced,
            lifetime_unpriced=self.lifetime_unpriced + unpriced,
        )


@dataclass(frozen=True)
class Totals:
    """What one counter holds: nano-USD, tokens, charges of unknown cost."""

    nanos: int = 0
    tokens: int = 0
    unpriced: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.nanos + other.nanos, self.tokens + other.tokens, self.unpriced + other.unpriced
        )

    @classmethod
    def of_charge(cls, charge: Charge) -> Totals:
        tokens = (charge.input_tokens or 0) + (charge.output_tokens or 0)
        if charge.cost_nanos is None:
            return cls(0, tokens, 1)
        return cls(charge.cost_nanos, tokens, 0)

    @classmethod
    def of_row(cls, values: Sequence[Any]) -> Totals | None:
        """``(spent, tokens, unpriced)`` as a query gives them; None for a missing counter."""
        nanos, tokens, unpriced = values
        if nanos is None:
            return None
        return cls(int(nanos), int(tokens), int(unpriced))


# A counter's identity: (window, tz, start). Lifetime has no timezone.
Key = tuple[str, str, dt.date]


def _keys(w: Windows) -> dict[Key, tuple[dt.datetime | None, dt.datetime | None]]:
    """The three current counters and the UTC range each one sums."""
    return {
        (DAY, w.tz, w.day): (w.day_begin, w.day_end),
        (MONTH, w.tz, w.month): (w.month_begin, w.month_end),
        (LIFETIME, "", LIFETIME_START): (None, None),
    }


def _sum_charges(persona_id: int, begin: dt.datetime | None, end: dt.datetime | None) -> Totals:
    qs = Charge.objects.filter(persona_id=persona_id)
    if begin is not None and end is not None:
        qs = qs.filter(ts__gte=begin, ts__lt=end)
    sums = qs.aggregate(
        total=Sum("cost_nanos"),
        tokens=Sum(Coalesce(F("input_tokens"), Value(0)) + Coalesce(F("output_tokens"), Value(0))),
        unpriced=Count("id", filter=Q(cost_nanos__isnull=True)),
    )
    return Totals(int(sums["total"] or 0), int(sums["tokens"] or 0), int(sums["unpriced"] or 0))


def _create(
    persona_id: int, key: Key, span: tuple[dt.datetime | None, dt.datetime | None]
) -> tuple[Totals, bool]:
    """Sum the charges of a window and store the counter (one indexed range scan).

    Returns the counter's value and whether this call created it. When another connection
    created it first, its value is returned instead of ours.
    """
    window, tz, start = key
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The counter's foreign key takes this lock at the end of the INSERT below, by
            # which time the new row already sits in the unique index. Taken then, while a
            # charge of this persona holds its row lock and waits to create the same
            # counter (behind that index entry), the two would wait for each other. Taken
            # first, this waits for that charge to commit, and sums its charges too.
            with connection.cursor() as cursor:
                cursor.execute(_key_share_sql(), [persona_id])
        total = _sum_charges(persona_id, *span)
        try:
            # Savepoint: a concurrent rebuild of the same counter may win the insert.
            with transaction.atomic():
                SpendCounter.objects.create(
                    persona_id=persona_id,
                    window=window,
                    tz=tz,
                    start=start,
                    spent_nanos=total.nanos,
                    tokens=total.tokens,
                    unpriced=total.unpriced,
                )
        except IntegrityError:
            existing = SpendCounter.objects.get(
                persona_id=persona_id, window=window, tz=tz, start=start
            )
            return Totals(existing.spent_nanos, existing.tokens, existing.unpriced), False
    return total, True


@lru_cache(maxsize=1)
def _key_share_sql() -> str:
    qn = connection.ops.quote_name
    table = qn(Persona._meta.db_table)
    return f"SELECT 1 FROM {table} WHERE {qn('id')} = %s FOR KEY SHARE"  # noqa: S608


def _rebuild(
    persona_id: int, key: Key, span: tuple[dt.datetime | None, dt.datetime | None]
) -> Totals:
    """A reader's rebuild of a missing counter. If a concurrent rebuild won the insert, its
    value is as good as ours: both summed the committed charges."""
    return _create(persona_id, key, span)[0]


def window_spend(persona: Persona, w: Windows) -> WindowSpend:
    """Spend in the current day, month and lifetime: one query when the counters exist."""
    keys = _keys(w)
    match = Q()
    for window, tz, start in keys:
        match |= Q(window=window, tz=tz, start=start)
    found: dict[Key, Totals] = {
        (window, tz, start): Totals(spent, tokens, unpriced)
        for window, tz, start, spent, tokens, unpriced in SpendCounter.objects.filter(
            match, persona=persona
        )
        .values_list("window", "tz", "start", "spent_nanos", "tokens", "unpriced")
        .iterator()
    }
    for key, span in keys.items():
        if key not in found:
            found[key] = _rebuild(persona.pk, key, span)
    by_window = {key[0]: value for key, value in found.items()}
    return WindowSpend.of(by_window[DAY], by_window[MONTH], by_window[LIFETIME])


@dataclass(frozen=True)
class Held:
    """Active, unexpired holds: reserved nano-USD and tokens."""

    nanos: int = 0
    tokens: int = 0


def _counter_joins(owner: str, aliases: Sequence[str] = ("d", "m", "l")) -> str:
    """LEFT JOINs of the counters of persona ``owner`` (an SQL expression), one per alias:
    by default the day, month and lifetime ones as ``d``, ``m``, ``l``. Each takes its
    window, zone and start as placeholders; its columns are NULL for a missing counter."""
    qn = connection.ops.quote_name
    table = qn(SpendCounter._meta.db_table)
    return " ".join(
        f"LEFT JOIN {table} {alias} ON {alias}.{qn('persona_id')} = {owner} "
        f"AND {alias}.{qn('window')} = %s AND {alias}.{qn('tz')} = %s "
        f"AND {alias}.{qn('start')} = %s"
        for alias in aliases
    )


def _counter_columns() -> str:
    qn = connection.ops.quote_name
    return ", ".join(
        f"{alias}.{qn(c)}"
        for alias in ("d", "m", "l")
        for c in ("spent_nanos", "tokens", "unpriced")
    )


# An active hold, as the hot statements select it. The state is written into the text, not
# bound: PostgreSQL plans these prepared statements once for any values (a generic plan,
# hal0/postgresql), and only a constant lets it see from its statistics that few holds
# are active and take the (state, expires_at) index rather than read every hold.
ACTIVE_HOLD = f"'{Hold.State.ACTIVE.value}'"


def _held_columns(owner: str) -> str:
    qn = connection.ops.quote_name
    where = (
        f"FROM {qn(Hold._meta.db_table)} WHERE {qn('persona_id')} = {owner} "
        f"AND {qn('state')} = {ACTIVE_HOLD} AND {qn('expires_at')} > %s"
    )
    return (
        f"(SELECT COALESCE(SUM({qn('amount_nanos')}), 0) {where}), "
        f"(SELECT COALESCE(SUM({qn('amount_tokens')}), 0) {where})"
    )


def _counter_params(w: Windows) -> list[Any]:
    ops = connection.ops
    params: list[Any] = []
    for window, tz, start in _keys(w):
        params += [window, tz, ops.adapt_datefield_value(start)]
    return params


def _held_params(now: dt.datetime) -> list[Any]:
    stamp = stamp_of(now)
    return [stamp, stamp]


def _spend_of_row(values: Sequence[Any]) -> tuple[WindowSpend, Held] | None:
    """The 11 trailing columns of a hot query: 3 counters x 3 values, then the holds."""
    day, month, lifetime = (Totals.of_row(values[i : i + 3]) for i in (0, 3, 6))
    if day is None or month is None or lifetime is None:
        return None
    return WindowSpend.of(day, month, lifetime), Held(int(values[9]), int(values[10]))


@lru_cache(maxsize=4)
def _hot_sql(vendor: str) -> str:
    # Only quoted constant identifiers are formatted in; every value is a parameter.
    return (
        f"SELECT {_counter_columns()}, {_held_columns('%s')} "  # noqa: S608
        f"FROM (SELECT 1 AS one) o {_counter_joins('%s')}"
    )


def spend_and_held(persona: Persona, w: Windows, now: dt.datetime) -> tuple[WindowSpend, Held]:
    """Current window spend and active holds in ONE plain SQL query (the check's hot path).

    Equivalent to :func:`window_spend` plus the active holds' sums; the ORM is skipped
    because compiling its queries costs more than the whole check may take. A missing
    counter falls back to :func:`window_spend`, which rebuilds it.
    """
    stamp = stamp_of(now)
    params: list[Any] = [persona.pk, stamp, persona.pk, stamp]
    for key_params in _split3(_counter_params(w)):
        params += [persona.pk, *key_params]
    values = fetch_one(_hot_sql(connection.vendor), params)
    assert values is not None  # one row: the joins hang off a one-row derived table
    found = _spend_of_row(values)
    held = Held(int(values[9]), int(values[10]))
    if found is None:
        return window_spend(persona, w), held
    return found


def _split3(params: list[Any]) -> list[list[Any]]:
    return [params[i : i + 3] for i in range(0, len(params), 3)]


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


@lru_cache(maxsize=16)
def _persona_and_spend_sql(vendor: str, extra_columns: str = "", extra_joins: str = "") -> str:
    qn = connection.ops.quote_name
    columns, table, _ = hot_persona_query()
    owner = f"p.{qn('id')}"
    more = f", {extra_columns}" if extra_columns else ""
    return (
        f"SELECT {columns}, {_counter_columns()}, {_held_columns(owner)}{more} "  # noqa: S608
        f"FROM {table} p {_counter_joins(owner)} {extra_joins} "
        f"WHERE p.{qn('agent_id')} = %s AND p.{qn('slug')} = %s"
    )


# The 11 columns of the persona's counters and holds after its row's columns.
_SPEND_WIDTH = 11


class ExtraRead(Protocol):
    """More columns for the same statement (``scopes.UsageRead``): CROSS JOINs of one-row
    derived tables, their columns, and their placeholders' values."""

    @property
    def joins(self) -> str: ...
    @property
    def columns(self) -> str: ...
    @property
    def params(self) -> list[Any]: ...


def find_persona_with_spend(
    agent_id: str, persona_id: str, now: dt.datetime, extra: ExtraRead | None = None
) -> tuple[Persona, tuple[WindowSpend, Held] | None, Sequence[Any] | None]:
    """``find_persona`` and, in the same query, :func:`spend_and_held` at ``now`` (and
    the columns of ``extra``: the agent's and the platform's spend, read in the same
    statement rather than a second one).

    The read-only check's hot path: one round trip instead of two. The windows are cut
    before the row is read, in the zone this persona had last time (UTC the first time);
    when the row says otherwise, or a counter is missing, or the file changed, the spend
    is ``None`` and the caller reads it the usual way. ``extra``'s values are ``None``
    when the row was not read (no file, no row): the caller reads them its usual way.
    Errors (404s) are find_persona's.
    """
    sig = persona_file_signature(agent_id, persona_id)
    if sig is None:
        return _remember_zone(find_persona(agent_id, persona_id)), None, None
    guess = _ZONE_GUESS.get((agent_id, persona_id), "UTC")
    w = windows_at(guess, now)
    params = [*_held_params(now), *_counter_params(w)]
    if extra is not None:
        params += extra.params
        sql = _persona_and_spend_sql(connection.vendor, extra.columns, extra.joins)
    else:
        sql = _persona_and_spend_sql(connection.vendor)
    params += [agent_id, persona_id]
    values = fetch_one(sql, params)
    if values is None:
        return _remember_zone(find_persona(agent_id, persona_id)), None, None
    _, _, width = hot_persona_query()
    # The agent's and the platform's sums do not depend on this persona's row or zone.
    more = values[width + _SPEND_WIDTH :] if extra is not None else None
    if not hot_row_is_current(values[:width], sig):
        return _remember_zone(find_persona(agent_id, persona_id)), None, more
    persona = persona_from_hot_row(values[:width])
    if persona.effective_timezone != guess:
        return _remember_zone(persona), None, more
    # None: a counter to rebuild, which spend_and_held does.
    return persona, _spend_of_row(values[width : width + _SPEND_WIDTH]), more


def bump(persona: Persona, charges: Iterable[Charge], *, zones: Iterable[str] = ()) -> None:
    """Add freshly inserted charges to their windows' counters (inside their transaction).

    Day and month counters are kept in the persona's timezone and in ``zones`` (its agent's
    and the platform's, when they differ: those scopes sum their personas' counters cut in
    their own zone). Counters cut in any other zone are dropped first: after a timezone
    changed they are stale, and they would be wrong if it ever changed back.
    """
    kept = tuple(dict.fromkeys((persona.effective_timezone, *zones)))
    totals: dict[Key, Totals] = defaultdict(Totals)
    spans: dict[Key, tuple[dt.datetime | None, dt.datetime | None]] = {}
    for charge in charges:
        amount = Totals.of_charge(charge)
        if amount == Totals():
            continue
        for tz in kept:
            for key, span in _keys(windows_at(tz, charge.ts)).items():
                if key[0] == LIFETIME and tz != kept[0]:
                    continue  # one lifetime counter, whatever the zones
                totals[key] += amount
                spans[key] = span
    if not totals:
        return
    # Counters that get the same amounts (all of them for a single charge) are updated by
    # one statement, and on PostgreSQL the drop of other zones' counters rides along:
    # this runs inside every charge's locked transaction, where each statement is a
    # round trip (docs/benchmarks.md).
    by_amount: dict[Totals, list[Key]] = defaultdict(list)
    for key, amount in totals.items():
        by_amount[amount].append(key)
    matched: set[Key] = set()
    drop: tuple[str, ...] | None = kept
    for amount, keys in by_amount.items():
        matched |= _add_all(persona, keys, amount, keep_zones=drop)
        drop = None
    for key, amount in totals.items():
        if key in matched:
            continue
        # No counter yet: build it from the charges, the new ones included (same
        # transaction). Another connection may have built it in the meantime, from the
        # committed charges only: it cannot see ours before we commit, so ours are added.
        _, created = _create(persona.pk, key, spans[key])
        if not created:
            _add_all(persona, [key], amount, keep_zones=None)


@lru_cache(maxsize=64)
def _add_sql(vendor: str, keys: int, *, keep_zones: int) -> tuple[str | None, str]:
    """``(delete, update)``: drop the counters of zones other than ``keep_zones`` given
    zones (``None`` when folded into the update, or with ``keep_zones=0``: not asked
    for); add amounts to ``keys`` counters and return the keys of those that exist. Only
    quoted constant identifiers are formatted in."""
    qn = connection.ops.quote_name
    table = qn(SpendCounter._meta.db_table)
    persona, window, tz, start = (qn(c) for c in ("persona_id", "window", "tz", "start"))
    spent, tokens, unpriced = qn("spent_nanos"), qn("tokens"), qn("unpriced")
    updated = qn("updated_at")
    zones = ", ".join(["%s"] * keep_zones)
    delete = f"DELETE FROM {table} WHERE {persona} = %s AND {tz} <> '' AND {tz} NOT IN ({zones})"  # noqa: S608
    which = ", ".join(["(%s, %s, %s)"] * keys)
    update = (
        f"UPDATE {table} SET {spent} = {spent} + %s, {tokens} = {tokens} + %s, "  # noqa: S608
        f"{unpriced} = {unpriced} + %s, {updated} = %s "
        f"WHERE {persona} = %s AND ({window}, {tz}, {start}) IN ({which}) "
        f"RETURNING {window}, {tz}, {start}"
    )
    if not keep_zones:
        return None, update
    if vendor == "postgresql":
        # Both parts see the same snapshot and touch different rows (other zones vs these
        # zones and lifetime), so one statement does what the two did.
        return None, f"WITH dropped AS ({delete}) {update}"
    return delete, update


def _add_all(
    persona: Persona, keys: list[Key], amount: Totals, *, keep_zones: tuple[str, ...] | None
) -> set[Key]:
    """Add ``amount`` to each of ``keys``' counters; the keys whose counter existed. With
    ``keep_zones``, counters of every other zone are dropped first."""
    ops = connection.ops
    n_zones = len(keep_zones or ())
    delete, update = _add_sql(connection.vendor, len(keys), keep_zones=n_zones)
    zone_params: list[Any] = [persona.pk, *(keep_zones or ())]
    params: list[Any] = [
        amount.nanos,
        amount.tokens,
        amount.unpriced,
        ops.adapt_datetimefield_value(dt.datetime.now(dt.UTC)),
        persona.pk,
    ]
    for window, tz, start in keys:
        params += [str(window), tz, ops.adapt_datefield_value(start)]
    with connection.cursor() as cursor:
        if delete is not None:
            cursor.execute(delete, zone_params)
        elif n_zones:
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
    actual: Totals

    def describe(self) -> str:
        c, a = self.counter, self.actual
        where = f"{c.persona} {c.window} {c.start:%Y-%m-%d}{' ' + c.tz if c.tz else ''}"
        text = f"{where}: counter {c.spent_nanos} nano-USD, charges sum to {a.nanos}"
        if (c.tokens, c.unpriced) != (a.tokens, a.unpriced):
            text += (
                f"; counter {c.tokens} tokens and {c.unpriced} unpriced, charges "
                f"{a.tokens} and {a.unpriced}"
            )
        return text


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
        if actual != Totals(counter.spent_nanos, counter.tokens, counter.unpriced):
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
                SpendCounter.objects.filter(pk=drift.counter.pk).update(
                    spent_nanos=actual.nanos, tokens=actual.tokens, unpriced=actual.unpriced
                )
    return checked, drifts
