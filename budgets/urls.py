"""The budget API, under /api/agents/{agent_id}/personas/{persona_id}/budget, and
/api/prices."""

from django.urls import URLPattern, URLResolver, path

from budgets import views

_base = "agents/<str:agent_id>/personas/<str:persona_id>/budget"

urlpatterns: list[URLPattern | URLResolver] = [
    path(_base, views.BudgetView.as_view(), name="budget"),
    path(f"{_base}/check", views.CheckView.as_view(), name="budget-check"),
    path(f"{_base}/charge", views.ChargeView.as_view(), name="budget-charge"),
    path("prices", views.PricesView.as_view(), name="prices"),
    path(
        f"{_base}/holds/<str:hold_id>/release",
        views.HoldReleaseView.as_view(),
        name="budget-hold-release",
    ),
]
