"""The over-cap banner: which personas, agents and the platform are at or over a cap,
and how many charges have no price, on every admin page.

Lazy: the numbers are read only when a template shows the banner, and only for staff on
admin pages. Cheap: one query over the current window counters of capped personas and
one over active holds (budgets.reports.selectors.alerts), the capped agents' counters (a
statement per timezone among them) and holds, a capped platform's (budgets.reports.scopes),
and one sum of the lifetime counters' ``unpriced``; never a scan of the ledger.
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
        from budgets.reports.scopes import scope_alerts, unpriced_charges
        from budgets.reports.selectors import alerts

        found = alerts()
        found.scopes = scope_alerts()
        found.unpriced = unpriced_charges()
        return found

    def paused() -> Any:
        from django.urls import reverse

        from personas.models import Agent, Persona, Platform

        # The stop switch is shown on every page while it is on, at any scope: the
        # platform, agents, personas (few rows, three small queries).
        found = [
            ("the platform", reverse("admin:personas_platform_changelist"))
            for _ in Platform.objects.filter(paused=True)[:1]
        ]
        found += [
            (f"agent {a}", reverse("admin:personas_agent_change", args=[a]))
            for a in Agent.objects.filter(paused=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:20]
        ]
        found += [
            (str(p), reverse("admin:personas_persona_change", args=[p.pk]))
            for p in Persona.objects.filter(paused=True).order_by("agent_id", "slug")[:20]
        ]
        return found

    return {"hal0_alerts": SimpleLazyObject(load), "hal0_paused": SimpleLazyObject(paused)}
