"""Admin for agents, personas and the cap-change audit trail.

Persona files are the truth: every persona field is read-only here except the budget,
which is saved through ``personas.services.write_budget`` (the one writer of persona
files). Spend (gauges, charts, columns) is added by ``budgets.admin``, which subclasses
these classes: ``personas`` never imports ``budgets``.
"""

from __future__ import annotations

import dataclasses
import functools
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from hal0.errors import ApiError
from hal0.money import MoneyError, parse_usd, to_decimal
from personas.models import Agent, BudgetChange, Persona
from personas.services import resolve_persona, write_budget
from personas.toml_store import BudgetInvalid, budget_spec_from_persona, parse_budget_mapping

CAP_FIELDS = (
    ("daily_cap_nanos", "daily"),
    ("monthly_cap_nanos", "monthly"),
    ("lifetime_cap_nanos", "lifetime"),
    ("per_call_cap_nanos", "per call"),
)


def usd_text(nanos: int | None) -> str:
    if nanos is None:
        return "no cap"
    value = to_decimal(nanos)
    # Cents when the amount has no more; every digit when it has (never rounded away).
    return f"${value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"${value:,}"


def caps_summary(persona: Persona) -> str:
    caps = [
        f"{label} {usd_text(getattr(persona, attr))}"
        for attr, label in CAP_FIELDS
        if getattr(persona, attr) is not None
    ]
    return " · ".join(caps) if caps else "no caps"


class ReadOnlyInlineMixin:
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PersonaInline(ReadOnlyInlineMixin, admin.TabularInline):
    """The agent's personas, read-only, each linking to its own page (caps are set there)."""

    model = Persona
    fields = ("persona_link", "display_name", "caps", "enforcement", "file_state")
    readonly_fields = fields
    verbose_name_plural = "personas (open one to see its spend or change its caps)"

    @admin.display(description="persona")
    def persona_link(self, obj: Persona) -> str:
        url = reverse("admin:personas_persona_change", args=[obj.pk])
        return format_html('<a href="{}"><strong>{}</strong></a>', url, obj.slug)

    @admin.display(description="caps")
    def caps(self, obj: Persona) -> str:
        return caps_summary(obj)

    @admin.display(description="enforcement")
    def enforcement(self, obj: Persona) -> str:
        return "hard cap" if obj.hard_cap else "warn only"

    @admin.display(description="file")
    def file_state(self, obj: Persona) -> str:
        return "malformed: last good caps in force" if obj.load_error else "ok"


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    """Agents come from ``manage.py reprovision``; the admin shows them and their personas."""

    list_display = ("id", "display_name", "persona_count")
    search_fields = ("id", "display_name")
    fields = ("id", "display_name", "created_at", "updated_at")
    readonly_fields = fields
    inlines = [PersonaInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Agent]:
        return super().get_queryset(request).annotate(persona_count=Count("personas"))

    @admin.display(description="personas", ordering="persona_count")
    def persona_count(self, obj: Any) -> int:
        return int(obj.persona_count)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _json_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def budget_diff(change: BudgetChange) -> SafeString:
    """The keys that changed, ``key: old → new``; a first record lists what was set."""
    before = change.before or {}
    after = change.after or {}
    keys = sorted(set(before) | set(after))
    rows = [
        (key, _json_value(before.get(key)), _json_value(after.get(key)))
        for key in keys
        if before.get(key) != after.get(key)
    ]
    if not rows:
        return format_html('<span class="hal0-diff">{}</span>', "no change")
    return format_html(
        '<span class="hal0-diff">{}</span>',
        format_html_join(
            mark_safe("<br>"),  # a constant tag, never user input
            '{}: <span class="old">{}</span> → <span class="new">{}</span>',
            rows,
        ),
    )


# ---------------------------------------------------------------------------------------
# The budget form: the only thing an operator edits on a persona.

