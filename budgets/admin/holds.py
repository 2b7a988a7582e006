"""Holds: estimates reserved until they are charged, released or expire (read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html

from budgets.admin.base import CappedCountPaginator, ReadOnlyAdmin
from budgets.models import Hold
from budgets.templatetags.spend import usd


class HoldStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s, s) for s in ("active", "expired", "settled", "released")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        value = self.value()
        if value == "active":
            return queryset.filter(state=Hold.State.ACTIVE, expires_at__gt=now)
        if value == "expired":
            return queryset.filter(state=Hold.State.ACTIVE, expires_at__lte=now)
        if value in (Hold.State.SETTLED, Hold.State.RELEASED):
            return queryset.filter(state=value)
        return queryset


def hold_status(hold: Hold, now: Any = None) -> str:
    """active | expired | settled | released: an expired hold keeps state "active"."""
    if hold.state == Hold.State.ACTIVE and hold.expires_at <= (now or timezone.now()):
        return "expired"
    return str(hold.state)


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "persona",
        # The client's id of the call that took it (its charge carries the same one).
        "request_id",
        "amount",
        "status",
        "created_at",
        "expires_at",
        "resolved_at",
        "actor",
    )
    list_filter = (HoldStatusFilter, "persona__agent")
    list_select_related = ("persona",)
    search_fields = ("=id",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    date_hierarchy = "created_at"
    calendar_first_by = "created_at"  # holds' ids are random; created_at has an index
    fields = list_display
    readonly_fields = ("amount", "status")

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        title = "Holds: estimates reserved by clients until they charge (read-only)"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    @admin.display(description="amount", ordering="amount_nanos")
    def amount(self, obj: Hold) -> str:
        return usd(obj.amount_nanos)

    @admin.display(description="status")
    def status(self, obj: Hold) -> str:
        status = hold_status(obj)
        return format_html('<span class="hal0-pill hal0-hold-{}">{}</span>', status, status)
