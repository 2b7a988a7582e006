"""Runs in the admin: the list with gauges, one run's report with its checkpoints, and the
two things an operator does to a run: extend it and close it (through the run services,
audited with the operator's name). The rows themselves are never edited here."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from budgets.admin.base import ReadOnlyAdmin
from budgets.models import Run
from budgets.runs.services import RunBudget, gauges, run_close, run_extend
from hal0.errors import ApiError
from hal0.money import MoneyError, parse_usd


def may_steer_runs(request: HttpRequest) -> bool:
    """Extending and closing a run is changing a budget: the persona change permission."""
    return bool(request.user.has_perm("personas.change_persona"))


def actor_of(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"


class ExtendForm(forms.Form):
    """Additions to a run's budget; empty = add nothing of that kind, 0 is refused."""

    usd = forms.CharField(label="Add USD", required=False)
    tokens = forms.IntegerField(label="Add tokens", required=False, min_value=1)
    seconds = forms.IntegerField(label="Add seconds", required=False, min_value=1)

    def clean_usd(self) -> int | None:
        text = (self.cleaned_data.get("usd") or "").strip().removeprefix("$").strip()
        if not text:
            return None
        try:
            nanos = parse_usd(Decimal(text.replace(",", "")), field="USD")
        except (InvalidOperation, MoneyError) as exc:
            raise forms.ValidationError("Enter an amount in USD such as 2 or 0.5.") from exc
        if nanos == 0:
            raise forms.ValidationError("Add more than 0 USD, or leave it empty.")
        return nanos

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors and all(cleaned.get(k) is None for k in ("usd", "tokens", "seconds")):
            raise forms.ValidationError("Say what to add: USD, tokens and/or seconds.")
        return cleaned

    def budget(self) -> RunBudget:
        data = self.cleaned_data
        return RunBudget(data.get("usd"), data.get("tokens"), data.get("seconds"))


def gauges_html(run: Run) -> str:
    return render_to_string(
        "admin/budgets/run/_gauges.html", {"gauges": gauges(run, timezone.now())}
    )


def state_pill(run: Run) -> str:
    return format_html(
        '<span class="hal0-pill hal0-run-{}">{}</span>', run.state, run.get_state_display()
    )


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ("run_id", "persona", "label", "state_pill", "usage", "created_at", "closed_at")
    list_filter = ("state", "persona__agent")
    list_select_related = ("persona",)
    search_fields = ("=run_id", "label")
    show_facets = admin.ShowFacets.NEVER
    fields = ("run_id", "persona", "label", "state", "hard_cap", "created_at", "closed_at")
    readonly_fields = fields

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        title = "Runs: tasks with a budget of their own (open one to extend or close it)"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    @admin.display(description="state", ordering="state")
    def state_pill(self, obj: Run) -> str:
        return state_pill(obj)

    @admin.display(description="used of budget (USD · tokens · time)")
    def usage(self, obj: Run) -> str:
        return gauges_html(obj)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("<path:object_id>/extend/", view(self.extend_view), name="budgets_run_extend"),
            path("<path:object_id>/close/", view(self.close_view), name="budgets_run_close"),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        obj = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if obj is not None:
            context.update(
                title=f"Run {obj.run_id}",
                subtitle=f"{obj.persona} · {obj.label or 'no label'}",
                run=obj,
                gauges=gauges(obj, timezone.now()),
                checkpoints=list(obj.checkpoints.all()),
                extend_form=ExtendForm(),
                may_steer=may_steer_runs(request) and obj.state != Run.State.CLOSED,
            )
        return super().change_view(request, object_id, form_url, context)

    def _run(self, request: HttpRequest, object_id: str) -> Run:
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404("no such run")
        if not may_steer_runs(request):
            raise PermissionDenied
        return obj

    def extend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._extend)(request, object_id)

    def _extend(self, request: HttpRequest, object_id: str) -> HttpResponse:
        run = self._run(request, object_id)
        back = reverse("admin:budgets_run_change", args=[run.pk])
        form = ExtendForm(request.POST)
        if not form.is_valid():
            errors = "; ".join(str(e) for errs in form.errors.values() for e in errs)
            self.message_user(request, f"Nothing was added: {errors}", messages.ERROR)
            return HttpResponseRedirect(back)
        try:
            after = run_extend(
                persona=run.persona, run_id=run.run_id, added=form.budget(), actor=actor_of(request)
            )
        except ApiError as exc:
            self.message_user(request, f"Nothing was added: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(back)
        self.message_user(
            request,
            f"Extended run {run.run_id}: it is {after['state'].replace('_', ' ')} now.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(back)

    def close_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return require_POST(self._close)(request, object_id)

    def _close(self, request: HttpRequest, object_id: str) -> HttpResponse:
        run = self._run(request, object_id)
        run_close(persona=run.persona, run_id=run.run_id, actor=actor_of(request))
        self.message_user(
            request,
            f"Closed run {run.run_id}: checks naming it are refused; its charges still count.",
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:budgets_run_change", args=[run.pk]))


def persona_runs(persona: Any, limit: int = 10) -> list[tuple[Run, list[Any]]]:
    """A persona's latest runs with their gauges, for the persona's page."""
    now = timezone.now()
    runs = Run.objects.filter(persona=persona).order_by("-id")[:limit]
    return [(run, gauges(run, now)) for run in runs]
