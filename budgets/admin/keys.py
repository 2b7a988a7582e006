"""API keys: created through ``budgets.apikeys``, shown once, revoked but never deleted."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from rest_framework_api_key.models import APIKey as LibraryAPIKey

from budgets import apikeys
from budgets.models import ApiKey
from personas.models import Agent, Persona


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


class PersonaChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.agent_id}/{obj.slug}"


class ApiKeyAddForm(forms.ModelForm):
    # One labelled input (date and time together), not the admin's two unlabelled halves.
    expiry_date = forms.DateTimeField(
        required=False,
        label="Expires (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Optional: the key stops working at this date and time (UTC). Empty: never.",
    )
    # Not the model's column (that holds the persona id): a choice of the known personas,
    # checked against the agent below.
    persona = PersonaChoiceField(
        queryset=Persona.objects.order_by("agent_id", "slug"),
        required=False,
        help_text="Optional, agent keys only: the one persona of that agent the key may use. "
        "Every other persona then reads as not found. Empty: every persona of the agent.",
    )

    class Meta:
        model = ApiKey
        fields = ("name", "scope", "agent", "expiry_date")
        help_texts = {
            "name": "Who uses it, e.g. 'ci runner'. Empty: 'operator', or 'agent hermes' for "
            "an agent key for hermes.",
            "scope": "operator: everything. agent: one agent's reads, checks and charges.",
            "agent": "Agent keys only: the one agent the key may act for.",
        }

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
        persona = cleaned.get("persona")
        if persona is not None:
            if scope != ApiKey.Scope.AGENT:
                self.add_error("persona", "Only an agent key can be limited to a persona.")
            elif agent is not None and persona.agent_id != agent.pk:
                self.add_error(
                    "persona", f"{persona.agent_id}/{persona.slug} is not a persona of {agent.pk}."
                )
        expires = cleaned.get("expiry_date")
        if expires is not None and expires <= timezone.now():
            self.add_error("expiry_date", "This time has passed: a key must expire in the future.")
        return cleaned

    def _post_clean(self) -> None:
        # The row is made by apikeys.create_key, not from this instance; clean() above has
        # already said per field what the model's check constraint would say vaguely.
        return


# The library registers its own concrete key model; this service authenticates with
# budgets.ApiKey only, so the other table would only confuse an operator. Its admin module
# is imported first so that the order of autodiscovery does not matter.
import_module("rest_framework_api_key.admin")
if admin.site.is_registered(LibraryAPIKey):
    admin.site.unregister(LibraryAPIKey)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created through ``budgets.apikeys`` (as ``manage.py apikey`` does).

    The raw key is shown once, in the message after saving; only its hash is stored.
    Keys are revoked, never deleted, so the audit trail's ``key:<prefix>`` stays readable.
    """

    list_display = (
        "prefix",
        "name",
        "scope",
        "agent",
        "persona",
        "created",
        "last_used",
        "expires",
        "state",
    )
    list_filter = ("scope", ApiKeyScopeFilter, ("agent", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("agent",)
    search_fields = ("name", "=prefix")
    actions = ["revoke"]
    ordering = ("-created",)

    DETAIL = [
        "prefix",
        "name",
        "scope",
        "agent",
        "persona",
        "created",
        "last_used",
        "expires",
        "revoked",
    ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["name", "scope", "agent", "persona", "expiry_date"]
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

    @admin.display(description="persona", ordering="persona_slug")
    def persona(self, obj: ApiKey) -> str:
        # Every persona of its agent, unless the key was narrowed to one.
        if obj.persona_slug:
            return f"{obj.agent_id}/{obj.persona_slug}"
        return "all of the agent's" if obj.agent_id else "-"

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
        persona: Persona | None = form.cleaned_data.get("persona")
        try:
            key, raw = apikeys.create_key(
                scope=form.cleaned_data["scope"],
                agent_id=agent.pk if agent is not None else None,
                persona_id=persona.slug if persona is not None else None,
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
                "The API key <code class='hal0-key' id='hal0-new-key'>{}</code> "
                "<button type='button' class='hal0-copy' data-copy='#hal0-new-key'>Copy</button> "
                "for {} is shown only now: copy it somewhere safe, it cannot be seen again.",
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
    # to see them, and a confirmation page that names the keys and what revoking does.
    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> Any:
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": "Revoke API keys?",
                "opts": self.model._meta,
                "keys": list(queryset.select_related("agent")),
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/budgets/apikey/revoke_confirm.html", context)
        revoked = 0
        for key in queryset:
            _, changed = apikeys.revoke_key(key.prefix)
            revoked += int(changed)
        already = queryset.count() - revoked
        text = f"Revoked {revoked} key{'s' if revoked != 1 else ''}"
        if already:
            text += f", {already} already revoked"
        self.message_user(request, text, messages.SUCCESS)
        return None
