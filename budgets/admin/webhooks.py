"""Webhook endpoints (add, list, remove, send a test event), their deliveries with every
attempt, and the events themselves (read-only)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from budgets.admin.base import CappedCountPaginator, ReadOnlyAdmin
from budgets.events.delivery import new_secret, send_test
from budgets.events.endpoints import (
    EndpointInvalid,
    clean_agent,
    clean_url,
    is_failing,
)
from budgets.events.models import Delivery, DeliveryAttempt, Event, WebhookEndpoint
from budgets.events.outbox import EVENT_TYPES
from personas.admin.display import ReadOnlyInlineMixin


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https", label="URL")
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to receive every type.",
    )
    agent_id = forms.ChoiceField(
        required=False, label="Agent", help_text="Only this agent's events (empty: all)."
    )

    class Meta:
        model = WebhookEndpoint
        fields = ("url", "format", "event_types", "agent_id", "enabled")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from personas.models import Agent

        agents = Agent.objects.order_by("id").values_list("id", flat=True)
        field = self.fields["agent_id"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "every agent"), *((a, a) for a in agents)]

    def clean_url(self) -> str:
        try:
            return clean_url(self.cleaned_data["url"])
        except EndpointInvalid as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_agent_id(self) -> str:
        try:
            return clean_agent(self.cleaned_data.get("agent_id") or "")
        except EndpointInvalid as exc:
            raise forms.ValidationError(str(exc)) from exc


class DeliveryInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Delivery
    fields = ("event", "state", "attempts", "next_attempt_at", "finished_at", "log_link")
    readonly_fields = fields
    ordering = ("-id",)
    verbose_name_plural = "recent deliveries (open one for its attempt log)"
    max_num = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("event")

    @admin.display(description="attempts log")
    def log_link(self, obj: Delivery) -> str:
        return format_html('<a href="../../delivery/{}/change/">log</a>', obj.pk)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = (
        "id",
        "url",
        "format",
        "types",
        "agent",
        "enabled",
        "health",
        "last_success_at",
        "last_failure_at",
    )
    list_display_links = ("id", "url")
    readonly_fields = (
        "created_at",
        "consecutive_failures",
        "last_success_at",
        "last_failure_at",
        "last_error",
    )
    actions = ("send_test_event",)
    inlines = (DeliveryInline,)

    @admin.display(description="event types")
    def types(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.event_types) or "all"

    @admin.display(description="agent")
    def agent(self, obj: WebhookEndpoint) -> str:
        return obj.agent_id or "all"

    @admin.display(description="health")
    def health(self, obj: WebhookEndpoint) -> str:
        if is_failing(obj, settings.HAL0_WEBHOOK_FAILING_AFTER):
            return format_html(
                '<strong class="hal0-failing">failing</strong> ({} in a row: {})',
                obj.consecutive_failures,
                obj.last_error,
            )
        return "ok" if obj.last_success_at else "no delivery yet"

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            obj.secret = new_secret()
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(
                request,
                format_html(
                    "Signing secret of this endpoint, shown only now: <code>{}</code>",
                    obj.secret,
                ),
                messages.WARNING,
            )

    @admin.action(description="Send a test event")
    def send_test_event(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        actor = getattr(request.user, "get_username", lambda: "an operator")()
        ids = [send_test(endpoint, actor=actor) for endpoint in queryset]
        self.message_user(
            request,
            f"Queued {len(ids)} test event(s); the worker sends them within seconds "
            "(see each endpoint's deliveries).",
            messages.SUCCESS,
        )


class DeliveryAttemptInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = DeliveryAttempt
    fields = ("at", "status_code", "latency_ms", "ok", "error", "worker")
    readonly_fields = fields
    ordering = ("-at", "-id")
    max_num = 0


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "event", "endpoint", "state", "attempts", "next_attempt_at")
    list_filter = ("state",)
    list_select_related = ("event", "endpoint")
    inlines = (DeliveryAttemptInline,)
    paginator = CappedCountPaginator
    show_full_result_count = False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "occurred_at", "scope_kind", "agent_id", "persona_id", "window")
    list_filter = ("type", "scope_kind")
    search_fields = ("agent_id", "persona_id")
    paginator = CappedCountPaginator
    show_full_result_count = False
