"""Agents, the platform and personas with their spend. personas.admin registers them
without spend (personas may not import budgets); here they are re-registered with it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ORDER_VAR, ChangeList
from django.db.models import BigIntegerField, Case, QuerySet, Value, When
from django.db.models.functions import Concat
from django.http import HttpRequest

from budgets.admin.pause import PauseMixin
from budgets.admin.runs import persona_runs
from budgets.admin.views import persona_spend_context
from budgets.reports import scopes as scope_reports
from budgets.reports import selectors
from budgets.templatetags.spend import cents, status_pill_html, usd
from personas.admin import AgentAdmin, PersonaAdmin, PersonaInline, PlatformAdmin, scope_of
from personas.models import Agent, Persona, Platform


class _SpendChangeList(ChangeList):
    """Reads the spend of the page's rows in one batch once the page is known (no N+1)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        attach = getattr(self.model_admin, "attach_spend", None)
        if attach is not None:
            attach(list(self.result_list))


# What the agent page's persona rows and the persona list show after the persona itself.
PERSONA_COLUMNS = (
    "display_name",
    "status",
    "today",
    "this_month",
    "caps",
    "enforcement",
    "file_state",
)


class SpendPersonaInline(PersonaInline):
    """The agent's personas with their status and spend, read from the window counters of
    all of them at once (two queries, whatever the number of personas)."""

    columns = ("persona_link", *PERSONA_COLUMNS)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.columns

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.columns

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Inline instances are made per request, so this never outlives one page.
        self._views: dict[int, selectors.PersonaSpend] = {}

    def _view(self, obj: Persona) -> selectors.PersonaSpend:
        if obj.pk not in self._views:
            personas = list(Persona.objects.filter(agent_id=obj.agent_id))
            self._views = {v.persona.pk: v for v in selectors.spend_views(personas)}
        return self._views[obj.pk]

    # A row without a persona (a post that left out a row's id) shows nothing, not a 500.
    @admin.display(description="status")
    def status(self, obj: Persona) -> str:
        if obj.pk is None:
            return ""
        view = self._view(obj)
        return status_pill_html(view)

    @admin.display(description="spent today")
    def today(self, obj: Persona) -> str:
        return "" if obj.pk is None else usd(self._view(obj).window("daily").spent_nanos)

    @admin.display(description="spent this month")
    def this_month(self, obj: Persona) -> str:
        return "" if obj.pk is None else usd(self._view(obj).window("monthly").spent_nanos)


