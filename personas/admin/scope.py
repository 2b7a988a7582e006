"""The agent's and the platform's budget pages: the persona page's form, notes and conflict
detection, saved through ``write_scope_budget`` (the one writer of ``agent.toml`` and
``platform.toml``), audited with the operator's name and ``via="admin"``.

Spend (gauges, the Spend page's rows, the banner) is added by ``budgets.admin``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from personas.admin.budget_form import (
    BUDGET_FIELDS,
    EMPTY_VS_ZERO,
    AgentBudgetForm,
    PlatformBudgetForm,
    scope_of,
)
from personas.admin.budget_page import BudgetPageAdmin
from personas.admin.view_only import ViewOnlyBudgetMixin
from personas.models import Agent, BudgetChange, Platform
from personas.services.scopes import PLATFORM, sync_scope, write_scope_budget
from personas.toml_store import BudgetSpec


def budget_fieldset(file_shown: str, over: str) -> Any:
    return (
        "Budget",
        {
            "classes": ("hal0-budget",),
            "description": format_html(
                "Caps over {} together, in US dollars and in tokens, written to "
                "<code>{}</code> when you save (comments and other tables are kept). "
                "<strong>{}</strong>",
                over,
                file_shown,
                EMPTY_VS_ZERO,
            ),
            "fields": (*BUDGET_FIELDS[:-1], "paused", BUDGET_FIELDS[-1]),
        },
    )


class ScopeBudgetAdmin(BudgetPageAdmin):
    """An agent's or the platform's page: its budget form and its cap changes."""

    class Media:
        # Keeps the "no cap" / "a cap of zero" note beside each cap field current.
        js = ("hal0/budget-form.js",)

    # The persona page's read-only lines, plus the stop switch (a persona's is a button).
    VIEW_ONLY_BUDGET = (*ViewOnlyBudgetMixin.VIEW_ONLY_BUDGET, "stop_switch")

    @admin.display(description="Enforcement")
    def enforcement(self, obj: Any) -> str:
        return "hard cap" if obj.hard_cap else "warn only"

    @admin.display(description="Stop switch")
    def stop_switch(self, obj: Any) -> str:
        return "paused: every check is refused" if obj.paused else "off"

    def file_state(self, obj: Agent | Platform) -> str:
        if obj.load_error:
            return format_html(
                '<span class="hal0-pill exceeded">malformed</span> {}', obj.load_error
            )
        if not obj.file_signature:
            return f"no {scope_of(obj).shown}: no caps at this scope"
        return "ok"

    file_state.short_description = "file"  # type: ignore[attr-defined]

    def file_shown(self, obj: Agent | Platform) -> str:
        return scope_of(obj).shown

    def fresh(self, obj: Agent | Platform) -> Agent | Platform:
        # A hand edit is taken in (and audited) on the way.
        return sync_scope(scope_of(obj))

    def write(
        self, obj: Agent | Platform, spec: BudgetSpec, *, actor: str, expected_sha256: str
    ) -> None:
        # An empty sha256 is the page's "there was no file": one that appeared since is a
        # conflict.
        write_scope_budget(
            scope_of(obj),
            spec,
            actor=actor,
            via=BudgetChange.Via.ADMIN,
            expected_sha256=expected_sha256,
        )

    def page_context(self, obj: Agent | Platform) -> dict[str, Any]:
        return {"scope_file": scope_of(obj).shown}


@admin.register(Platform)
class PlatformAdmin(ScopeBudgetAdmin):
    """The platform's page: caps over every agent and persona together."""

    form = PlatformBudgetForm
    readonly_fields = ("file_state", "loaded_at")
    fieldsets = (
        budget_fieldset("platform.toml", "every agent and persona"),
        ("File", {"fields": ("file_state", "loaded_at")}),
    )
    page_title = "Platform caps and spend"

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        # One platform: its list is its page.
        row = sync_scope(PLATFORM)
        return HttpResponseRedirect(reverse("admin:personas_platform_change", args=[row.pk]))

    def page_subtitle(self, obj: Any, object_id: str) -> str:
        return "platform"

    def owner(self, obj: Any) -> str:
        return "the platform"

    def recent_changes(self, obj: Any, limit: int = 20) -> list[BudgetChange]:
        changes = BudgetChange.objects.filter(scope=BudgetChange.Scope.PLATFORM)
        return list(changes.order_by("-at", "-id")[:limit])

    def audit_url(self, obj: Any) -> str:
        return reverse("admin:personas_budgetchange_changelist") + "?scope__exact=platform"


__all__ = ["AgentBudgetForm", "PlatformAdmin", "ScopeBudgetAdmin", "budget_fieldset"]