NO_CAP = "no cap"
EMPTY_VS_ZERO = "Empty = no cap. 0 = a cap of zero (every call with a cost is over it)."
# What a cap field's value means, next to the field (budgets/static/hal0/budget-form.js
# keeps it current while the operator types; without JavaScript it describes the page as
# it was served).
CAP_NOTES = {
    "none": "no cap: never limited",
    "zero": "a cap of zero: every call with a cost is over it",
    "cap": "",
}
TIMEZONES = sorted(available_timezones())
BUDGET_KEYS = {
    "daily_usd": "daily_cap_nanos",
    "monthly_usd": "monthly_cap_nanos",
    "lifetime_usd": "lifetime_cap_nanos",
    "per_call_max_usd": "per_call_cap_nanos",
}


def cap_kind(value: Any) -> str:
    """none (empty) | zero | cap: what a cap field's text means, for the note beside it."""
    text = ("" if value is None else str(value)).strip().removeprefix("$").strip()
    if not text:
        return "none"
    try:
        return "zero" if Decimal(text.replace(",", "")) == 0 else "cap"
    except InvalidOperation:
        return "cap"


class UsdInput(forms.TextInput):
    """A dollar amount with a note that says what empty and 0 mean."""

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> SafeString:
        html = super().render(name, value, attrs, renderer)
        kind = cap_kind(value)
        return format_html(
            '<span class="hal0-usd-wrap"><span class="dollar" aria-hidden="true">$</span>{}'
            '<span class="hal0-capnote {}" data-kind="{}" aria-live="polite">{}</span></span>',
            html,
            kind,
            kind,
            CAP_NOTES[kind],
        )


class UsdField(forms.CharField):
    """A cap in USD: empty is ``None`` (no cap), anything else a number >= 0, in nanos."""

    def __init__(self, *, label: str, help_text: str) -> None:
        super().__init__(
            label=label,
            required=False,
            help_text=help_text,
            widget=UsdInput(
                attrs={
                    "placeholder": NO_CAP,
                    "class": "vTextField hal0-usd",
                    "inputmode": "decimal",
                }
            ),
        )

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        text = (super().to_python(value) or "").strip().removeprefix("$").strip()
        if not text:
            return None
        try:
            amount = Decimal(text.replace(",", ""))
        except InvalidOperation as exc:
            raise forms.ValidationError(
                "Enter an amount in USD such as 5 or 0.25, or leave it empty for no cap.",
                code="not_a_number",
            ) from exc
        if amount.is_finite() and amount < 0:
            raise forms.ValidationError(
                f"{self.label} cannot be negative (must be >= 0): enter 0 for a cap of zero, "
                "or leave it empty for no cap.",
                code="negative",
            )
        try:
            return parse_usd(amount, field=str(self.label).lower())
        except MoneyError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc


def usd_initial(nanos: int | None) -> str:
    return "" if nanos is None else str(to_decimal(nanos))


