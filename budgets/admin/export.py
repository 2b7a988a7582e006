"""The ledger's CSV export, streamed one line at a time."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from budgets.models import Charge
from budgets.templatetags.spend import format_usd

CSV_COLUMNS = (
    "seq",
    "ts",
    "agent_id",
    "persona_id",
    "surface",
    "model",
    "cost_usd",
    "request_id",
    "input_tokens",
    "output_tokens",
    "source",
    "hold_id",
)
_CSV_FIELDS = (
    "id",
    "ts",
    "persona__agent_id",
    "persona__slug",
    "surface",
    "model",
    "cost_nanos",
    "request_id",
    "input_tokens",
    "output_tokens",
    "source",
    "hold_id",
)
# A spreadsheet runs a cell that starts with one of these as a formula; surface, model and
# request_id come from API clients, so such cells are prefixed with a quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_rows(queryset: QuerySet[Charge]) -> Iterator[str]:
    """The export, one line at a time; the query streams in chunks (constant memory).

    ``cost_usd`` is the exact decimal amount; an empty cell means the cost was not
    recorded (never written as 0).
    """
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    rows = queryset.select_related(None).order_by("id").values_list(*_CSV_FIELDS)
    for row in rows.iterator(chunk_size=2_000):
        (seq, ts, agent_id, persona_id, surface, model, cost, request_id, *rest) = row
        cost_usd = "" if cost is None else format_usd(cost).lstrip("$").replace(",", "")
        yield writer.writerow(
            [
                seq,
                ts.astimezone(dt.UTC).isoformat(),
                agent_id,
                persona_id,
                _csv_cell(surface),
                _csv_cell(model),
                cost_usd,
                _csv_cell(request_id),
                *("" if v is None else v for v in rest),
            ]
        )
