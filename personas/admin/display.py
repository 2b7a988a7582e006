"""How caps and cap changes read on the admin's pages, and the read-only admin bases."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from hal0.money import MoneyError, to_decimal, to_nanos
from personas.models import BudgetChange, Persona
from personas.toml_store import CAP_KEYS, TOKEN_KEYS, BudgetSpec

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
    return f"${value:,.2f}" if value == value.quantize(Decimal("0.01")) else f"${value:,f}"


def caps_summary(persona: Persona) -> str:
    caps = [
        f"{label} {usd_text(getattr(persona, attr))}"
        for attr, label in CAP_FIELDS
        if getattr(persona, attr) is not None
    ]
    return " · ".join(caps) if caps else "no caps"


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


class ReadOnlyInlineMixin:
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
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


# How the audit trail names a budget key (the file's and the API's names are in the docs).
AUDIT_LABELS = {
    "daily_usd": "daily cap",
    "monthly_usd": "monthly cap",
    "lifetime_usd": "lifetime cap",
    "per_call_max_usd": "per-call cap",
    "daily_tokens": "daily token cap",
    "monthly_tokens": "monthly token cap",
    "lifetime_tokens": "lifetime token cap",
    "per_call_max_tokens": "per-call token cap",
    "hard_cap": "hard cap",
    "warn_at": "warn at",
}


def audit_value(key: str, value: Any) -> str:
    """A recorded value as an operator reads it: dollars for money (``$5.00``, every digit
    kept: ``$0.000125``), thousands for tokens, a share for warn_at; never raw decimals."""
    if value is None:
        return "no cap" if key.endswith(("_usd", "_tokens")) else "—"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return _json_value(value)
    try:
        if key.endswith("_usd"):
            return usd_text(to_nanos(Decimal(str(value))))
        if key.endswith("_tokens"):
            return f"{int(value):,} tokens"
        if key == "warn_at":
            return f"{(Decimal(str(value)) * 100).normalize():f} % of a cap"
    except (ArithmeticError, ValueError, MoneyError):
        pass  # a value the file had that is not a number: shown as it was recorded
    return _json_value(value)


def budget_diff(change: BudgetChange) -> SafeString:
    """The keys that changed, ``daily cap: $5.00 → $3.00``; a first record lists what was
    set."""
    before = change.before or {}
    after = change.after or {}
    keys = sorted(set(before) | set(after))
    rows = [
        (
            AUDIT_LABELS.get(key, key),
            audit_value(key, before.get(key)),
            audit_value(key, after.get(key)),
        )
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


def _tokens(count: int | None) -> str:
    return "no cap" if count is None else f"{count:,}"


def spec_changes(before: BudgetSpec, after: BudgetSpec) -> str:
    """What a save changed, ``daily cap $5.00 → $0.50; hard cap true → false``."""
    rows = [
        f"{label} cap {usd_text(before.cap(key))} → {usd_text(after.cap(key))}"
        for key, label in zip(CAP_KEYS, ("daily", "monthly", "lifetime", "per-call"), strict=True)
        if before.cap(key) != after.cap(key)
    ]
    rows += [
        f"{label} token cap {_tokens(before.cap(key))} → {_tokens(after.cap(key))}"
        for key, label in zip(TOKEN_KEYS, ("daily", "monthly", "lifetime", "per-call"), strict=True)
        if before.cap(key) != after.cap(key)
    ]
    if before.hard_cap != after.hard_cap:
        rows.append(f"hard cap {_json_value(before.hard_cap)} → {_json_value(after.hard_cap)}")
    if before.warn_at != after.warn_at:
        rows.append(f"warn at {_json_value(before.warn_at)} → {_json_value(after.warn_at)}")
    if before.paused != after.paused:
        rows.append(f"paused {_json_value(before.paused)} → {_json_value(after.paused)}")
    if before.timezone != after.timezone:
        rows.append(f"timezone {before.timezone or 'UTC'} → {after.timezone or 'UTC'}")
    return "; ".join(rows)
