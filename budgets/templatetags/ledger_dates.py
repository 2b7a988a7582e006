"""A date hierarchy for the ledger (and the holds) that never scans it.

Django's own asks the database for the distinct years, months and days that hold rows
(``SELECT DISTINCT trunc(ts)``): a full scan of a million-row ledger on every page view.
This one offers the calendar instead: the years from the first charge (by id, one
indexed row) to today, the twelve months of a year, the days of a month. The filtering
itself is Django's (``ts__year``/``ts__month``/``ts__day``), which is a range on ``ts``.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from django import template
from django.utils import formats, timezone
from django.utils.text import capfirst

register = template.Library()


def _first_year(cl: Any, field: str) -> int:
    # The oldest row by an index: the primary key where ids grow with time (charges), else
    # the date field itself (holds have random ids and an index on created_at).
    first_by = getattr(cl.model_admin, "calendar_first_by", "pk")
    first = cl.model._default_manager.order_by(first_by).values_list(field, flat=True).first()
    today = timezone.localdate()
    return timezone.localtime(first).year if first is not None else today.year


@register.inclusion_tag("admin/date_hierarchy.html")
def calendar_hierarchy(cl: Any) -> dict[str, Any]:
    field = cl.date_hierarchy
    year_field, month_field, day_field = (f"{field}__{p}" for p in ("year", "month", "day"))
    year = cl.params.get(year_field)
    month = cl.params.get(month_field)
    day = cl.params.get(day_field)
    today = timezone.localdate()

    def link(filters: dict[str, Any]) -> str:
        return str(cl.get_query_string(filters, [f"{field}__"]))

    try:
        y = int(year) if year else None
        m = int(month) if month else None
        d = int(day) if day else None
    except (TypeError, ValueError):
        return {"show": False}
    if y and m and d:
        chosen = dt.date(y, m, d)
        return {
            "show": True,
            "back": {
                "link": link({year_field: y, month_field: m}),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    if y and m:
        last = calendar.monthrange(y, m)[1]
        if (y, m) == (today.year, today.month):
            last = today.day
        days = [dt.date(y, m, n) for n in range(1, last + 1)]
        return {
            "show": True,
            "back": {"link": link({year_field: y}), "title": str(y)},
            "choices": [
                {
                    "link": link({year_field: y, month_field: m, day_field: day.day}),
                    "title": capfirst(formats.date_format(day, "MONTH_DAY_FORMAT")),
                }
                for day in days
            ],
        }
    if y:
        months = range(1, (today.month if y == today.year else 12) + 1)
        return {
            "show": True,
            "back": {"link": link({}), "title": "All dates"},
            "choices": [
                {
                    "link": link({year_field: y, month_field: n}),
                    "title": capfirst(formats.date_format(dt.date(y, n, 1), "YEAR_MONTH_FORMAT")),
                }
                for n in months
            ],
        }
    years = range(_first_year(cl, field), today.year + 1)
    return {
        "show": True,
        "back": None,
        "choices": [{"link": link({year_field: n}), "title": str(n)} for n in years],
    }