class PersonaBudgetForm(forms.ModelForm):
    """Edits ``[persona.budget]``; saved by ``write_budget``, never by ``Model.save``."""

    daily_usd = UsdField(
        label="Daily cap", help_text="Spend per day; resets at 00:00 in the timezone below."
    )
    monthly_usd = UsdField(
        label="Monthly cap", help_text="Spend per month; resets at 00:00 on the 1st."
    )
    lifetime_usd = UsdField(label="Lifetime cap", help_text="All spend ever; never resets.")
    per_call_max_usd = UsdField(
        label="Per-call cap", help_text="The largest estimate a single call may have."
    )
    hard_cap = forms.BooleanField(
        label="Hard cap",
        required=False,
        help_text="On: a call that would go over a cap is blocked. Off: warn only, never block.",
    )
    warn_at = forms.CharField(
        label="Warn at",
        required=False,
        help_text="Fraction of a cap where the status turns to warn: 0.8 = 80 %. Empty = 0.8.",
        widget=forms.TextInput(attrs={"placeholder": "0.8 (default)", "inputmode": "decimal"}),
    )
    timezone = forms.CharField(
        label="Timezone",
        required=False,
        help_text="IANA name for day and month boundaries, e.g. Europe/Berlin. Empty = UTC.",
        widget=forms.TextInput(attrs={"placeholder": "UTC (default)", "list": "hal0-timezones"}),
    )
    # The sha256 of the file the page was made from: a save against another version of the
    # file is a conflict, never a silent overwrite of someone's hand edit.
    file_sha256 = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Persona
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec: Any = None
        self.current: Any = None  # the file's budget when the form was checked
        self.conflict: list[tuple[str, str, str]] | None = None
        persona = self.instance
        if persona.pk is None:
            return
        for key, attr in BUDGET_KEYS.items():
            self.initial[key] = usd_initial(getattr(persona, attr))
        self.initial["hard_cap"] = persona.hard_cap
        self.initial["warn_at"] = (
            "" if persona.warn_at is None else f"{persona.warn_at.normalize()}"
        )
        self.initial["timezone"] = persona.timezone
        self.initial["file_sha256"] = persona.content_sha256

    def clean_warn_at(self) -> Decimal | None:
        text = (self.cleaned_data.get("warn_at") or "").strip()
        if not text:
            return None
        try:
            value = Decimal(text)
        except InvalidOperation as exc:
            raise forms.ValidationError("Enter a fraction such as 0.8, or leave it empty.") from exc
        if not value.is_finite() or not (0 < value <= 1):
            raise forms.ValidationError("Warn at is a fraction above 0 and at most 1, e.g. 0.8.")
        return value

    def clean_timezone(self) -> str | None:
        name = (self.cleaned_data.get("timezone") or "").strip()
        if not name:
            return None
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise forms.ValidationError(
                f"Unknown timezone {name!r}: use an IANA name such as Europe/Berlin or UTC."
            ) from exc
        return name

    def budget_mapping(self) -> dict[str, Any]:
        """The ``[persona.budget]`` table the form describes (unset caps left out)."""
        data = self.cleaned_data
        mapping: dict[str, Any] = {}
        for key in BUDGET_KEYS:
            if data.get(key) is not None:
                mapping[key] = to_decimal(data[key])
        mapping["hard_cap"] = bool(data.get("hard_cap"))
        if data.get("warn_at") is not None:
            mapping["warn_at"] = data["warn_at"]
        if data.get("timezone"):
            mapping["timezone"] = data["timezone"]
        return mapping

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        try:
            spec = parse_budget_mapping(self.budget_mapping())
        except BudgetInvalid as exc:
            # The service's rules have the last word; its key names the field.
            self.add_error(exc.key if exc.key in self.fields else None, exc.message)
            return cleaned
        try:
            persona = fresh_persona(self.instance)
        except ApiError as exc:
            raise forms.ValidationError(f"Nothing was saved: {exc.message}") from exc
        if persona.load_error:
            raise forms.ValidationError(
                "Nothing was saved: the persona's file is malformed "
                f"({persona.load_error}). Fix the file by hand first; the last good caps "
                "stay in force meanwhile.",
                code="malformed",
            )
        current = self.current = budget_spec_from_persona(persona)
        # Unknown keys of the table are not on the form; keep whatever the file has.
        self.spec = dataclasses.replace(spec, extra=current.extra)
        if cleaned.get("file_sha256") != persona.content_sha256:
            self.conflict = conflict_rows(persona, self)
            # The next save is a deliberate "apply mine on top of this version".
            data: Any = self.data
            data = data.copy()
            data[self.add_prefix("file_sha256")] = persona.content_sha256
            self.data = data
            raise forms.ValidationError(
                "Nothing was saved: the persona's file changed since you opened this page.",
                code="conflict",
            )
        return cleaned


def fresh_persona(persona: Persona) -> Persona:
    """The persona as its file is now (re-read when the file changed since the row)."""
    return resolve_persona(persona.agent, persona.slug)


def conflict_rows(persona: Persona, form: PersonaBudgetForm) -> list[tuple[str, str, str]]:
    data = form.cleaned_data
    rows = [
        (
            str(form.fields[key].label),
            usd_text(getattr(persona, attr)),
            usd_text(data.get(key)),
        )
        for key, attr in BUDGET_KEYS.items()
    ]
    rows.append(
        ("Hard cap", _json_value(persona.hard_cap), _json_value(bool(data.get("hard_cap"))))
    )
    rows.append(
        (
            "Warn at",
            _json_value(persona.warn_at.normalize() if persona.warn_at is not None else None),
            _json_value(data.get("warn_at")),
        )
    )
    rows.append(("Timezone", persona.timezone or "UTC", data.get("timezone") or "UTC"))
    return rows


