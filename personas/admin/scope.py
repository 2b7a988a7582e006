"""The agent's and the platform's budget pages: the persona page's form, notes and conflict
detection, saved through ``write_scope_budget`` (the one writer of ``agent.toml`` and
``platform.toml``), audited with the operator's name and ``via="admin"``.

Spend (gauges, the Spend page's rows, the banner) is added by ``budgets.admin``.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from hal0.errors import ApiError
from personas.admin.budget_form import (
    BUDGET_FIELDS,
    EMPTY_VS_ZERO,
    TIMEZONES,
    AgentBudgetForm,
    PlatformBudgetForm,
    scope_of,
)
from personas.admin.display import budget_diff, spec_changes
from personas.admin.view_only import ViewOnlyBudgetMixin
from personas.models import Agent, BudgetChange, Platform
from personas.services.scopes import PLATFORM, sync_scope, write_scope_budget


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


class ScopeBudgetAdmin(ViewOnlyBudgetMixin, admin.ModelAdmin):
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

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None or request.method != "GET":
            return obj  # a POST re-reads the file in the form's clean()
        # The page shows the file as it is now (a hand edit is taken in and audited), and
        # remembers that version's sha256 for the conflict check.
        return sync_scope(scope_of(obj))

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Write through the one writer of the scope's file; never ``obj.save()``."""
        if form.spec is None or form.spec == form.current:
            request._hal0_budget = "unchanged"  # type: ignore[attr-defined]
            return
        try:
            write_scope_budget(
                scope_of(obj),
                form.spec,
                actor=f"user:{request.user.get_username()}",
                via=BudgetChange.Via.ADMIN,
                expected_sha256=form.cleaned_data.get("file_sha256") or "",
            )
        except ApiError as exc:
            # The file changed between the form's check and the write, or became
            # unreadable: nothing was written.
            request._hal0_budget = "failed"  # type: ignore[attr-defined]
            self.message_user(request, f"Nothing was saved: {exc.message}", messages.ERROR)
            return
        request._hal0_budget = "saved"  # type: ignore[attr-defined]
        request._hal0_budget_changes = spec_changes(form.current, form.spec)  # type: ignore[attr-defined]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return  # inlines here are read-only

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> Any:
        # The read-only inlines were never saved; the budget form is the change.
        return super().construct_change_message(request, form, [], add)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if getattr(request, "_hal0_budget", None) != "saved":
            return None  # the audit trail (BudgetChange) has the real record
        return super().log_change(request, obj, message)

    def owner(self, obj: Any) -> str:
        return str(obj)

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        outcome = getattr(request, "_hal0_budget", None)
        if outcome == "saved":
            changes = getattr(request, "_hal0_budget_changes", "")
            self.message_user(
                request,
                f"Saved: {self.owner(obj)}'s caps are in {scope_of(obj).shown} and in force "
                f"now: {changes}.",
                messages.SUCCESS,
            )
        elif outcome == "unchanged":
            self.message_user(request, "Nothing to save: the caps are as they were.")
        return HttpResponseRedirect(request.path)

    def recent_changes(self, obj: Any, limit: int = 20) -> list[BudgetChange]:
        raise NotImplementedError

    def audit_url(self, obj: Any) -> str:
        raise NotImplementedError

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
            # Read when the template shows it: after the form's check took in a hand edit.
            context["audit"] = functools.cache(
                lambda: [(c, budget_diff(c)) for c in self.recent_changes(obj)]
            )
            context["audit_url"] = self.audit_url(obj)
            context["timezones"] = TIMEZONES
            context["scope_file"] = scope_of(obj).shown
            context["show_save_and_continue"] = False
        return super().change_view(request, object_id, form_url, context)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Platform)
class PlatformAdmin(ScopeBudgetAdmin):
    """The platform's page: caps over every agent and persona together."""

    form = PlatformBudgetForm
    readonly_fields = ("file_state", "loaded_at")
    fieldsets = (
        budget_fieldset("platform.toml", "every agent and persona"),
        ("File", {"fields": ("file_state", "loaded_at")}),
    )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        # One platform: its list is its page.
        row = sync_scope(PLATFORM)
        return HttpResponseRedirect(reverse("admin:personas_platform_change", args=[row.pk]))

    def owner(self, obj: Any) -> str:
        return "the platform"

    def recent_changes(self, obj: Any, limit: int = 20) -> list[BudgetChange]:
        changes = BudgetChange.objects.filter(scope=BudgetChange.Scope.PLATFORM)
        return list(changes.order_by("-at", "-id")[:limit])

    def audit_url(self, obj: Any) -> str:
        return reverse("admin:personas_budgetchange_changelist") + "?scope__exact=platform"

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        context = {"title": "Platform caps and spend", "subtitle": "platform"}
        context.update(extra_context or {})
        return super().change_view(request, object_id, form_url, context)


__all__ = ["AgentBudgetForm", "PlatformAdmin", "ScopeBudgetAdmin", "budget_fieldset"]
