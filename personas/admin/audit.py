"""The cap-change audit trail (``BudgetChange``), read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from personas.admin.display import ReadOnlyAdmin, budget_diff
from personas.models import BudgetChange


@admin.register(BudgetChange)
class BudgetChangeAdmin(ReadOnlyAdmin):
    """Every change of a persona's caps, from the admin, the API, the CLI or a hand edit."""

    list_display = ("at", "persona_page", "actor", "via", "changes")
    list_filter = ("scope", "via", ("agent", admin.RelatedOnlyFieldListFilter), "at")
    list_select_related = ("persona",)
    search_fields = ("actor", "persona__slug", "agent__id")
    date_hierarchy = "at"
    fields = ("at", "scope", "persona", "agent", "actor", "via", "changes", "before", "after")
    readonly_fields = fields

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        title = "Cap changes: who changed which cap, newest first (read-only)"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    @admin.display(description="whose caps", ordering="persona")
    def persona_page(self, obj: BudgetChange) -> str:
        if obj.persona_id is not None:
            url = reverse("admin:personas_persona_change", args=[obj.persona_id])
        elif obj.agent_id is not None:
            url = reverse("admin:personas_agent_change", args=[obj.agent_id])
        else:
            url = reverse("admin:personas_platform_changelist")  # the platform's one page
        return format_html('<a href="{}">{}</a>', url, obj.owner)

    @admin.display(description="before → after")
    def changes(self, obj: BudgetChange) -> SafeString:
        return budget_diff(obj)
