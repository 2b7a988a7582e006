"""The spend report (``GET /api/spend``, the Spend page's breakdowns): sums of charges over
a range of local days, grouped by time and by who/what spent.

Read from the rollups, never by scanning the ledger, in one statement. A UTC day is read
as its daily rollup rows (per persona, model, surface) and put on the local day most of
its hours fall on; the hours of that UTC day that fall on the neighbouring local day are
read from the hourly rollups, taken from the one and added to the other. In UTC that is
one row per day and key, in a whole-hour zone a few hourly rows per day more. A zone
like Asia/Kolkata (+05:30) cuts one UTC hour in two at each midnight: those hours, and
only those, are summed from the charges themselves (through the ``(persona, ts)``
index), so the answer is exact in every zone. docs/benchmarks.md ("Spend report") has
what each part costs at a million charges.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from django.db import connection, transaction
from django.db.models import BigIntegerField, Case, DateField, F, Func, Q, Sum, Value, When

from budgets.models import Charge, SpendDailyRollup, SpendRollup
from budgets.reports.rollups import HOUR, hour_of
from budgets.services.windows import local_midnight, zone
from hal0.errors import BadRequest, NotFound
from hal0.money import to_decimal, usd_number
from personas.ids import is_valid_id
from personas.models import Persona

TIME_GROUPS = ("day", "week", "month")
GROUPS = (*TIME_GROUPS, "agent", "persona", "model", "surface")
MAX_DAYS = 366
DEFAULT_DAYS = 30
METRIC_COLUMNS = ("cost_usd", "charges", "input_tokens", "output_tokens", "unpriced_charges")


def _invalid(message: str, key: str) -> BadRequest:
    return BadRequest(message, code="report.invalid", details={"key": key})


@dataclass(frozen=True)
class ReportQuery:
    start: dt.date  # first local day
    end: dt.date  # last local day, inclusive
    tz: str
    group_by: tuple[str, ...] = ("day",)
    agent: str | None = None
    persona: str | None = None
    model: str | None = None
    surface: str | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def begin_utc(self) -> dt.datetime:
        return local_midnight(self.start, self.tz)

    @property
    def end_utc(self) -> dt.datetime:
        return local_midnight(self.end + dt.timedelta(days=1), self.tz)


def _date(params: Mapping[str, str], key: str) -> dt.date | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return None
    try:
        if len(raw) != 10:
            raise ValueError
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise _invalid(f"'{key}' must be a date as YYYY-MM-DD", key) from None


def _tz(params: Mapping[str, str]) -> str:
    name = params.get("tz") or "UTC"
    try:
        # A zone name is looked up as a path under the zone database: refuse anything that
        # is not a plain "Area/City" first.
        if len(name) > 64 or ".." in name or name.startswith("/"):
            raise ValueError
        zone(name)
    except (ValueError, ZoneInfoNotFoundError):
        raise _invalid("'tz' must be an IANA timezone such as Europe/Berlin", "tz") from None
    return name


def _group_by(params: Mapping[str, str]) -> tuple[str, ...]:
    raw = params.get("group_by")
    if raw is None or raw.strip() == "":
        return ("day",)
    names = [n.strip() for n in raw.split(",")]
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        raise _invalid(f"'group_by' takes {', '.join(GROUPS)}; not {unknown[0]!r}", "group_by")
    if len(set(names)) != len(names):
        raise _invalid("'group_by' names a grouping twice", "group_by")
    if sum(n in TIME_GROUPS for n in names) > 1:
        raise _invalid("'group_by' takes at most one of day, week, month", "group_by")
    return tuple(names)


def _text(params: Mapping[str, str], key: str) -> str | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if len(value) > 200:
        raise _invalid(f"'{key}' must be at most 200 characters", key)
    return value


def parse_query(params: Mapping[str, str], *, today: dt.date | None = None) -> ReportQuery:
    """A report query from query-string parameters; 400 ``report.invalid`` naming the key.

    ``to`` defaults to today in ``tz``, ``from`` to 29 days before ``to`` (30 days).
    """
    tz = _tz(params)
    end = _date(params, "to") or today or dt.datetime.now(zone(tz)).date()
    start = _date(params, "from") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise _invalid("'from' must not be after 'to'", "from")
    if (end - start).days + 1 > MAX_DAYS:
        raise _invalid(f"a report covers at most {MAX_DAYS} days ('to' is inclusive)", "to")
    return ReportQuery(
        start=start,
        end=end,
        tz=tz,
        group_by=_group_by(params),
        agent=_text(params, "agent"),
        persona=_text(params, "persona"),
        model=_text(params, "model"),
        surface=_text(params, "surface"),
    )


# ---------------------------------------------------------------------------------------
# The report


@dataclass
class Totals:
    cost_nanos: int = 0
    charges: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    unpriced: int = 0

    def add(self, cost: int, charges: int, tin: int, tout: int, unpriced: int) -> None:
        self.cost_nanos += cost
        self.charges += charges
        self.input_tokens += tin
        self.output_tokens += tout
        self.unpriced += unpriced

    @property
    def cost_known(self) -> bool:
        """False when every charge here had its cost not recorded: shown as such, not $0."""
        return not (self.charges and self.unpriced == self.charges)

    def as_json(self) -> dict[str, Any]:
        return {
            "cost_usd": usd_number(self.cost_nanos) if self.cost_known else None,
            "charges": self.charges,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "unpriced_charges": self.unpriced,
        }

    def as_csv(self) -> list[Any]:
        cost = str(to_decimal(self.cost_nanos)) if self.cost_known else ""
        return [cost, self.charges, self.input_tokens, self.output_tokens, self.unpriced]


@dataclass
class Report:
    query: ReportQuery
    rows: dict[tuple[str, ...], Totals] = field(default_factory=dict)
    total: Totals = field(default_factory=Totals)

    @property
    def columns(self) -> list[str]:
        """The row keys, in order: the groupings (persona brings its agent), then metrics."""
        cols: list[str] = []
        for g in self.query.group_by:
            if g == "persona" and "agent" not in self.query.group_by:
                cols.append("agent")
            cols.append(g)
        return cols

    def sorted_rows(self) -> list[tuple[tuple[str, ...], Totals]]:
        return sorted(self.rows.items(), key=lambda item: item[0])

    def as_json(self) -> dict[str, Any]:
        cols = self.columns
        q = self.query
        return {
            "from": q.start.isoformat(),
            "to": q.end.isoformat(),
            "tz": q.tz,
            "group_by": list(q.group_by),
            "filters": {
                k: v
                for k, v in (
                    ("agent", q.agent),
                    ("persona", q.persona),
                    ("model", q.model),
                    ("surface", q.surface),
                )
                if v is not None
            },
            "rows": [
                {**dict(zip(cols, key, strict=True)), **totals.as_json()}
                for key, totals in self.sorted_rows()
            ],
            "total": self.total.as_json(),
        }

    def csv_header(self) -> list[str]:
        return [*self.columns, *METRIC_COLUMNS]

    def csv_rows(self) -> Iterable[list[Any]]:
        for key, totals in self.sorted_rows():
            yield [*key, *totals.as_csv()]


def personas_in_scope(
    query: ReportQuery, *, only_agent: str | None = None, only_persona: str | None = None
) -> dict[int, tuple[str, str]] | None:
    """Persona pk -> (agent id, persona id) the report may read; ``None`` = all of them.

    ``only_agent`` (an agent key's agent) limits the report to that agent; another
    ``agent`` filter is then 404, worded as for an agent that does not exist.
    ``only_persona`` (a persona-scoped key's persona) limits it to that persona of the
    agent; another ``persona`` filter is then 404 ``persona.not_found``.
    """
    from budgets.auth import unknown_agent, unknown_persona

    agent = query.agent
    wanted = query.persona
    if only_persona is not None:
        if wanted is not None and wanted != only_persona:
            raise unknown_persona(str(only_agent or agent), wanted)
        wanted = only_persona
    if only_agent is not None:
        if agent is not None and agent != only_agent:
            raise unknown_agent(agent)
        agent = only_agent
    if agent is not None and not (is_valid_id(agent) and _agent_exists(agent)):
        raise unknown_agent(agent)
    personas = Persona.objects.all()
    if agent is not None:
        personas = personas.filter(agent_id=agent)
    if wanted is not None:
        personas = personas.filter(slug=wanted)
        if not (is_valid_id(wanted) and personas.exists()):
            raise NotFound(
                f"persona {wanted[:64]!r} not found",
                code="persona.not_found",
                details={"agent_id": agent, "persona_id": wanted},
            )
    if agent is None and wanted is None:
        # Every persona: no filter at all, and the names of those that show up.
        return None
    return {pk: (a, s) for pk, a, s in personas.values_list("pk", "agent_id", "slug")}


def _agent_exists(agent_id: str) -> bool:
    from personas.models import Agent

    return Agent.objects.filter(id=agent_id).exists()


def _split_hours(query: ReportQuery) -> list[dt.datetime]:
    """UTC hours that hold a local midnight not on a whole hour (half-hour zones)."""
    out: list[dt.datetime] = []
    day = query.start
    while day <= query.end + dt.timedelta(days=1):
        midnight = local_midnight(day, query.tz)
        if midnight.minute or midnight.second:
            out.append(hour_of(midnight))
        day += dt.timedelta(days=1)
    return out


def spend_report(
    query: ReportQuery, *, only_agent: str | None = None, only_persona: str | None = None
) -> Report:
    """The report for ``query``: one grouped statement over the rollups (and, for
    half-hour zones, the charges of the hours their midnights cut in two)."""
    scope = personas_in_scope(query, only_agent=only_agent, only_persona=only_persona)
    report = Report(query=query)
    split = _split_hours(query)
    time_group = next((g for g in query.group_by if g in TIME_GROUPS), None)
    tzinfo = zone(query.tz)
    local_date_of: dict[dt.datetime | dt.date, str] = {}
    names: dict[int, tuple[str, str]] = dict(scope or {})

    def time_key(instant: dt.datetime | dt.date) -> str:
        # Days repeat across rows: each is turned into its local period once.
        key = local_date_of.get(instant)
        if key is None:
            is_instant = isinstance(instant, dt.datetime)
            day = instant.astimezone(tzinfo).date() if is_instant else instant  # type: ignore[union-attr]
            if time_group == "week":
                key = (day - dt.timedelta(days=day.weekday())).isoformat()
            elif time_group == "month":
                key = day.strftime("%Y-%m")
            else:
                key = day.isoformat()
            local_date_of[instant] = key
        return key

    def group_key(r: Mapping[str, Any], instant: dt.datetime | dt.date | None) -> tuple[str, ...]:
        parts: list[str] = []
        for g in query.group_by:
            if g in TIME_GROUPS:
                assert instant is not None
                parts.append(time_key(instant))
            elif g == "agent":
                parts.append(names[r["persona_id"]][0])
            elif g == "persona":
                if "agent" not in query.group_by:
                    parts.append(names[r["persona_id"]][0])
                parts.append(names[r["persona_id"]][1])
            else:
                parts.append(r[g])
        return tuple(parts)

    def add(key: tuple[str, ...], sums: tuple[int, int, int, int, int]) -> None:
        totals = report.rows.get(key)
        if totals is None:
            totals = report.rows[key] = Totals()
        totals.add(*sums)
        report.total.add(*sums)

    dims: list[str] = []
    if "agent" in query.group_by or "persona" in query.group_by:
        dims.append("persona_id")
    dims += [g for g in ("model", "surface") if g in query.group_by]

    rows = _report_rows(query, scope, dims, split, by_day=time_group is not None)
    _name_personas(names, scope, rows, dims)
    for r in rows:
        if r["n"]:  # a key whose charges all moved to another local day sums to nothing
            add(group_key(r, r.get("d")), (r["c"], r["n"], r["i"], r["o"], r["u"]))
    return report


Rows = list[dict[str, Any]]
_DIM_ALIASES = {"persona_id": "k_persona", "model": "k_model", "surface": "k_surface"}
_METRIC_NAMES = ("c", "n", "i", "o", "u")


def _report_rows(
    query: ReportQuery,
    scope: dict[int, Any] | None,
    dims: list[str],
    split: list[dt.datetime],
    *,
    by_day: bool,
) -> Rows:
    """The report's sums per ``dims`` (and local day ``d`` when ``by_day``), in ONE
    statement: the signed parts of :func:`_parts` put together with ``UNION ALL`` and
    summed by the database, so Python sees days x groups rows, not every part's."""
    parts, moved = _parts(query, scope, dims, split)
    if not parts and not moved:
        return []
    qn = connection.ops.quote_name
    keys = (["d"] if by_day else []) + [_DIM_ALIASES[d] for d in dims]
    params: list[Any] = []

    def union(querysets: list[Any]) -> list[str]:
        sqls = []
        for qs in querysets:
            sql, qs_params = qs.query.sql_with_params()
            sqls.append(sql)
            params.extend(qs_params)
        return sqls

    with_moved = ""
    if moved:
        # Read once, used twice: added on their own local day, taken from their UTC
        # day's (both databases materialize a CTE that is referenced twice).
        with_moved = f"WITH moved AS ({' UNION ALL '.join(union(moved))}) "
    sqls = union(parts)
    if moved:
        cols = [qn(c) for c in [_DIM_ALIASES[d] for d in dims]]
        metrics = [qn(m) for m in _METRIC_NAMES]
        # Only quoted constant identifiers are formatted in; every value is a parameter.
        sqls.append(f"SELECT {', '.join([qn('d'), *cols, *metrics])} FROM moved")  # noqa: S608
        negated = [f"-{m}" for m in metrics]
        sqls.append(f"SELECT {', '.join([qn('t'), *cols, *negated])} FROM moved")  # noqa: S608
    sums = ", ".join(f"SUM({qn(m)})" for m in _METRIC_NAMES)
    select = ", ".join([*(qn(k) for k in keys), sums])
    group = f" GROUP BY {', '.join(qn(k) for k in keys)}" if keys else ""
    sql = f"{with_moved}SELECT {select} FROM ({' UNION ALL '.join(sqls)}) parts{group}"  # noqa: S608
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # PostgreSQL plans the moved hours' CTE in parallel at a million charges: its
            # workers took 8-40 ms to start on a busy 2-core machine, for parts that run
            # in 3 ms (docs/benchmarks.md, "Spend report").
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    out: Rows = []
    for values in fetched:
        row: dict[str, Any] = dict(zip(keys, values[: len(keys)], strict=True))
        for dim in dims:
            row[dim] = row.pop(_DIM_ALIASES[dim])
        if by_day and isinstance(row["d"], str):  # SQLite's date() is text
            row["d"] = dt.date.fromisoformat(row["d"])
        row.update(zip(_METRIC_NAMES, (int(v or 0) for v in values[len(keys) :]), strict=True))
        out.append(row)
    return out


def _columns(day: Any, dims: list[str], metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A part's columns, in the order every part of the ``UNION ALL`` shares."""
    return {"d": day, **{_DIM_ALIASES[d]: F(d) for d in dims}, **metrics}


_ROLLUP_SUMS = {
    "c": Sum("cost_nanos"),
    "n": Sum("charges"),
    "i": Sum("input_tokens"),
    "o": Sum("output_tokens"),
    "u": Sum("unpriced"),
}


def _rollup_metrics(sign: int) -> dict[str, Any]:
    columns = ("cost_nanos", "charges", "input_tokens", "output_tokens", "unpriced")
    return {m: F(c) if sign > 0 else -F(c) for m, c in zip(_METRIC_NAMES, columns, strict=True)}


def _parts(
    query: ReportQuery, scope: dict[int, Any] | None, dims: list[str], split: list[dt.datetime]
) -> tuple[list[Any], list[Any]]:
    """Querysets of rows ``(d, dims..., c, n, i, o, u)`` whose sums per local day ``d`` and
    ``dims`` are the report (a row taken away has its metrics negated); and querysets of
    the moved hours' sums ``(t, d, dims..., c, n, i, o, u)``, to be added on ``d`` and
    taken from ``t``.

    A UTC day inside a stretch of constant offset is read as its daily rollup rows, put
    on the local day most of its hours fall on; the few hours that fall on the
    neighbouring local day (with Europe/Berlin's +01:00, 23:00-24:00 UTC) are read from
    the hourly rollups, taken away from that day and added to theirs. A 90-day report
    thus reads about 90 rows per key instead of 2,160, and in UTC nothing hourly at all.
    The partial UTC days at the ends of a stretch (the range's ends, DST changes) are read
    hour by hour; the hours a half-hour zone's midnight cuts, from the charges.
    """
    tzinfo = zone(query.tz)
    hourly = _filtered(SpendRollup.objects.all(), query, scope)
    daily = _filtered(SpendDailyRollup.objects.all(), query, scope)
    parts: list[Any] = []
    moved_parts: list[Any] = []
    for lo, hi, minutes in _offset_stretches(hour_of(query.begin_utc), query.end_utc, tzinfo):
        first = _next_midnight(lo)
        last = max(first, hi.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0))
        starts = [first + dt.timedelta(days=n) for n in range((last - first).days)]
        main, moved, cut = _day_shape(minutes)
        # The partial UTC days at the stretch's ends, hour by hour.
        edges = Q()
        for a, b in ((lo, first), (last, hi)) if starts else ((lo, hi),):
            if a < b:
                edges |= Q(hour__gte=a, hour__lt=b)
        if edges:
            added = hourly.filter(edges).exclude(hour__in=split) if split else hourly.filter(edges)
            parts.append(
                added.values(**_columns(LocalDate("hour", minutes), dims, _rollup_metrics(1)))
            )
        if not starts:
            continue
        # The whole UTC days, on the local day most of their hours fall on...
        days = daily.filter(day__gte=first.date(), day__lt=last.date())
        parts.append(days.values(**_columns(ShiftDate("day", main), dims, _rollup_metrics(1))))
        # ... with their hours that fall on another local day moved there (a list of
        # hours, not an OR of ranges: 90 ranges took the ORM longer to build than the
        # database took to answer) ...
        if moved:
            hours = hourly.filter(hour__in=[day + h * HOUR for day in starts for h in moved])
            moved_parts.append(
                hours.values(
                    t=LocalDate("hour", main * 1440),
                    **_columns(LocalDate("hour", minutes), dims, {}),
                )
                .annotate(**_ROLLUP_SUMS)
                .order_by()
            )
        # ... and without the hours a local midnight cuts (added from the charges below).
        if cut:
            taken = hourly.filter(hour__in=[day + h * HOUR for day in starts for h in cut])
            parts.append(
                taken.values(**_columns(LocalDate("hour", main * 1440), dims, _rollup_metrics(-1)))
            )
    if split:
        parts += _split_hour_parts(query, scope, dims, split)
    return parts, moved_parts


def _next_midnight(instant: dt.datetime) -> dt.datetime:
    midnight = instant.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight == instant else midnight + dt.timedelta(days=1)


def _day_shape(minutes: int) -> tuple[int, list[int], list[int]]:
    """Where the hours of a UTC day go at a fixed offset of ``minutes``: the local day most
    of them fall on (days after the UTC date: -1, 0 or 1), the hours that fall on another
    local day, and the hours a local midnight cuts in two (a half-hour zone's)."""
    shifts: dict[int, int] = {}
    cut: list[int] = []
    for h in range(24):
        start = h * 60 + minutes  # local minutes after the UTC date's midnight
        if start // 1440 != (start + 59) // 1440:
            cut.append(h)
        else:
            shifts[h] = start // 1440
    main = Counter(shifts.values()).most_common(1)[0][0]
    return main, sorted(h for h, s in shifts.items() if s != main), cut


def _split_hour_parts(
    query: ReportQuery, scope: dict[int, Any] | None, dims: list[str], split: list[dt.datetime]
) -> list[Any]:
    """The charges in the hours a local midnight cuts, one part per UTC offset those hours
    have: these are read charge by charge (docs/benchmarks.md, "Spend report")."""
    tzinfo = zone(query.tz)
    begin, end = query.begin_utc, query.end_utc
    by_offset: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {}
    for hour in split:
        lo, hi = max(hour, begin), min(hour + HOUR, end)
        if lo < hi:
            by_offset.setdefault(_offset_minutes(hour, tzinfo), []).append((lo, hi))
    personas = (
        list(scope)
        if scope is not None
        else list(Persona.objects.order_by().values_list("pk", flat=True))
    )
    one = Value(1, output_field=BigIntegerField())
    metrics = {
        "c": F("cost_nanos"),
        "n": one,
        "i": F("input_tokens"),
        "o": F("output_tokens"),
        "u": Case(When(cost_nanos__isnull=True, then=one), default=Value(0)),
    }
    parts: list[Any] = []
    for minutes, spans in by_offset.items():
        # One term per hour, persona and range together: each is a range of the
        # (persona, ts) index (SQLite does not split one IN and an OR of ranges apart).
        where = Q()
        for lo, hi in spans:
            where |= Q(persona_id__in=personas, ts__gte=lo, ts__lt=hi)
        charges = Charge.objects.filter(where).order_by()
        if query.model is not None:
            charges = charges.filter(model=query.model)
        if query.surface is not None:
            charges = charges.filter(surface=query.surface)
        parts.append(charges.values(**_columns(LocalDate("ts", minutes), dims, metrics)))
    return parts


class ShiftDate(Func):
    """A date column moved by a whole number of days, computed by the database."""

    output_field = DateField()

    def __init__(self, expression: str, days: int) -> None:
        super().__init__(F(expression))
        self.days = days

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"date({sql}, %s)", [*params, f"{self.days:+d} days"]

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"({sql} + %s::integer)", [*params, self.days]


class LocalDate(Func):
    """The date of a UTC timestamp shifted by a fixed number of minutes (a zone's offset
    over a stretch of time), computed by the database."""

    output_field = DateField()

    def __init__(self, expression: str, minutes: int) -> None:
        super().__init__(F(expression))
        self.minutes = minutes

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"date({sql}, %s)", [*params, f"{self.minutes:+d} minutes"]

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        return (
            f"(({sql} AT TIME ZONE 'UTC') + make_interval(mins => %s))::date",
            [*params, self.minutes],
        )


def _offset_minutes(instant: dt.datetime, tzinfo: Any) -> int:
    offset = instant.astimezone(tzinfo).utcoffset() or dt.timedelta(0)
    return int(offset.total_seconds() // 60)


def _offset_stretches(
    lo: dt.datetime, hi: dt.datetime, tzinfo: Any
) -> list[tuple[dt.datetime, dt.datetime, int]]:
    """``[lo, hi)`` cut into stretches of whole hours with one UTC offset each.

    Walks a day at a time; a day whose first and last hour differ is searched hour by
    hour for the change (zones change their offset at most once a day).
    """
    out: list[tuple[dt.datetime, dt.datetime, int]] = []
    start, current = lo, _offset_minutes(lo, tzinfo)
    t = lo
    while t < hi:
        step_end = min(t + dt.timedelta(days=1), hi)
        if _offset_minutes(step_end - HOUR, tzinfo) != current:
            h = t
            while h < step_end:
                minutes = _offset_minutes(h, tzinfo)
                if minutes != current:
                    out.append((start, h, current))
                    start, current = h, minutes
                h += HOUR
        t = step_end
    out.append((start, hi, current))
    return out


def _filtered(
    qs: Any, query: ReportQuery, scope: dict[int, Any] | None, *, charges: bool = False
) -> Any:
    if scope is not None:
        qs = qs.filter(persona_id__in=list(scope))
    elif charges:
        # Naming every persona lets the (persona, ts) index serve the time ranges.
        qs = qs.filter(persona_id__in=list(Persona.objects.values_list("pk", flat=True)))
    if query.model is not None:
        qs = qs.filter(model=query.model)
    if query.surface is not None:
        qs = qs.filter(surface=query.surface)
    return qs


def _name_personas(
    names: dict[int, tuple[str, str]],
    scope: dict[int, Any] | None,
    rows: Sequence[Mapping[str, Any]],
    dims: list[str],
) -> None:
    """Fill ``names`` for the personas in ``rows`` (one query, only when unscoped)."""
    if scope is not None or "persona_id" not in dims:
        return
    wanted = {r["persona_id"] for r in rows} - names.keys()
    if wanted:
        for pk, a, s in Persona.objects.filter(pk__in=wanted).values_list("pk", "agent_id", "slug"):
            names[pk] = (a, s)
