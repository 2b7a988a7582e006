"""The budget form: what an operator edits on a persona, an agent or the platform.

One form for the three scopes (``BudgetForm``): caps in USD and in tokens, hard cap, warn
line and timezone, with the same notes beside the fields and the same conflict detection
(the sha256 of the file the page was made from). Each scope's subclass says how to re-read
its file; the admin pages save ``form.spec`` through that file's one writer.
"""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.utils.html import format_html
from django.utils.safestring import SafeString

from hal0.errors import ApiError
from hal0.money import MAX_USD, MoneyError, parse_usd, to_decimal, to_nanos
from personas.admin.display import _json_value, usd_text
from personas.models import Agent, BudgetColumns, Persona, Platform
from personas.services import resolve_persona
from personas.services.scopes import PLATFORM, ScopeFile, agent_scope, sync_scope
from personas.toml_store import (
    MAX_TOKENS,
    BudgetInvalid,
    budget_spec_from_persona,
    iana_timezones,
    is_known_timezone,
    parse_budget_mapping,
)

NO_CAP = "no cap"
EMPTY_VS_ZERO = "Empty = no cap. 0 = a cap of zero (every call with a cost is over it)."
# What a cap field's value means, next to the field (budgets/static/hal0/budget-form.js
# keeps it current while the operator types; without JavaScript it describes the page as
# it was served).
CAP_NOTES = {
    "none": "no cap: never limited",
    "zero": "a cap of zero: every call with a cost is over it",
}
TIMEZONES = sorted(iana_timezones())
BUDGET_KEYS = {
    "daily_usd": "daily_cap_nanos",
    "monthly_usd": "monthly_cap_nanos",
    "lifetime_usd": "lifetime_cap_nanos",
    "per_call_max_usd": "per_call_cap_nanos",
}
# Token caps (input + output tokens), in the same order: key -> row column.
TOKEN_BUDGET_KEYS = {
    "daily_tokens": "daily_cap_tokens",
    "monthly_tokens": "monthly_cap_tokens",
    "lifetime_tokens": "lifetime_cap_tokens",
    "per_call_max_tokens": "per_call_cap_tokens",
}
BUDGET_FIELDS = (
    *BUDGET_KEYS,
    *TOKEN_BUDGET_KEYS,
    "hard_cap",
    "warn_at",
    "timezone",
    "file_sha256",
)


# A comma is read only as a thousands separator, and only where it cannot be a decimal
# comma: "1,234.5" and "1,000,000" are clear, "0,5" and "1,000" are not (half a dollar and
# one dollar in much of Europe), so those are refused rather than guessed.
_GROUPED = re.compile(r"\d{1,3}(,\d{3})+(\.\d*)?")
_NANO = Decimal("1e-9")


