"""The ledger list's custom date range, its total, and its request_id search.

All three are built for a million rows: the range is a ``ts`` range, the total is read
from the report rollups whenever the filters map onto them, and the search is an exact
id or a prefix served by the ``request_id`` index.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.db.models import Count, Q, QuerySet, Sum
from django.http import HttpRequest

from budgets.models import SpendRollup
from budgets.reports.spend_report import Totals

# A prefix shorter than this would match much of the ledger: it is taken as exact only.
MIN_PREFIX = 4
# Past the end of every prefix in a binary (C) collation: ``[term, term + MAX)`` is a
# range of the request_id index holding every id that starts with the term.
_MAX_CHAR = "\U0010ffff"


def _day(raw: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw and len(raw) == 10 else None
    except ValueError:
        return None


class DateRangeFilter(admin.ListFilter):
    """From and to (inclusive) UTC days typed in, beside the preset date filter."""

    title = "custom dates (UTC)"
    template = "admin/hal0/date_range_filter.html"
    parameters = ("from_day", "to_day")

    def __init__(
        self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any
    ) -> None:
        super().__init__(request, params, model, model_admin)
        self.values: dict[str, str] = {}
        for name in self.parameters:
            if name in params:
                value = params.pop(name)
                self.values[name] = value[-1] if isinstance(value, list) else value
        self.start = _day(self.values.get("from_day"))
        self.end = _day(self.values.get("to_day"))

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return list(self.parameters)

    def choices(self, changelist: Any) -> Iterator[Any]:
        keep = []
        for key, value in changelist.get_filters_params().items():
            if key not in self.parameters:
                keep += [(key, v) for v in (value if isinstance(value, list) else [value])]
        yield {
            "from_day": self.values.get("from_day", ""),
            "to_day": self.values.get("to_day", ""),
            "keep": keep,
            "clear": changelist.get_query_string(remove=list(self.parameters)),
        }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.start is not None:
            queryset = queryset.filter(ts__gte=_midnight(self.start))
        if self.end is not None:
            queryset = queryset.filter(ts__lt=_midnight(self.end + dt.timedelta(days=1)))
        return queryset


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


def search(queryset: QuerySet[Any], term: str) -> QuerySet[Any]:
    """An exact request_id, or every id starting with ``term`` (at least 4 characters);
    both are ranges of the request_id index, whatever the ledger's size."""
    term = term.strip()
    if len(term) < MIN_PREFIX:
        return queryset.filter(request_id=term)
    return queryset.filter(
        request_id__gte=term, request_id__lt=term + _MAX_CHAR, request_id__startswith=term
    )


# The list's parameters the rollups can answer, and what each filters on.
_ROLLUP_PARAMS = {
    "persona__agent__id__exact": "persona__agent_id",
    "persona__id__exact": "persona_id",
    "surface": "surface",
    "model": "model",
}
_IGNORED = {"o", "p", "e", "_to_field", "_popup"}


def total(changelist: Any) -> Totals:
    """The total of the rows the list shows (all pages), as the report would sum them.

    From the rollups when every filter maps onto them (persona, agent, surface, model,
    whole UTC days); otherwise (a search, the source filter) a SUM over the filtered rows.
    """
    params = {k: v for k, v in changelist.params.items() if k not in _IGNORED}
    query = (changelist.query or "").strip()
    rollups = SpendRollup.objects.all()
    usable = not query
    for key, value in params.items():
        value = value[-1] if isinstance(value, list) else value
        if key in _ROLLUP_PARAMS:
            rollups = rollups.filter(**{_ROLLUP_PARAMS[key]: value})
        elif key in ("from_day", "to_day", "ts__gte", "ts__lt"):
            day = _day(value[:10])
            if day is None:
                usable = False
                continue
            if key == "to_day":
                rollups = rollups.filter(hour__lt=_midnight(day + dt.timedelta(days=1)))
            elif key == "ts__lt":
                rollups = rollups.filter(hour__lt=_midnight(day))
            else:
                rollups = rollups.filter(hour__gte=_midnight(day))
        elif key in ("ts__year", "ts__month", "ts__day"):
            rollups = rollups.filter(**{key.replace("ts__", "hour__"): value})
        else:
            usable = False
    out = Totals()
    sums: dict[str, Any]
    if usable:
        sums = rollups.aggregate(
            c=Sum("cost_nanos"),
            n=Sum("charges"),
            i=Sum("input_tokens"),
            o=Sum("output_tokens"),
            u=Sum("unpriced"),
        )
    else:
        sums = changelist.queryset.order_by().aggregate(
            c=Sum("cost_nanos"),
            n=Count("id"),
            i=Sum("input_tokens"),
            o=Sum("output_tokens"),
            u=Count("id", filter=Q(cost_nanos__isnull=True)),
        )
    out.add(
        int(sums["c"] or 0),
        int(sums["n"] or 0),
        int(sums["i"] or 0),
        int(sums["o"] or 0),
        int(sums["u"] or 0),
    )
    return out
