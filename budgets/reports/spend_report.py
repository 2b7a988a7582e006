"""The spend report (``GET /api/spend``, the Spend page's breakdowns): sums of charges over
a range of local days, grouped by time and by who/what spent.

Read from the rollups (per UTC hour, persona, model, surface), never by scanning the
ledger. A day of the report's timezone is a whole number of UTC hours when its midnights
fall on a whole hour (every zone with a whole-hour offset, DST included). A zone like
Asia/Kolkata (+05:30) cuts one UTC hour in two at each midnight: those hours, and only
those, are summed from the charges themselves (through the ``(persona, ts)`` index), so
the answer is exact in every zone and a half-hour zone reads one extra hour of charges a
day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from django.db.models import DateField, F, Func, Q, Sum

from budgets.models import Charge, SpendRollup
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
    """The report for ``query``: one grouped query over the rollups (plus, for half-hour
    zones, the charges of the hours their midnights cut in two)."""
    scope = personas_in_scope(query, only_agent=only_agent, only_persona=only_persona)
    report = Report(query=query)
    begin, end = query.begin_utc, query.end_utc
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

    # 1. Whole hours, from the rollups.
    rollups = SpendRollup.objects.filter(hour__gte=hour_of(begin), hour__lt=end)
    rollups = _filtered(rollups, query, scope)
    if split:
        rollups = rollups.exclude(hour__in=split)
    sums = {
        "c": Sum("cost_nanos"),
        "n": Sum("charges"),
        "i": Sum("input_tokens"),
        "o": Sum("output_tokens"),
        "u": Sum("unpriced"),
    }
    rows: list[Mapping[str, Any]] = []
    if time_group is not None:
        # The local day of each hour is computed by the database, one query per stretch
        # of constant UTC offset (two or three a year in a zone with DST): a 90-day report
        # returns days x groups rows, not hours x groups.
        for lo, hi, minutes in _offset_stretches(hour_of(begin), end, tzinfo):
            stretch = rollups.filter(hour__gte=lo, hour__lt=hi)
            rows += (
                stretch.annotate(d=LocalDate("hour", minutes))
                .values("d", *dims)
                .annotate(**sums)
                .order_by()
            )
    elif dims:
        rows = list(rollups.values(*dims).annotate(**sums).order_by())
    else:
        one = rollups.aggregate(**sums)
        rows = [one] if one["n"] else []
    _name_personas(names, scope, rows, dims)
    for r in rows:
        add(
            group_key(r, r.get("d")),
            (int(r["c"] or 0), int(r["n"]), int(r["i"] or 0), int(r["o"] or 0), int(r["u"] or 0)),
        )

    # 2. The hours a half-hour zone's midnights cut in two, from the charges.
    if split:
        spans = Q()
        for hour in split:
            lo, hi = max(hour, begin), min(hour + HOUR, end)
            if lo < hi:
                spans |= Q(ts__gte=lo, ts__lt=hi)
        charges = _filtered(Charge.objects.filter(spans), query, scope, charges=True)
        crow = list(
            charges.values(
                "ts",
                "persona_id",
                "model",
                "surface",
                "cost_nanos",
                "input_tokens",
                "output_tokens",
            )
        )
        _name_personas(names, scope, crow, ["persona_id"])
        for c in crow:
            cost = c["cost_nanos"]
            add(
                group_key(c, c["ts"]),
                (
                    cost or 0,
                    1,
                    c["input_tokens"] or 0,
                    c["output_tokens"] or 0,
                    int(cost is None),
                ),
            )
    return report


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
    rows: list[Mapping[str, Any]],
    dims: list[str],
) -> None:
    """Fill ``names`` for the personas in ``rows`` (one query, only when unscoped)."""
    if scope is not None or "persona_id" not in dims:
        return
    wanted = {r["persona_id"] for r in rows} - names.keys()
    if wanted:
        for pk, a, s in Persona.objects.filter(pk__in=wanted).values_list("pk", "agent_id", "slug"):
            names[pk] = (a, s)
