"""Agents, each with its budget (``agent.toml``) and its personas inline (read-only:
agents and personas come from the files)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from personas.admin.budget_form import AgentBudgetForm
from personas.admin.display import ReadOnlyInlineMixin, caps_summary
from personas.admin.scope import ScopeBudgetAdmin, budget_fieldset
from personas.models import Agent, BudgetChange, Persona


class PersonaInline(ReadOnlyInlineMixin, admin.TabularInline):
    """The agent's personas, read-only, each linking to its own page (caps are set there)."""

    model = Persona
    fields = ("persona_link", "display_name", "caps", "enforcement", "file_state")
    readonly_fields = fields
    verbose_name_plural = "personas (open one to see its spend or change its caps)"

    @admin.display(description="persona")
    def persona_link(self, obj: Persona) -> str:
        if obj.pk is None:
            return ""
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
class AgentAdmin(ScopeBudgetAdmin):
    """Agents come from ``manage.py reprovision``; their page edits the agent-wide caps
    (``agents/<a>/agent.toml``) and lists the personas."""

    form = AgentBudgetForm
    list_display = ("id", "display_name", "persona_count")
    search_fields = ("id", "display_name")
    readonly_fields = ("id", "display_name", "file_state", "created_at", "loaded_at")
    fieldsets = (
        budget_fieldset("agents/<agent>/agent.toml", "all of this agent's personas"),
        (
            "Agent details (from its file, read-only)",
            {
                "classes": ("collapse",),
                "fields": ("id", "display_name", "file_state", "created_at", "loaded_at"),
            },
        ),
    )
    inlines = [PersonaInline]
    page_title = "Agent caps and spend"

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not self.has_change_permission(request, obj):
            return fieldsets
        shown = f"agents/{obj.pk}/agent.toml"
        return [budget_fieldset(shown, "all of this agent's personas"), *fieldsets[1:]]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agent]:
        return super().get_queryset(request).annotate(persona_count=Count("personas"))

    @admin.display(description="personas", ordering="persona_count")
    def persona_count(self, obj: Any) -> int:
        return int(obj.persona_count)

    def page_subtitle(self, obj: Any, object_id: str) -> str:
        return f"agent {obj.pk}"

    def owner(self, obj: Any) -> str:
        return f"agent {obj.pk}"

    def recent_changes(self, obj: Any, limit: int = 20) -> list[BudgetChange]:
        changes = BudgetChange.objects.filter(scope=BudgetChange.Scope.AGENT, agent_id=obj.pk)
        return list(changes.order_by("-at", "-id")[:limit])

    def audit_url(self, obj: Any) -> str:
        return (
            reverse("admin:personas_budgetchange_changelist")
            + f"?scope__exact=agent&agent__id__exact={obj.pk}"
        )
