"""The operators' admin for the ledger, holds and API keys.

The ledger is read-only here for everyone, superusers included: no add, change or delete
permission and no delete action. The charge list is built for a million rows: no full
``COUNT(*)`` (a capped count instead), one join, filters whose choices come from an
index or a bounded sample, and a date hierarchy that does not scan the table.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.html import format_html
from rest_framework_api_key.models import APIKey as LibraryAPIKey

from budgets import admin_queries, apikeys
from budgets.admin_views import persona_spend_context
from budgets.models import ApiKey, Charge, Hold
from budgets.templatetags.spend import format_usd, usd
from personas.admin import AgentAdmin, PersonaAdmin, PersonaInline
from personas.models import Agent, Persona


class CappedCountPaginator(Paginator):
    """Counts at most ``CAP`` rows: ``SELECT COUNT(*) FROM (... LIMIT CAP+1)``.

    A plain count of a million-row ledger costs a full scan on every page view; nobody
    pages through more than a hundred pages anyway. Past the cap the list says
    "more than 10,000" and the filters or the date hierarchy narrow it down.
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        object_list: Any = self.object_list
        counted = int(object_list[: self.CAP + 1].count())
        return min(counted, self.CAP)

    @cached_property
    def capped(self) -> bool:
        object_list: Any = self.object_list
        return bool(self.count >= self.CAP and object_list[self.CAP : self.CAP + 1].exists())


