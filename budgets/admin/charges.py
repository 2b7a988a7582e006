"""The ledger (``Charge``), read-only and built for a million rows."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from budgets.admin import ledger_range
from budgets.admin.base import CappedCountPaginator, ReadOnlyAdmin
from budgets.admin.export import csv_rows
from budgets.admin.ledger_range import DateRangeFilter
from budgets.models import Charge
from budgets.templatetags.spend import usd


class RecentValuesFilter(admin.SimpleListFilter):
    """Choices from the latest charges only: ``DISTINCT`` over the ledger is a scan.

    Any value still works in the URL (``?surface=...``); the sidebar offers the values
    seen in the last ``SAMPLE`` charges, which is what an operator looks for.
    """

    SAMPLE = 5_000
    field: str = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # Ids only grow: the latest charges are a range of the primary key.
        last = Charge.objects.order_by("-id").values_list("id", flat=True).first()
        if last is None:
            return []
        values = (
            Charge.objects.filter(id__gt=last - self.SAMPLE)
            .order_by()
            .values_list(self.field, flat=True)
            .distinct()
        )
        return [(v, v) for v in sorted(values)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(**{self.field: value})


class SurfaceFilter(RecentValuesFilter):
    title = "surface"
    parameter_name = "surface"
    field = "surface"


class ModelFilter(RecentValuesFilter):
    title = "model"
    parameter_name = "model"
    field = "model"


class CostKnownFilter(admin.SimpleListFilter):
    """Charges whose cost is not recorded (no price known, or imported without one)."""

    title = "cost"
    parameter_name = "cost"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("unknown", "not recorded"), ("known", "recorded")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("unknown", "known"):
            return queryset.filter(cost_nanos__isnull=self.value() == "unknown")
        return queryset


class DateFilter(admin.DateFieldListFilter):
    def __init__(self, field: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(field, request, *args, **kwargs)
        self.title = "date"


@admin.register(Charge)
class ChargeAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "when",
        "agent",
        "persona_link",
        "surface",
        "model",
        "cost",
        "cost_source",
        "tokens",
        "request_id",
        "source",
    )
    list_display_links = ("id",)
    # Plain related filters list the (small) agent and persona tables; "related only"
    # would ask the ledger which of them occur, a scan.
    list_filter = (
        "persona__agent",
        "persona",
        SurfaceFilter,
        ModelFilter,
        ("ts", DateFilter),
        DateRangeFilter,
        CostKnownFilter,
        "cost_source",
        "source",
    )
    list_select_related = ("persona",)
    search_fields = ("request_id",)
    search_help_text = f"A request_id, or its first characters (at least {ledger_range.MIN_PREFIX})"
    date_hierarchy = "ts"
    show_full_result_count = False
    # Facet counts are one COUNT per filter choice over the ledger: never on this list.
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 100
    actions = ["export_csv"]
    fieldsets = (
        (None, {"fields": ("id", "when", "persona", "surface", "model", "cost", "request_id")}),
        ("Price", {"fields": ("cost_source", "price_version")}),
        (
            "Usage",
            {
                "fields": (
                    "input_tokens",
                    "output_tokens",
                    "cache_read_tokens",
                    "cache_write_tokens",
                    "hold",
                    "source",
                    "actor",
                )
            },
        ),
        (
            "Idempotency",
            {"classes": ("collapse",), "fields": ("body_sha256", "first_response", "import_key")},
        ),
    )
    readonly_fields = ("when", "cost", "first_response")

    @admin.display(description="answer to the first request (replays get it again)")
    def first_response(self, obj: Charge) -> str:
        stored = obj.response
        if stored is None:
            return "-"
        return stored if isinstance(stored, str) else json.dumps(stored)

    @admin.display(description="time", ordering="ts")
    def when(self, obj: Charge) -> str:
        return obj.ts.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    @admin.display(description="agent", ordering="persona__agent_id")
    def agent(self, obj: Charge) -> str:
        return obj.persona.agent_id

    @admin.display(description="persona", ordering="persona__slug")
    def persona_link(self, obj: Charge) -> str:
        url = reverse("admin:personas_persona_change", args=[obj.persona_id])
        return format_html('<a href="{}">{}</a>', url, obj.persona.slug)

    @admin.display(description="cost", ordering="cost_nanos")
    def cost(self, obj: Charge) -> str:
        return usd(obj.cost_nanos)

    @admin.display(description="tokens in / out")
    def tokens(self, obj: Charge) -> str:
        if obj.input_tokens is None and obj.output_tokens is None:
            return ""
        parts = ("?" if n is None else f"{n:,}" for n in (obj.input_tokens, obj.output_tokens))
        return " / ".join(parts)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        title = "Ledger: every charge, newest first (read-only)"
        context = {"title": title, **(extra_context or {})}
        response = super().changelist_view(request, context)
        data = getattr(response, "context_data", None)
        if data is not None and "cl" in data:
            data["ledger_total"] = ledger_range.total(data["cl"])
        return response

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        # Exact, or a prefix: both ranges of the request_id index (the admin's own search
        # is icontains, a scan of the ledger).
        term = search_term.strip()
        if not term:
            return queryset, False
        return ledger_range.search(queryset, term), False

    @admin.action(description="Export selected charges as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Charge]) -> HttpResponse:
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response = StreamingHttpResponse(csv_rows(queryset), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="charges-{stamp}.csv"'
        return response  # type: ignore[return-value]