@admin.register(BudgetChange)
class BudgetChangeAdmin(admin.ModelAdmin):
    """Every change of a persona's caps, from the admin, the API, the CLI or a hand edit."""

    list_display = ("at", "persona_page", "actor", "via", "changes")
    list_filter = ("via", ("persona__agent", admin.RelatedOnlyFieldListFilter), "at")
    list_select_related = ("persona",)
    search_fields = ("actor", "persona__slug", "persona__agent__id")
    date_hierarchy = "at"
    fields = ("at", "persona", "actor", "via", "changes", "before", "after")
    readonly_fields = fields

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        title = "Cap changes: who changed which cap, newest first (read-only)"
        return super().changelist_view(request, {"title": title, **(extra_context or {})})

    @admin.display(description="persona", ordering="persona")
    def persona_page(self, obj: BudgetChange) -> str:
        url = reverse("admin:personas_persona_change", args=[obj.persona_id])
        return format_html('<a href="{}">{}</a>', url, obj.persona)

    @admin.display(description="before → after")
    def changes(self, obj: BudgetChange) -> SafeString:
        return budget_diff(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    form = PersonaBudgetForm
    list_display = ("__str__", "display_name", "caps", "enforcement", "file_state")
    list_filter = (("agent", admin.RelatedOnlyFieldListFilter), "hard_cap")
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
                    "Caps in US dollars, written to the persona's TOML file when you save "
                    "(comments and other tables are kept). <strong>{}</strong>",
                    EMPTY_VS_ZERO,
                ),
                "fields": (
                    "daily_usd",
                    "monthly_usd",
                    "lifetime_usd",
                    "per_call_max_usd",
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

    # What a staff account that may view personas but not change them sees in place of
    # the form (the form's fields are not attributes of the row: they would read "None").
    VIEW_ONLY_BUDGET = (
        "daily_cap",
        "monthly_cap",
        "lifetime_cap",
        "per_call_cap",
        "enforcement",
        "warn_line",
        "day_boundary",
    )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        budget = (
            "Budget",
            {
                "classes": ("hal0-budget",),
                "description": "Your account may see these caps but not change them.",
                "fields": self.VIEW_ONLY_BUDGET,
            },
        )
        return [budget, *fieldsets[1:]]

    @staticmethod
    def _cap(nanos: int | None) -> str:
        text = usd_text(nanos)
        return f"{text} (a cap of zero)" if nanos == 0 else text

    @admin.display(description="Daily cap")
    def daily_cap(self, obj: Persona) -> str:
        return self._cap(obj.daily_cap_nanos)

    @admin.display(description="Monthly cap")
    def monthly_cap(self, obj: Persona) -> str:
        return self._cap(obj.monthly_cap_nanos)

    @admin.display(description="Lifetime cap")
    def lifetime_cap(self, obj: Persona) -> str:
        return self._cap(obj.lifetime_cap_nanos)

    @admin.display(description="Per-call cap")
    def per_call_cap(self, obj: Persona) -> str:
        return self._cap(obj.per_call_cap_nanos)

    @admin.display(description="Warn at")
    def warn_line(self, obj: Persona) -> str:
        share = f"{(obj.effective_warn_at * 100).normalize():f} % of a cap"
        return share if obj.warn_at is not None else f"{share} (default)"

    @admin.display(description="Timezone")
    def day_boundary(self, obj: Persona) -> str:
        return obj.timezone or "UTC (default)"

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

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        return  # the persona has no related rows an operator edits

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if getattr(request, "_hal0_budget", None) != "saved":
            return None  # the audit trail (BudgetChange) has the real record
        return super().log_change(request, obj, message)

    def response_change(self, request: HttpRequest, obj: Persona) -> HttpResponse:
        outcome = getattr(request, "_hal0_budget", None)
        if outcome == "saved":
            self.message_user(
                request,
                f"Saved: {obj}'s caps are in its file and in force now.",
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
