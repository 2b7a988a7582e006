"""Agents, each with its personas inline (read-only: agents come from the files)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from personas.admin.display import ReadOnlyAdmin, ReadOnlyInlineMixin, caps_summary
from personas.models import Agent, Persona


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
class AgentAdmin(ReadOnlyAdmin):
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
