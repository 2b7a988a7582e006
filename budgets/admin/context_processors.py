"""The over-cap banner: which personas are at or over a cap, on every admin page.

Lazy: the numbers are read only when a template shows the banner, and only for staff on
admin pages. Cheap: one query over the current window counters of capped personas and
one over active holds (budgets.reports.selectors.alerts), never a scan of the ledger.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject


def spend_alerts(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    match = getattr(request, "resolver_match", None)
    if not (user and user.is_active and user.is_staff):
        return {}
    if match is None or "admin" not in match.namespaces:
        return {}

    def load() -> Any:
        from budgets.reports.selectors import alerts

        return alerts()

    def paused() -> Any:
        from personas.models import Persona

        # The stop switch is shown on every page while it is on: few rows, one query.
        return list(Persona.objects.filter(paused=True).order_by("agent_id", "slug")[:20])

    return {"hal0_alerts": SimpleLazyObject(load), "hal0_paused": SimpleLazyObject(paused)}
