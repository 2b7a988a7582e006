"""The stop switch in the admin: one button on a persona's page, then a confirmation
that says what pausing stops. Pause and resume are the same click; both go through
``budget_pause`` (the one writer of persona files, audited with the operator's name)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from budgets.services import budget_pause
from hal0.errors import ApiError
from personas.models import Persona


class PauseMixin:
    """For the persona admin: ``<id>/pause/`` shows the confirmation, POST flips the switch."""

    def get_urls(self) -> list[URLPattern]:
        admin: Any = self
        pause = path(
            "<path:object_id>/pause/",
            admin.admin_site.admin_view(self.pause_view),
            name="personas_persona_pause",
        )
        return [pause, *super().get_urls()]  # type: ignore[misc]

    def pause_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        admin: Any = self
        obj: Persona | None = admin.get_object(request, object_id)
        if obj is None:
            raise Http404("no such persona")
        if not admin.has_change_permission(request, obj):
            raise PermissionDenied
        back = reverse("admin:personas_persona_change", args=[obj.pk])
        if request.method == "POST":
            # The wanted state is in the form, so a double submit or a stale page never
            # flips the switch back by accident.
            wanted = request.POST.get("paused") == "1"
            try:
                budget_pause(
                    persona=obj,
                    paused=wanted,
                    actor=f"user:{request.user.get_username()}",
                    via="admin",
                )
            except ApiError as exc:
                admin.message_user(request, f"Nothing was changed: {exc.message}", messages.ERROR)
                return HttpResponseRedirect(back)
            if wanted:
                text = f"Paused: every check of {obj} is refused until you resume it."
            else:
                text = f"Resumed: checks of {obj} follow its caps again."
            admin.message_user(request, text, messages.WARNING if wanted else messages.SUCCESS)
            return HttpResponseRedirect(back)
        context = {
            **admin.admin_site.each_context(request),
            "title": f"Resume {obj}?" if obj.paused else f"Pause {obj}?",
            "subtitle": str(obj),
            "opts": admin.model._meta,
            "original": obj,
            "back": back,
            "runs_active": obj.runs.exclude(state="closed").count(),
        }
        return TemplateResponse(request, "admin/personas/persona/pause_confirm.html", context)
