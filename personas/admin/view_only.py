"""What a staff account that may view a budget but not change it sees in place of the form.

The form's fields are not attributes of the row (they would read "None"), so the persona,
agent and platform pages show these read-only lines instead, from the row's cached caps.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from personas.admin.budget_form import TOKEN_BUDGET_KEYS, token_text
from personas.admin.display import usd_text


class ViewOnlyBudgetMixin:
    """Mixed into a ``ModelAdmin`` whose first fieldset is the budget form."""

    VIEW_ONLY_BUDGET: tuple[str, ...] = (
        "daily_cap",
        "monthly_cap",
        "lifetime_cap",
        "per_call_cap",
        "token_caps",
        "enforcement",
        "warn_line",
        "day_boundary",
    )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        if obj is None or self.has_change_permission(request, obj):  # type: ignore[attr-defined]
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
    def daily_cap(self, obj: Any) -> str:
        return self._cap(obj.daily_cap_nanos)

    @admin.display(description="Monthly cap")
    def monthly_cap(self, obj: Any) -> str:
        return self._cap(obj.monthly_cap_nanos)

    @admin.display(description="Lifetime cap")
    def lifetime_cap(self, obj: Any) -> str:
        return self._cap(obj.lifetime_cap_nanos)

    @admin.display(description="Per-call cap")
    def per_call_cap(self, obj: Any) -> str:
        return self._cap(obj.per_call_cap_nanos)

    @admin.display(description="Token caps")
    def token_caps(self, obj: Any) -> str:
        caps = [
            f"{label} {token_text(getattr(obj, attr))}"
            for label, attr in zip(
                ("daily", "monthly", "lifetime", "per call"),
                TOKEN_BUDGET_KEYS.values(),
                strict=True,
            )
            if getattr(obj, attr) is not None
        ]
        return " · ".join(caps) if caps else "no token caps"

    @admin.display(description="Warn at")
    def warn_line(self, obj: Any) -> str:
        share = f"{(obj.effective_warn_at * 100).normalize():f} % of a cap"
        return share if obj.warn_at is not None else f"{share} (default)"

    @admin.display(description="Timezone")
    def day_boundary(self, obj: Any) -> str:
        return obj.timezone or "UTC (default)"