class CapTextError(ValueError):
    """Cap text that must not be saved: ``code`` for the form, ``note`` for beside it."""

    def __init__(self, code: str, message: str, note: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.note = note


def read_cap_text(value: Any) -> Decimal | None:
    """The amount a cap field's text means: ``None`` when empty (no cap).

    Refuses what would otherwise be saved as another amount than the operator meant:
    an ambiguous comma (``0,5`` was once saved as 5) and more than nine decimal places
    (``0.0000000001`` or ``1e-400`` were rounded to a cap of zero after validation).
    Negative, non-finite and too large amounts are left to :func:`hal0.money.parse_usd`
    and the form, which say why.
    """
    text = ("" if value is None else str(value)).strip().removeprefix("$").strip()
    if not text:
        return None
    if "," in text:
        if not (_GROUPED.fullmatch(text) and (text.count(",") > 1 or "." in text)):
            raise CapTextError(
                "ambiguous_comma",
                f"{text[:40]!r} is ambiguous: write decimals with a point (0.5) and "
                "thousands without a comma (1000).",
                "ambiguous comma: write 0.5 or 1000",
            )
        text = text.replace(",", "")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise CapTextError(
            "not_a_number",
            "Enter an amount in USD such as 5 or 0.25, or leave it empty for no cap.",
            "not an amount",
        ) from exc
    if amount.is_finite() and 0 <= amount <= MAX_USD and amount != amount.quantize(_NANO):
        if amount.quantize(_NANO) == 0:
            raise CapTextError(
                "rounds_to_zero",
                f"{text[:40]} is less than the smallest amount, 0.000000001 USD, and would "
                "be saved as a cap of zero: enter 0 for a cap of zero, or a larger amount.",
                "below $0.000000001: would be a cap of zero",
            )
        raise CapTextError(
            "too_precise",
            f"{text[:40]} has more than 9 decimal places (the smallest amount is "
            "0.000000001 USD): it would be saved rounded.",
            "more than 9 decimal places",
        )
    return amount


def cap_note(value: Any) -> tuple[str, str]:
    """(kind, text) of the note beside a cap field: what its text will be saved as.

    kind is none | zero | cap | invalid; for a cap the text is the parsed amount
    (``= $1,234.50``). budgets/static/hal0/budget-form.js computes the same while the
    operator types.
    """
    try:
        amount = read_cap_text(value)
    except CapTextError as exc:
        return "invalid", exc.note
    if amount is None:
        return "none", CAP_NOTES["none"]
    if not amount.is_finite():
        return "invalid", "not an amount"
    if not 0 <= amount <= MAX_USD:
        return "invalid", "must be a number from 0 to 1,000,000,000"
    if amount == 0:
        return "zero", CAP_NOTES["zero"]
    return "cap", f"= {usd_text(to_nanos(amount))}"


class UsdInput(forms.TextInput):
    """A dollar amount with a note that says what it will be saved as."""

    def render(self, name: str, value: Any, attrs: Any = None, renderer: Any = None) -> SafeString:
        html = super().render(name, value, attrs, renderer)
        kind, note = cap_note(value)
        return format_html(
            '<span class="hal0-usd-wrap"><span class="dollar" aria-hidden="true">$</span>{}'
            '<span class="hal0-capnote {}" data-kind="{}" aria-live="polite">{}</span></span>',
            html,
            kind,
            kind,
            note,
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
        try:
            amount = read_cap_text(super().to_python(value))
        except CapTextError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc
        if amount is None:
            return None
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


class TokenField(forms.CharField):
    """A cap in tokens: empty is ``None`` (no cap), else a whole number from 0."""

    def __init__(self, *, label: str, help_text: str) -> None:
        super().__init__(
            label=label,
            required=False,
            help_text=help_text,
            widget=forms.TextInput(
                attrs={"placeholder": NO_CAP, "class": "vTextField", "inputmode": "numeric"}
            ),
        )

    def to_python(self, value: Any) -> int | None:  # type: ignore[override]
        # Spaces, "_" and "," group digits as an operator types them (1,000,000 tokens is
        # never a decimal): they are dropped; anything else that is not digits is refused.
        text = (super().to_python(value) or "").strip().replace("_", "").replace(",", "")
        text = text.replace(" ", "")
        if not text:
            return None
        if text.startswith("-") and text[1:].isdigit():
            raise forms.ValidationError(
                f"{self.label} cannot be negative: enter 0 for a cap of zero, or leave it "
                "empty for no cap.",
                code="negative",
            )
        if not (text.isascii() and text.isdigit()):
            raise forms.ValidationError(
                "Enter a whole number of tokens such as 200000, or leave it empty for no cap.",
                code="not_a_number",
            )
        if len(text) > 16 or int(text) > MAX_TOKENS:
            raise forms.ValidationError(
                f"{self.label} must be at most {MAX_TOKENS:,} tokens.", code="too_large"
            )
        return int(text)


class BudgetForm(forms.ModelForm):
    """Edits a budget block; saved by its file's one writer, never by ``Model.save``.

    Subclasses name the row (``Meta.model``), say how the file is re-read
    (:meth:`fresh`) and how messages name it (:meth:`file_noun`).
    """

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
    daily_tokens = TokenField(
        label="Daily token cap", help_text="Input + output tokens per day (same day as above)."
    )
    monthly_tokens = TokenField(label="Monthly token cap", help_text="Tokens per month.")
    lifetime_tokens = TokenField(label="Lifetime token cap", help_text="All tokens ever.")
    per_call_max_tokens = TokenField(
        label="Per-call token cap",
        help_text="The most tokens a single call may ask for (input + max output).",
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
        for key, attr in TOKEN_BUDGET_KEYS.items():
            tokens = getattr(persona, attr)
            self.initial[key] = "" if tokens is None else str(tokens)
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
        if not is_known_timezone(name):
            raise forms.ValidationError(
                f"Unknown timezone {name!r}: use an IANA name such as Europe/Berlin or UTC."
            )
        return name

    def budget_mapping(self) -> dict[str, Any]:
        """The ``[persona.budget]`` table the form describes (unset caps left out)."""
        data = self.cleaned_data
        mapping: dict[str, Any] = {}
        for key in BUDGET_KEYS:
            if data.get(key) is not None:
                mapping[key] = to_decimal(data[key])
        for key in TOKEN_BUDGET_KEYS:
            if data.get(key) is not None:
                mapping[key] = data[key]
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
            persona = self.fresh()
        except ApiError as exc:
            raise forms.ValidationError(f"Nothing was saved: {exc.message}") from exc
        if persona.load_error:
            raise forms.ValidationError(
                f"Nothing was saved: {self.file_noun()} is malformed "
                f"({persona.load_error}). Fix the file by hand first; the last good caps "
                "stay in force meanwhile.",
                code="malformed",
            )
        current = self.current = budget_spec_from_persona(persona)
        # Unknown keys of the table are not on the form; keep whatever the file has. The
        # persona's stop switch is not on it either: it has its own button (pause /
        # resume); the agent's and the platform's is a field of their form.
        paused = bool(cleaned.get("paused")) if "paused" in self.fields else current.paused
        self.spec = dataclasses.replace(spec, extra=current.extra, paused=paused)
        if cleaned.get("file_sha256") != persona.content_sha256:
            self.conflict = conflict_rows(persona, self)
            # The next save is a deliberate "apply mine on top of this version".
            data: Any = self.data
            data = data.copy()
            data[self.add_prefix("file_sha256")] = persona.content_sha256
            self.data = data
            raise forms.ValidationError(
                f"Nothing was saved: {self.file_noun()} changed since you opened this page.",
                code="conflict",
            )
        return cleaned

    def fresh(self) -> Any:
        """The row as its file is now (re-read when the file changed since the row)."""
        raise NotImplementedError

    def file_noun(self) -> str:
        return "the file"


class PersonaBudgetForm(BudgetForm):
    """Edits ``[persona.budget]``; saved by ``write_budget``."""

    class Meta:
        model = Persona
        fields: list[str] = []

    def fresh(self) -> Persona:
        return fresh_persona(self.instance)

    def file_noun(self) -> str:
        return "the persona's file"


class AgentBudgetForm(BudgetForm):
    """Edits ``[agent.budget]`` of ``agents/<a>/agent.toml``; saved by
    ``write_scope_budget``. Its stop switch is a field here (one click and Save)."""

    paused = forms.BooleanField(
        label="Paused (stop switch)",
        required=False,
        help_text="On: every check under this scope is refused, whatever its caps say, until "
        "it is switched off again. Charges for calls already made are still recorded.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["paused"] = self.instance.paused

    class Meta:
        model = Agent
        fields: list[str] = []

    def file_noun(self) -> str:
        return scope_of(self.instance).shown

    def fresh(self) -> Agent | Platform:
        return sync_scope(scope_of(self.instance))


class PlatformBudgetForm(AgentBudgetForm):
    """Edits ``[platform.budget]`` of ``platform.toml``; saved by ``write_scope_budget``."""

    class Meta:
        model = Platform
        fields: list[str] = []


def scope_of(row: Agent | Platform) -> ScopeFile:
    """The file behind an agent's or the platform's row."""
    return agent_scope(row.pk) if isinstance(row, Agent) else PLATFORM


def fresh_persona(persona: Persona) -> Persona:
    """The persona as its file is now (re-read when the file changed since the row)."""
    return resolve_persona(persona.agent, persona.slug)


def token_text(tokens: int | None) -> str:
    return NO_CAP if tokens is None else f"{tokens:,} tokens"


def conflict_rows(persona: BudgetColumns, form: BudgetForm) -> list[tuple[str, str, str]]:
    """(field, in the file now, what the operator entered) for every field of the form."""
    data = form.cleaned_data
    rows = [
        (
            str(form.fields[key].label),
            usd_text(getattr(persona, attr)),
            usd_text(data.get(key)),
        )
        for key, attr in BUDGET_KEYS.items()
    ]
    rows += [
        (
            str(form.fields[key].label),
            token_text(getattr(persona, attr)),
            token_text(data.get(key)),
        )
        for key, attr in TOKEN_BUDGET_KEYS.items()
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
    if "paused" in form.fields:
        rows.append(("Paused", _json_value(persona.paused), _json_value(bool(data.get("paused")))))
    return rows
