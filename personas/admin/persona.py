"""A persona's page: its budget form, saved through ``write_budget``, and its details."""

from __future__ import annotations

import functools
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from hal0.errors import ApiError
from personas.admin.budget_form import (
    EMPTY_VS_ZERO,
    TIMEZONES,
    PersonaBudgetForm,
    fresh_persona,
)
from personas.admin.display import budget_diff, caps_summary, spec_changes
from personas.admin.view_only import ViewOnlyBudgetMixin
from personas.models import BudgetChange, Persona
from personas.services import write_budget


@admin.register(Persona)
class PersonaAdmin(ViewOnlyBudgetMixin, admin.ModelAdmin):
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

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Persona | None:
        obj = super().get_object(request, object_id, from_field)
        if obj is None or request.method != "GET":
            return obj  # a POST re-reads the file in the form's clean()
        try:
            # The page shows the file as it is now, and remembers that version's sha256.
            return fresh_persona(obj)
        except ApiError:
            return obj

    def save_model(self, request: HttpRequest, obj: Persona, form: Any, change: bool) -> None:
        """Write the budget through the one writer of persona files; never ``obj.save()``."""
        # Compared with the file as clean() read it: ``obj`` itself has been given the
        # form's hard_cap / warn_at / timezone by the ModelForm and is never saved.
        if form.spec is None or form.spec == form.current:
            request._hal0_budget = "unchanged"  # type: ignore[attr-defined]
            return
        try:
            write_budget(
                obj,
                form.spec,
                actor=f"user:{request.user.get_username()}",
                via="admin",
                expected_sha256=form.cleaned_data.get("file_sha256") or None,
            )
        except ApiError as exc:
            # The file changed between the form's check and the write (a race of
            # milliseconds), or became unreadable: nothing was written.
            request._hal0_budget = "failed"  # type: ignore[attr-defined]
            self.message_user(request, f"Nothing was saved: {exc.message}", messages.ERROR)
            return
        request._hal0_budget = "saved"  # type: ignore[attr-defined]
        request._hal0_budget_changes = spec_changes(form.current, form.spec)  # type: ignore[attr-defined]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return  # the persona has no related rows an operator edits

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if getattr(request, "_hal0_budget", None) != "saved":
            return None  # the audit trail (BudgetChange) has the real record
        return super().log_change(request, obj, message)

    def response_change(self, request: HttpRequest, obj: Persona) -> HttpResponse:
        outcome = getattr(request, "_hal0_budget", None)
        if outcome == "saved":
            # Before -> after, so a typo reads as one before anyone is blocked by it.
            changes = getattr(request, "_hal0_budget_changes", "")
            self.message_user(
                request,
                f"Saved: {obj}'s caps are in its file and in force now: {changes}.",
                messages.SUCCESS,
            )
        elif outcome == "unchanged":
            self.message_user(request, "Nothing to save: the caps are as they were.")
        # Back to the persona itself: its gauges show the effect of the new caps.
        return HttpResponseRedirect(request.path)

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
            # Read when the template shows it, i.e. after the form was checked: a hand
            # edit that the check just noticed (and audited) is on the page already.
            context["audit"] = functools.cache(
                lambda: [(c, budget_diff(c)) for c in self.recent_changes(obj)]
            )
            context["audit_url"] = (
                reverse("admin:personas_budgetchange_changelist") + f"?persona__id__exact={obj.pk}"
            )
            context["timezones"] = TIMEZONES
            # Saving comes back to this page anyway (response_change): one button.
            context["show_save_and_continue"] = False
            context.setdefault("title", "Caps and spend")
            context.setdefault("subtitle", f"{obj} · {obj.display_name or obj.slug}")
        return super().change_view(request, object_id, form_url, context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