class SpendAgentAdmin(AgentAdmin):
    list_display: Any = ("id", "display_name", "persona_count", "today", "this_month")
    inlines = [SpendPersonaInline]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        context = {"title": "Agents: open one to see its personas", **(extra_context or {})}
        return super().changelist_view(request, context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        context = {"title": "Agent caps and spend", **(extra_context or {})}
        return _with_scope_spend(
            self, request, super().change_view(request, object_id, form_url, context), object_id
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return _SpendChangeList

    def attach_spend(self, agents: list[Agent]) -> None:
        spent = selectors.agent_spend([a.pk for a in agents])
        for agent in agents:
            agent._spent = spent[agent.pk]  # type: ignore[attr-defined]

    @admin.display(description="spent today")
    def today(self, obj: Agent) -> str:
        return usd(obj._spent.day)  # type: ignore[attr-defined]

    @admin.display(description="spent this month")
    def this_month(self, obj: Agent) -> str:
        return usd(obj._spent.month)  # type: ignore[attr-defined]


def _with_scope_spend(admin_: Any, request: HttpRequest, response: Any, object_id: str) -> Any:
    """The scope's gauges, read after the form was checked (a hand edit that the check
    just took in is in the row by now, so the gauges show the caps the file has)."""
    context = getattr(response, "context_data", None)
    if context is not None:
        obj = admin_.get_object(request, object_id)
        if obj is not None:
            context["scope_spend"] = scope_reports.scope_spend(scope_of(obj))
            context["original"] = obj
    return response


class SpendPlatformAdmin(PlatformAdmin):
    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        response = super().change_view(request, object_id, form_url, extra_context)
        return _with_scope_spend(self, request, response, object_id)


STATUS_CHOICES = (
    ("exceeded", "exceeded"),
    ("warn", "warn"),
    ("ok", "ok"),
    ("none", "no window cap"),
    ("paused", "paused"),
)


def _statuses(personas: list[Persona]) -> dict[int, selectors.PersonaSpend]:
    return {v.persona.pk: v for v in selectors.spend_views(personas)}


def _shown_status(view: selectors.PersonaSpend) -> str:
    """What the pill shows: paused outranks the rules' status (never re-derived here)."""
    return "paused" if view.persona.paused else view.status


class PersonaStatusFilter(admin.SimpleListFilter):
    """The status of the persona's pill: the rules module's worst window status, or paused.
    Read from the window counters of the listed personas (two queries, whatever their
    number), so it filters without a column to query."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> Any:
        return STATUS_CHOICES

    def queryset(self, request: HttpRequest, queryset: QuerySet[Persona]) -> QuerySet[Persona]:
        value = self.value()
        if value not in dict(STATUS_CHOICES):
            return queryset
        if value == "paused":
            return queryset.filter(paused=True)
        views = _statuses(list(queryset.filter(paused=False)))
        return queryset.filter(pk__in=[pk for pk, v in views.items() if v.status == value])


# Sorting by status or spend: the values are computed per persona, so the list's query is
# ordered by a CASE over the personas' keys. Fine for the thousands of personas an
# operator runs; past SORTABLE_LIMIT these columns sort by name instead.
SORTABLE_LIMIT = 5000
STATUS_RANK = {**selectors.STATUS_ORDER, "paused": 4}


def _by_pk(values: dict[int, int], field: Any) -> Any:
    if not values:
        return Value(0, output_field=field)
    whens = [When(pk=pk, then=Value(v)) for pk, v in values.items()]
    return Case(*whens, default=Value(0), output_field=field)


class SpendPersonaAdmin(PauseMixin, PersonaAdmin):
    class Media:
        # Keeps the "no cap" / "a cap of zero" note beside each cap field current.
        js = ("hal0/budget-form.js",)

    list_display: Any = ("persona", *PERSONA_COLUMNS)
    ordering = ("agent_id", "slug")

    @admin.display(description="persona", ordering=Concat("agent_id", Value("/"), "slug"))
    def persona(self, obj: Persona) -> str:
        return str(obj)

    def get_list_filter(self, request: HttpRequest) -> Any:
        return (PersonaStatusFilter, *super().get_list_filter(request))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Persona]:
        queryset = super().get_queryset(request)
        match = getattr(request, "resolver_match", None)
        if match is None or match.url_name != "personas_persona_changelist":
            return queryset
        if ORDER_VAR not in request.GET:
            return queryset
        personas = list(Persona.objects.all()[: SORTABLE_LIMIT + 1])
        if len(personas) > SORTABLE_LIMIT:
            zero = Value(0, output_field=BigIntegerField())
            return queryset.annotate(_status_rank=zero, _today=zero, _month=zero)
        views = _statuses(personas)
        big: Any = BigIntegerField()
        return queryset.annotate(
            _status_rank=_by_pk(
                {pk: STATUS_RANK[_shown_status(v)] for pk, v in views.items()}, big
            ),
            _today=_by_pk({pk: v.window("daily").spent_nanos for pk, v in views.items()}, big),
            _month=_by_pk({pk: v.window("monthly").spent_nanos for pk, v in views.items()}, big),
        )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return _SpendChangeList

    def attach_spend(self, personas: list[Persona]) -> None:
        for view in selectors.spend_views(personas):
            view.persona._spend = view  # type: ignore[attr-defined]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        title = "Personas: open one to see its spend or change its caps"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    @admin.display(description="status", ordering="_status_rank")
    def status(self, obj: Persona) -> str:
        view = obj._spend  # type: ignore[attr-defined]
        return status_pill_html(view)

    @admin.display(description="spent today", ordering="_today")
    def today(self, obj: Persona) -> str:
        w = obj._spend.window("daily")  # type: ignore[attr-defined]
        return cents(w.spent_nanos)

    @admin.display(description="spent this month", ordering="_month")
    def this_month(self, obj: Persona) -> str:
        w = obj._spend.window("monthly")  # type: ignore[attr-defined]
        return cents(w.spent_nanos)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        response = super().change_view(request, object_id, form_url, extra_context)
        context = getattr(response, "context_data", None)
        if context is not None:
            # Read after the form was checked: a hand edit that the check just found (a
            # conflict) is in the row by now, so the gauges show the caps the file has.
            obj = self.get_object(request, object_id)
            if obj is not None:
                context.update(persona_spend_context(obj, params=request.GET))
                context["original"] = obj
                # Which of persona, agent and platform leaves this persona the least.
                tightest = scope_reports.tightest_scopes(obj)
                context["tightest"] = tightest
                context["tightest_overall"] = scope_reports.tightest_overall(tightest)
                context["runs"] = persona_runs(obj)
        return response


admin.site.unregister(Agent)
admin.site.register(Agent, SpendAgentAdmin)
admin.site.unregister(Persona)
admin.site.register(Persona, SpendPersonaAdmin)
admin.site.unregister(Platform)
admin.site.register(Platform, SpendPlatformAdmin)
