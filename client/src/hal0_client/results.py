"""Typed answers of the service. Money is ``Decimal`` (exact, as the service keeps it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


def usd(value: Any) -> Decimal | None:
    """A JSON number of USD as an exact ``Decimal`` (``None`` stays ``None``)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    # Through str: Decimal(0.1) would carry the binary float's 55 digits.
    return Decimal(str(value))


def timestamp(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    # Python 3.9's fromisoformat does not take a trailing "Z".
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _usd_map(value: Any) -> dict[str, Decimal]:
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, Decimal] = {}
    for key, amount in value.items():
        number = usd(amount)
        if number is not None:
            out[str(key)] = number
    return out


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Hold:
    """A reservation taken by a check with ``reserve``."""

    id: str
    amount_usd: Decimal
    expires_at: dt.datetime | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Hold:
        return cls(
            id=str(data["id"]),
            amount_usd=usd(data.get("amount_usd")) or Decimal(0),
            expires_at=timestamp(data.get("expires_at")),
        )


@dataclass(frozen=True)
class CheckResult:
    """``POST .../check``: may the persona spend the estimate?"""

    allowed: bool
    reason: str | None
    remaining_usd: dict[str, Decimal]
    hard_cap: bool
    decision: str | None = None  # allow | warn | block
    limit: str | None = None
    scope: str | None = None
    hold: Hold | None = None
    estimate_usd: Decimal | None = None
    estimate_source: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CheckResult:
        hold = data.get("hold")
        estimate = data.get("estimate")
        estimate = estimate if isinstance(estimate, Mapping) else {}
        return cls(
            allowed=bool(data.get("allowed")),
            reason=_str(data.get("reason")),
            remaining_usd=_usd_map(data.get("remaining_usd")),
            hard_cap=bool(data.get("hard_cap", True)),
            decision=_str(data.get("decision")),
            limit=_str(data.get("limit")),
            scope=_str(data.get("scope")),
            hold=Hold.from_json(hold) if isinstance(hold, Mapping) else None,
            estimate_usd=usd(estimate.get("usd")),
            estimate_source=_str(estimate.get("source")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Budget:
    """``GET .../budget``: caps, spend per window, headroom and the extensions."""

    caps: dict[str, Any]
    spend: dict[str, Decimal]
    remaining: dict[str, Decimal]
    held_usd: Decimal | None = None
    status: str | None = None  # none | ok | warn | exceeded
    resets_at: dict[str, dt.datetime] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Budget:
        resets: dict[str, dt.datetime] = {}
        raw_resets = data.get("resets_at")
        if isinstance(raw_resets, Mapping):
            for window, text in raw_resets.items():
                when = timestamp(text)
                if when is not None:
                    resets[str(window)] = when
        caps = data.get("budget")
        return cls(
            caps=dict(caps) if isinstance(caps, Mapping) else {},
            spend=_usd_map(data.get("spend")),
            remaining=_usd_map(data.get("remaining")),
            held_usd=usd(data.get("held_usd")),
            status=_str(data.get("status")),
            resets_at=resets,
            raw=dict(data),
        )


@dataclass(frozen=True)
class ChargeRow:
    """The ledger row a charge recorded. ``cost_usd`` is ``None`` when it is not known."""

    ts: dt.datetime | None
    surface: str
    model: str
    cost_usd: Decimal | None
    request_id: str
    cost_source: str | None = None  # reported | catalogue | override | unpriced


@dataclass(frozen=True)
class ChargeResult:
    """``POST .../charge``: what was recorded and the budget after it."""

    recorded: bool
    row: ChargeRow
    budget: Budget
    hold_settled: bool | None = None  # None: the charge named no hold
    hold_state: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChargeResult:
        row = data.get("row")
        row = row if isinstance(row, Mapping) else {}
        hold = data.get("hold")
        hold = hold if isinstance(hold, Mapping) else {}
        settled = hold.get("settled")
        return cls(
            recorded=bool(data.get("recorded")),
            row=ChargeRow(
                ts=timestamp(row.get("ts")),
                surface=str(row.get("surface", "")),
                model=str(row.get("model", "")),
                cost_usd=usd(row.get("cost_usd")),
                request_id=str(row.get("request_id", "")),
                cost_source=_str(row.get("cost_source")),
            ),
            budget=Budget.from_json(data),
            hold_settled=settled if isinstance(settled, bool) else None,
            hold_state=_str(hold.get("state")),
            raw=dict(data),
        )


@dataclass(frozen=True)
class Release:
    """``POST .../holds/{id}/release``."""

    hold_id: str
    state: str


@dataclass(frozen=True)
class Usage:
    """What one upstream call used, as a charge sends it.

    ``input_tokens`` counts every input token, cached ones included;
    ``cache_read_tokens`` and ``cache_write_tokens`` are the parts of it read from and
    written to the provider's prompt cache. ``cost_usd`` is a cost the provider reported
    (OpenRouter's ``usage.cost``): when set, it is what the charge records.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: Decimal | None = None
    model: str | None = None

    @property
    def empty(self) -> bool:
        return self.cost_usd is None and self.input_tokens is None and self.output_tokens is None
