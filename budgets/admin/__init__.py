"""The operators' admin for the ledger, holds and API keys.

The ledger is read-only here for everyone, superusers included: no add, change or delete
permission and no delete action. The charge list is built for a million rows: no full
``COUNT(*)`` (a capped count instead), one join, filters whose choices come from an
index or a bounded sample, and a date hierarchy that does not scan the table.

The modules: ``base`` (the capped paginator and the read-only admin), ``charges`` (the
ledger), ``export`` (its CSV export), ``holds``, ``keys`` (API keys), ``runs`` (runs with
their gauges, extend and close), ``pause`` (the stop switch's button), ``spend`` (agents
and personas with their spend) and ``webhooks`` (endpoints, deliveries, events).
Importing this package registers them all, in that order: ``spend`` replaces the
registrations of ``personas.admin``.
"""

from __future__ import annotations

from budgets.admin.base import CappedCountPaginator, ReadOnlyAdmin
from budgets.admin.charges import (
    ChargeAdmin,
    DateFilter,
    ModelFilter,
    RecentValuesFilter,
    SurfaceFilter,
)
from budgets.admin.export import CSV_COLUMNS, csv_rows
from budgets.admin.holds import HoldAdmin, HoldStatusFilter, hold_status
from budgets.admin.keys import ApiKeyAddForm, ApiKeyAdmin, ApiKeyScopeFilter
from budgets.admin.runs import RunAdmin
from budgets.admin.spend import SpendAgentAdmin, SpendPersonaAdmin, SpendPersonaInline
from budgets.admin.webhooks import DeliveryAdmin, EventAdmin, WebhookEndpointAdmin

__all__ = [
    "CSV_COLUMNS",
    "ApiKeyAddForm",
    "ApiKeyAdmin",
    "ApiKeyScopeFilter",
    "CappedCountPaginator",
    "ChargeAdmin",
    "DateFilter",
    "DeliveryAdmin",
    "EventAdmin",
    "HoldAdmin",
    "HoldStatusFilter",
    "ModelFilter",
    "ReadOnlyAdmin",
    "RecentValuesFilter",
    "RunAdmin",
    "SpendAgentAdmin",
    "SpendPersonaAdmin",
    "SpendPersonaInline",
    "SurfaceFilter",
    "WebhookEndpointAdmin",
    "csv_rows",
    "hold_status",
]
