"""What a persona's, an agent's and the platform's pages share: the budget form saved
through the scope's one writer, the file read afresh when the page opens, the outcome
said after a save, and the page's own list of cap changes.

A page says only what differs: its title and subtitle, whose caps and which file they are
(for the message after a save), how its file is read and written, and its cap changes.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from hal0.errors import ApiError
from personas.admin.budget_form import TIMEZONES
from personas.admin.display import budget_diff, spec_changes
from personas.admin.view_only import ViewOnlyBudgetMixin
from personas.models import BudgetChange
from personas.toml_store import BudgetSpec


class BudgetPageAdmin(ViewOnlyBudgetMixin, admin.ModelAdmin):
    """A page whose first fieldset is the budget form of one scope's file."""

    page_title = "Caps and spend"

    def page_subtitle(self, obj: Any, object_id: str) -> str:
        """Below the title; ``object_id`` is the id as the page's URL spells it."""
        return str(obj)

    def owner(self, obj: Any) -> str:
        """Whose caps they are, in the message after a save."""
        return str(obj)

    def file_shown(self, obj: Any) -> str:
        """Where the caps are written, in the message after a save."""
        raise NotImplementedError

    def fresh(self, obj: Any) -> Any:
        """The row as its file is now."""
        raise NotImplementedError

    def write(self, obj: Any, spec: BudgetSpec, *, actor: str, expected_sha256: str) -> None:
        """Through the one writer of the scope's file; ``ApiError`` when nothing was written."""
        raise NotImplementedError

    def recent_changes(self, obj: Any, limit: int = 20) -> list[BudgetChange]:
        raise NotImplementedError

    def audit_url(self, obj: Any) -> str:
        raise NotImplementedError

    def page_context(self, obj: Any) -> dict[str, Any]:
        """What the page's template needs besides the shared context."""
        return {}

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Any:
        obj = super().get_object(request, object_id, from_field)
        if obj is None or request.method != "GET":
            return obj  # a POST re-reads the file in the form's clean()
        # The page shows the file as it is now, and remembers that version's sha256 for
        # the conflict check.
        return self.fresh(obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Write through the one writer of the scope's file; never ``obj.save()``."""
        # Compared with the file as clean() read it: ``obj`` itself has been given the
        # form's values by the ModelForm and is never saved.
        if form.spec is None or form.spec == form.current:
            request._hal0_budget = "unchanged"  # type: ignore[attr-defined]
            return
        try:
            self.write(
                obj,
                form.spec,
                actor=f"user:{request.user.get_username()}",
                expected_sha256=form.cleaned_data.get("file_sha256") or "",
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
        return  # inlines, where a page has any, are read-only

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> Any:
        # The read-only inlines were never saved; the budget form is the change.
        return super().construct_change_message(request, form, [], add)

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if getattr(request, "_hal0_budget", None) != "saved":
            return None  # the audit trail (BudgetChange) has the real record
        return super().log_change(request, obj, message)

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        outcome = getattr(request, "_hal0_budget", None)
        if outcome == "saved":
            # Before -> after, so a typo reads as one before anyone is blocked by it.
            changes = getattr(request, "_hal0_budget_changes", "")
            self.message_user(
                request,
                f"Saved: {self.owner(obj)}'s caps are in {self.file_shown(obj)} and in force "
                f"now: {changes}.",
                messages.SUCCESS,
            )
        elif outcome == "unchanged":
            self.message_user(request, "Nothing to save: the caps are as they were.")
        # Back to the page itself: its gauges show the effect of the new caps.
        return HttpResponseRedirect(request.path)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        context = dict(extra_context or {})
        # The URL spells the id escaped (``my_agent`` is ``my_5Fagent``), as the admin's
        # own changeform_view unescapes it before its lookup.
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            context.setdefault("title", self.page_title)
            context.setdefault("subtitle", self.page_subtitle(obj, object_id))
            # Read when the template shows it, i.e. after the form was checked: a hand
            # edit that the check just noticed (and audited) is on the page already.
            context["audit"] = functools.cache(
                lambda: [(c, budget_diff(c)) for c in self.recent_changes(obj)]
            )
            context["audit_url"] = self.audit_url(obj)
            context["timezones"] = TIMEZONES
            # Saving comes back to this page anyway (response_change): one button.
            context["show_save_and_continue"] = False
            context.update(self.page_context(obj))
        return super().change_view(request, object_id, form_url, context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