class RecentValuesFilter(admin.SimpleListFilter):
    """Choices from the latest charges only: ``DISTINCT`` over the ledger is a scan.

    Any value still works in the URL (``?surface=...``); the sidebar offers the values
    seen in the last ``SAMPLE`` charges, which is what an operator looks for.
    """

    SAMPLE = 5_000
    field: str = ""

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # Ids only grow: the latest charges are a range of the primary key.
        last = Charge.objects.order_by("-id").values_list("id", flat=True).first()
        if last is None:
            return []
        values = (
            Charge.objects.filter(id__gt=last - self.SAMPLE)
            .order_by()
            .values_list(self.field, flat=True)
            .distinct()
        )
        return [(v, v) for v in sorted(values)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(**{self.field: value})


class SurfaceFilter(RecentValuesFilter):
    title = "surface"
    parameter_name = "surface"
    field = "surface"


class ModelFilter(RecentValuesFilter):
    title = "model"
    parameter_name = "model"
    field = "model"


class DateFilter(admin.DateFieldListFilter):
    def __init__(self, field: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().__init__(field, request, *args, **kwargs)
        self.title = "date"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by staff, changeable by nobody: records of what happened."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


CSV_COLUMNS = (
    "seq",
    "ts",
    "agent_id",
    "persona_id",
    "surface",
    "model",
    "cost_usd",
    "request_id",
    "input_tokens",
    "output_tokens",
    "source",
    "hold_id",
)
_CSV_FIELDS = (
    "id",
    "ts",
    "persona__agent_id",
    "persona__slug",
    "surface",
    "model",
    "cost_nanos",
    "request_id",
    "input_tokens",
    "output_tokens",
    "source",
    "hold_id",
)
# A spreadsheet runs a cell that starts with one of these as a formula; surface, model and
# request_id come from API clients, so such cells are prefixed with a quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_rows(queryset: QuerySet[Charge]) -> Iterator[str]:
    """The export, one line at a time; the query streams in chunks (constant memory).

    ``cost_usd`` is the exact decimal amount; an empty cell means the cost was not
    recorded (never written as 0).
    """
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    rows = queryset.select_related(None).order_by("id").values_list(*_CSV_FIELDS)
    for row in rows.iterator(chunk_size=2_000):
        (seq, ts, agent_id, persona_id, surface, model, cost, request_id, *rest) = row
        cost_usd = "" if cost is None else format_usd(cost).lstrip("$").replace(",", "")
        yield writer.writerow(
            [
                seq,
                ts.astimezone(dt.UTC).isoformat(),
                agent_id,
                persona_id,
                _csv_cell(surface),
                _csv_cell(model),
                cost_usd,
                _csv_cell(request_id),
                *("" if v is None else v for v in rest),
            ]
        )


@admin.register(Charge)
class ChargeAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "when",
        "agent",
        "persona_link",
        "surface",
        "model",
        "cost",
        "tokens",
        "request_id",
        "source",
    )
    list_display_links = ("id",)
    # Plain related filters list the (small) agent and persona tables; "related only"
    # would ask the ledger which of them occur, a scan.
    list_filter = (
        "persona__agent",
        "persona",
        SurfaceFilter,
        ModelFilter,
        ("ts", DateFilter),
        "source",
    )
    list_select_related = ("persona",)
    search_fields = ("request_id",)
    search_help_text = "Exact request_id"
    date_hierarchy = "ts"
    show_full_result_count = False
    # Facet counts are one COUNT per filter choice over the ledger: never on this list.
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 100
    actions = ["export_csv"]
    fieldsets = (
        (None, {"fields": ("id", "when", "persona", "surface", "model", "cost", "request_id")}),
        ("Usage", {"fields": ("input_tokens", "output_tokens", "hold", "source", "actor")}),
        (
            "Idempotency",
            {"classes": ("collapse",), "fields": ("body_sha256", "first_response", "import_key")},
        ),
    )
    readonly_fields = ("when", "cost", "first_response")

    @admin.display(description="answer to the first request (replays get it again)")
    def first_response(self, obj: Charge) -> str:
        stored = obj.response
        if stored is None:
            return "-"
        return stored if isinstance(stored, str) else json.dumps(stored)

    @admin.display(description="time (UTC)", ordering="ts")
    def when(self, obj: Charge) -> str:
        return obj.ts.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="agent", ordering="persona__agent_id")
    def agent(self, obj: Charge) -> str:
        return obj.persona.agent_id

    @admin.display(description="persona", ordering="persona__slug")
    def persona_link(self, obj: Charge) -> str:
        url = reverse("admin:personas_persona_change", args=[obj.persona_id])
        return format_html('<a href="{}">{}</a>', url, obj.persona.slug)

    @admin.display(description="cost", ordering="cost_nanos")
    def cost(self, obj: Charge) -> str:
        return usd(obj.cost_nanos)

    @admin.display(description="tokens in / out")
    def tokens(self, obj: Charge) -> str:
        if obj.input_tokens is None and obj.output_tokens is None:
            return ""
        parts = ("?" if n is None else f"{n:,}" for n in (obj.input_tokens, obj.output_tokens))
        return " / ".join(parts)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        title = "Ledger: every charge, newest first (read-only)"
        context = {"title": title, **(extra_context or {})}
        return super().changelist_view(request, context)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        # An exact match (the admin's "=" prefix means iexact, which no index can serve).
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(request_id=term), False

    @admin.action(description="Export selected charges as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Charge]) -> HttpResponse:
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response = StreamingHttpResponse(csv_rows(queryset), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="charges-{stamp}.csv"'
        return response  # type: ignore[return-value]


class HoldStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s, s) for s in ("active", "expired", "settled", "released")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        value = self.value()
        if value == "active":
            return queryset.filter(state=Hold.State.ACTIVE, expires_at__gt=now)
        if value == "expired":
            return queryset.filter(state=Hold.State.ACTIVE, expires_at__lte=now)
        if value in (Hold.State.SETTLED, Hold.State.RELEASED):
            return queryset.filter(state=value)
        return queryset


def hold_status(hold: Hold, now: Any = None) -> str:
    """active | expired | settled | released: an expired hold keeps state "active"."""
    if hold.state == Hold.State.ACTIVE and hold.expires_at <= (now or timezone.now()):
        return "expired"
    return str(hold.state)


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "persona",
        "amount",
        "status",
        "created_at",
        "expires_at",
        "resolved_at",
        "actor",
    )
    list_filter = (HoldStatusFilter, "persona__agent")
    list_select_related = ("persona",)
    search_fields = ("=id",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    date_hierarchy = "created_at"
    calendar_first_by = "created_at"  # holds' ids are random; created_at has an index
    fields = (
        "id",
        "persona",
        "amount",
        "status",
        "created_at",
        "expires_at",
        "resolved_at",
        "actor",
    )
    readonly_fields = ("amount", "status")

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        title = "Holds: estimates reserved by clients until they charge (read-only)"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    @admin.display(description="amount", ordering="amount_nanos")
    def amount(self, obj: Hold) -> str:
        return usd(obj.amount_nanos)

    @admin.display(description="status")
    def status(self, obj: Hold) -> str:
        status = hold_status(obj)
        return format_html('<span class="hal0-pill hal0-hold-{}">{}</span>', status, status)


class ApiKeyScopeFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "live"), ("revoked", "revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "live":
            return queryset.filter(revoked=False)
        if self.value() == "revoked":
            return queryset.filter(revoked=True)
        return queryset


class ApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("name", "scope", "agent", "expiry_date")
        help_texts = {
            "name": "Who uses it, e.g. 'ci runner'. Empty: 'operator', or 'agent hermes' for "
            "an agent key for hermes.",
            "scope": "operator: everything. agent: one agent's reads, checks and charges.",
            "agent": "Agent keys only: the one agent the key may act for.",
            "expiry_date": "Optional: the key stops working at this time (UTC). Empty: never.",
        }
        labels = {"expiry_date": "Expires"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        scope, agent = cleaned.get("scope"), cleaned.get("agent")
        if scope == ApiKey.Scope.OPERATOR and agent is not None:
            self.add_error("agent", "An operator key is not tied to an agent: leave this empty.")
        if scope == ApiKey.Scope.AGENT and agent is None:
            self.add_error("agent", "An agent key needs the agent it acts for.")
        expires = cleaned.get("expiry_date")
        if expires is not None and expires <= timezone.now():
            self.add_error("expiry_date", "This time has passed: a key must expire in the future.")
        return cleaned

    def _post_clean(self) -> None:
        # The row is made by apikeys.create_key, not from this instance; clean() above has
        # already said per field what the model's check constraint would say vaguely.
        return


# The library registers its own concrete key model; this service authenticates with
# budgets.ApiKey only, so the other table would only confuse an operator.
if admin.site.is_registered(LibraryAPIKey):
    admin.site.unregister(LibraryAPIKey)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created through ``budgets.apikeys`` (as ``manage.py apikey`` does).

    The raw key is shown once, in the message after saving; only its hash is stored.
    Keys are revoked, never deleted, so the audit trail's ``key:<prefix>`` stays readable.
    """

    list_display = ("prefix", "name", "scope", "agent", "created", "last_used", "expires", "state")
    list_filter = ("scope", ApiKeyScopeFilter, ("agent", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("agent",)
    search_fields = ("name", "=prefix")
    actions = ["revoke"]
    ordering = ("-created",)

    DETAIL = ["prefix", "name", "scope", "agent", "created", "last_used", "expires", "revoked"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["name", "scope", "agent", "expiry_date"]
        return self.DETAIL

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        return self.DETAIL

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A key never changes after it is made; the revoke action is the one edit. The
        # list still needs the permission for its actions.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        title = "API keys: add one for each agent process; tick keys to revoke them"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    @admin.display(description="last used", ordering="last_used_at")
    def last_used(self, obj: ApiKey) -> str:
        if obj.last_used_at is None:
            return "never"
        return str(date_format(timezone.localtime(obj.last_used_at), "DATETIME_FORMAT"))

    @admin.display(description="expires", ordering="expiry_date")
    def expires(self, obj: ApiKey) -> str:
        if obj.expiry_date is None:
            return "never"
        return str(date_format(timezone.localtime(obj.expiry_date), "DATETIME_FORMAT"))

    @admin.display(description="state", ordering="revoked")
    def state(self, obj: ApiKey) -> str:
        if obj.revoked:
            return format_html('<span class="hal0-pill hal0-hold-released">{}</span>', "revoked")
        if obj.has_expired:
            return format_html('<span class="hal0-pill hal0-hold-expired">{}</span>', "expired")
        return format_html('<span class="hal0-pill hal0-hold-active">{}</span>', "live")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            return  # every field is read-only once the key exists
        agent: Agent | None = form.cleaned_data.get("agent")
        try:
            key, raw = apikeys.create_key(
                scope=form.cleaned_data["scope"],
                agent_id=agent.pk if agent is not None else None,
                name=form.cleaned_data.get("name") or None,
            )
        except apikeys.ApiKeyError as exc:
            # The form's clean() catches what an operator can get wrong; this is a guard.
            self.message_user(request, str(exc), messages.ERROR)
            return
        expires = form.cleaned_data.get("expiry_date")
        if expires is not None:
            ApiKey.objects.filter(pk=key.pk).update(expiry_date=expires)
            key.expiry_date = expires
        # The admin goes on with ``obj`` (its log entry, the redirect): make it the new key.
        for model_field in key._meta.concrete_fields:
            setattr(obj, model_field.attname, getattr(key, model_field.attname))
        obj._state.adding = False
        self.message_user(
            request,
            format_html(
                "The API key <code class='hal0-key'>{}</code> for {} is shown only now: "
                "copy it somewhere safe, it cannot be seen again.",
                raw,
                key.name,
            ),
            messages.WARNING,
        )

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> Any:
        # Saving always goes back to the list, where the key is shown: one button.
        context = {
            "show_save_and_add_another": False,
            "show_save_and_continue": False,
            **(extra_context or {}),
        }
        return super().add_view(request, form_url, context)

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: Any = None) -> Any:
        # The message with the key says it all; the admin's "was added successfully"
        # would push it down. Back to the list, where the new key is the first row.
        return HttpResponseRedirect(reverse("admin:budgets_apikey_changelist"))

    # Revoking stops a client at once: it takes the permission to change keys, not just
    # to see them.
    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = 0
        for key in queryset:
            _, changed = apikeys.revoke_key(key.prefix)
            revoked += int(changed)
        already = queryset.count() - revoked
        text = f"Revoked {revoked} key{'s' if revoked != 1 else ''}"
        if already:
            text += f", {already} already revoked"
        self.message_user(request, text, messages.SUCCESS)


# ---------------------------------------------------------------------------------------
# Agents and personas with their spend. personas.admin registers them without spend
# (personas may not import budgets); here they are re-registered with it.


class _SpendChangeList(ChangeList):
    """Reads the spend of the page's rows in one batch once the page is known (no N+1)."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        attach = getattr(self.model_admin, "attach_spend", None)
        if attach is not None:
            attach(list(self.result_list))


def _status_pill(status: str, has_caps: bool = True) -> str:
    label = status if has_caps else "no caps"
    return format_html('<span class="hal0-pill {}">{}</span>', status, label)


class SpendPersonaInline(PersonaInline):
    """The agent's personas with their status and spend, read from the window counters of
    all of them at once (two queries, whatever the number of personas)."""

    columns = (
        "persona_link",
        "display_name",
        "status",
        "today",
        "this_month",
        "caps",
        "enforcement",
        "file_state",
    )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.columns

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.columns

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Inline instances are made per request, so this never outlives one page.
        self._views: dict[int, admin_queries.PersonaSpend] = {}

    def _view(self, obj: Persona) -> admin_queries.PersonaSpend:
        if obj.pk not in self._views:
            personas = list(Persona.objects.filter(agent_id=obj.agent_id))
            self._views = {v.persona.pk: v for v in admin_queries.spend_views(personas)}
        return self._views[obj.pk]

    @admin.display(description="status")
    def status(self, obj: Persona) -> str:
        view = self._view(obj)
        return _status_pill(view.status, view.has_caps)

    @admin.display(description="spent today")
    def today(self, obj: Persona) -> str:
        return usd(self._view(obj).window("daily").spent_nanos)

    @admin.display(description="spent this month")
    def this_month(self, obj: Persona) -> str:
        return usd(self._view(obj).window("monthly").spent_nanos)


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
        context = {"title": "Agent and its personas", **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return _SpendChangeList

    def attach_spend(self, agents: list[Agent]) -> None:
        spent = admin_queries.agent_spend([a.pk for a in agents])
        for agent in agents:
            agent._spent = spent[agent.pk]  # type: ignore[attr-defined]

    @admin.display(description="spent today")
    def today(self, obj: Agent) -> str:
        return usd(obj._spent.day)  # type: ignore[attr-defined]

    @admin.display(description="spent this month")
    def this_month(self, obj: Agent) -> str:
        return usd(obj._spent.month)  # type: ignore[attr-defined]


class SpendPersonaAdmin(PersonaAdmin):
    class Media:
        # Keeps the "no cap" / "a cap of zero" note beside each cap field current.
        js = ("hal0/budget-form.js",)

    list_display: Any = (
        "__str__",
        "display_name",
        "status",
        "today",
        "this_month",
        "caps",
        "enforcement",
        "file_state",
    )

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return _SpendChangeList

    def attach_spend(self, personas: list[Persona]) -> None:
        for view in admin_queries.spend_views(personas):
            view.persona._spend = view  # type: ignore[attr-defined]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        title = "Personas: open one to see its spend or change its caps"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    @admin.display(description="status")
    def status(self, obj: Persona) -> str:
        view = obj._spend  # type: ignore[attr-defined]
        return _status_pill(view.status, view.has_caps)

    @admin.display(description="spent today")
    def today(self, obj: Persona) -> str:
        w = obj._spend.window("daily")  # type: ignore[attr-defined]
        return usd(w.spent_nanos)

    @admin.display(description="spent this month")
    def this_month(self, obj: Persona) -> str:
        w = obj._spend.window("monthly")  # type: ignore[attr-defined]
        return usd(w.spent_nanos)

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
                context.update(persona_spend_context(obj))
                context["original"] = obj
        return response


admin.site.unregister(Agent)
admin.site.register(Agent, SpendAgentAdmin)
admin.site.unregister(Persona)
admin.site.register(Persona, SpendPersonaAdmin)
