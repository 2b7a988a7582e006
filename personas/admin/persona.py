"""A persona's page: its budget form, saved through ``write_budget``, and its details."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from hal0.errors import ApiError
from personas.admin.budget_form import EMPTY_VS_ZERO, PersonaBudgetForm, fresh_persona
from personas.admin.budget_page import BudgetPageAdmin
from personas.admin.display import caps_summary
from personas.models import BudgetChange, Persona
from personas.services import write_budget
from personas.toml_store import BudgetSpec


@admin.register(Persona)
class PersonaAdmin(BudgetPageAdmin):
    form = PersonaBudgetForm
    list_display = ("__str__", "display_name", "caps", "enforcement", "file_state")
    list_filter = (("agent", admin.RelatedOnlyFieldListFilter), "hard_cap", "paused")
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
            "Budget",
            {
                "classes": ("hal0-budget",),
                "description": format_html(
                    "Caps in US dollars and in tokens, written to the persona's TOML file when "
                    "you save "
                    "(comments and other tables are kept). <strong>{}</strong>",
                    EMPTY_VS_ZERO,
                ),
                "fields": (
                    "daily_usd",
                    "monthly_usd",
                    "lifetime_usd",
                    "per_call_max_usd",
                    "daily_tokens",
                    "monthly_tokens",
                    "lifetime_tokens",
                    "per_call_max_tokens",
                    "hard_cap",
                    "warn_at",
                    "timezone",
                    "file_sha256",
                ),
            },
        ),
        (
            # Folded: it is context, and open it would push Save away from the caps.
            "Persona details (from its file, read-only)",
            {
                "classes": ("collapse",),
                "fields": ("agent", "slug", "display_name", "summary", "file_state", "loaded_at"),
            },
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

    def page_subtitle(self, obj: Persona, object_id: str) -> str:
        return f"{obj} · {obj.display_name or obj.slug}"

    def file_shown(self, obj: Persona) -> str:
        return "its file"

    def fresh(self, obj: Persona) -> Persona:
        try:
            return fresh_persona(obj)
        except ApiError:
            return obj

    def write(self, obj: Persona, spec: BudgetSpec, *, actor: str, expected_sha256: str) -> None:
        # No sha256 (a form posted without one) writes without the conflict check.
        write_budget(obj, spec, actor=actor, via="admin", expected_sha256=expected_sha256 or None)

    def recent_changes(self, obj: Persona, limit: int = 20) -> list[BudgetChange]:
        return list(obj.budget_changes.order_by("-at", "-id")[:limit])

    def audit_url(self, obj: Persona) -> str:
        return reverse("admin:personas_budgetchange_changelist") + f"?persona__id__exact={obj.pk}"
