"""The budget API, under /api/agents/{agent_id}/personas/{persona_id}/budget."""

from django.urls import URLPattern, URLResolver, path

from budgets import views
from budgets.events.views import EventListView

_base = "agents/<str:agent_id>/personas/<str:persona_id>/budget"

urlpatterns: list[URLPattern | URLResolver] = [
    path("events", EventListView.as_view(), name="event-list"),
    path(_base, views.BudgetView.as_view(), name="budget"),
    path(f"{_base}/check", views.CheckView.as_view(), name="budget-check"),
    path(f"{_base}/charge", views.ChargeView.as_view(), name="budget-charge"),
    path(
        f"{_base}/holds/<str:hold_id>/release",
        views.HoldReleaseView.as_view(),
        name="budget-hold-release",
    ),
]
