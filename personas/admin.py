"""Admin for agents, personas and the cap-change audit trail.

Persona files are the truth: every persona field is read-only here except the budget,
which is saved through ``personas.services.write_budget`` (the one writer of persona
files). Spend (gauges, charts, columns) is added by ``budgets.admin``, which subclasses
these classes: ``personas`` never imports ``budgets``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from hal0.money import to_decimal
from personas.models import Agent, BudgetChange, Persona

CAP_FIELDS = (
    ("daily_cap_nanos", "daily"),
    ("monthly_cap_nanos", "monthly"),
    ("lifetime_cap_nanos", "lifetime"),
    ("per_call_cap_nanos", "per call"),
)


def usd_text(nanos: int | None) -> str:
    if nanos is None:
        return "no cap"
    value = to_decimal(nanos)
    # Cents when the amount has no more; every digit when it has (never rounded away).
    return f"${value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"${value:,}"


def caps_summary(persona: Persona) -> str:
    caps = [
        f"{label} {usd_text(getattr(persona, attr))}"
        for attr, label in CAP_FIELDS
        if getattr(persona, attr) is not None
    ]
    return " · ".join(caps) if caps else "no caps"


class ReadOnlyInlineMixin:
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PersonaInline(ReadOnlyInlineMixin, admin.TabularInline):
    """The agent's personas, read-only, each linking to its own page (caps are set there)."""

    model = Persona
    fields = ("persona_link", "display_name", "caps", "enforcement", "file_state")
    readonly_fields = fields
    verbose_name_plural = "personas (open one to see its spend or change its caps)"

    @admin.display(description="persona")
    def persona_link(self, obj: Persona) -> str:
        url = reverse("admin:personas_persona_change", args=[obj.pk])
        return format_html('<a href="{}"><strong>{}</strong></a>', url, obj.slug)

    @admin.display(description="caps")
    def caps(self, obj: Persona) -> str:
        return caps_summary(obj)

    @admin.display(description="enforcement")
    def enforcement(self, obj: Persona) -> str:
        return "hard cap" if obj.hard_cap else "warn only"

    @admin.display(description="file")
    def file_state(self, obj: Persona) -> str:
        return "malformed: last good caps in force" if obj.load_error else "ok"


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    """Agents come from ``manage.py reprovision``; the admin shows them and their personas."""

    list_display = ("id", "display_name", "persona_count")
    search_fields = ("id", "display_name")
    fields = ("id", "display_name", "created_at", "updated_at")
    readonly_fields = fields
    inlines = [PersonaInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agent]:
        return super().get_queryset(request).annotate(persona_count=Count("personas"))

    @admin.display(description="personas", ordering="persona_count")
    def persona_count(self, obj: Any) -> int:
        return int(obj.persona_count)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _json_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def budget_diff(change: BudgetChange) -> SafeString:
    """The keys that changed, ``key: old → new``; a first record lists what was set."""
    before = change.before or {}
    after = change.after or {}
    keys = sorted(set(before) | set(after))
    rows = [
        (key, _json_value(before.get(key)), _json_value(after.get(key)))
        for key in keys
        if before.get(key) != after.get(key)
    ]
    if not rows:
        return format_html('<span class="hal0-diff">{}</span>', "no change")
    return format_html(
        '<span class="hal0-diff">{}</span>',
        format_html_join(
            "<br>",
            '{}: <span class="old">{}</span> → <span class="new">{}</span>',
            rows,
        ),
    )


@admin.register(BudgetChange)
class BudgetChangeAdmin(admin.ModelAdmin):
    """Every change of a persona's caps, from the admin, the API, the CLI or a hand edit."""

    list_display = ("at", "persona", "actor", "via", "changes")
    list_filter = ("via", ("persona__agent", admin.RelatedOnlyFieldListFilter), "at")
    list_select_related = ("persona",)
    search_fields = ("actor", "persona__slug", "persona__agent__id")
    date_hierarchy = "at"
    fields = ("at", "persona", "actor", "via", "changes", "before", "after")
    readonly_fields = fields

    @admin.display(description="before → after")
    def changes(self, obj: BudgetChange) -> SafeString:
        return budget_diff(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    list_display = ("__str__", "display_name", "caps", "enforcement", "file_state")
    list_filter = (("agent", admin.RelatedOnlyFieldListFilter), "hard_cap")
    list_select_related = ("agent",)
    search_fields = ("slug", "display_name", "agent__id")
    readonly_fields = (
        "agent",
        "slug",
        "display_name",
        "summary",
        "caps",
        "enforcement",
        "file_state",
        "loaded_at",
    )
    fieldsets = (
        (
            "Persona (from its file, read-only)",
            {"fields": ("agent", "slug", "display_name", "summary", "file_state", "loaded_at")},
        ),
    )

    @admin.display(description="caps")
    def caps(self, obj: Persona) -> str:
        return caps_summary(obj)

    @admin.display(description="enforcement", ordering="hard_cap")
    def enforcement(self, obj: Persona) -> str:
        return "hard cap" if obj.hard_cap else "warn only"

    @admin.display(description="file")
    def file_state(self, obj: Persona) -> str:
        if obj.load_error:
            return format_html(
                '<span class="hal0-pill exceeded">malformed</span> {}', obj.load_error
            )
        return "ok"

    def recent_changes(self, obj: Persona, limit: int = 20) -> list[BudgetChange]:
        return list(obj.budget_changes.order_by("-at", "-id")[:limit])

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        context = dict(extra_context or {})
        obj = self.get_object(request, object_id)
        if obj is not None:
            changes = self.recent_changes(obj)
            context["audit"] = [(c, budget_diff(c)) for c in changes]
            context["audit_url"] = (
                reverse("admin:personas_budgetchange_changelist") + f"?persona__id__exact={obj.pk}"
            )
        return super().change_view(request, object_id, form_url, context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
