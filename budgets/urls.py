"""The budget API, under /api/agents/{agent_id}/personas/{persona_id}/budget, and
/api/prices."""

from django.urls import URLPattern, URLResolver, path

from budgets import views
from budgets.events.views import EventListView
from budgets.reports.api import SpendReportView
from budgets.runs import views as run_views

_base = "agents/<str:agent_id>/personas/<str:persona_id>/budget"

urlpatterns: list[URLPattern | URLResolver] = [
    path("events", EventListView.as_view(), name="event-list"),
    path(_base, views.BudgetView.as_view(), name="budget"),
    path("agents/<str:agent_id>/budget", views.AgentBudgetView.as_view(), name="agent-budget"),
    path("platform/budget", views.PlatformBudgetView.as_view(), name="platform-budget"),
    path(f"{_base}/check", views.CheckView.as_view(), name="budget-check"),
    path(f"{_base}/charge", views.ChargeView.as_view(), name="budget-charge"),
    path("prices", views.PricesView.as_view(), name="prices"),
    path(
        f"{_base}/holds/<str:hold_id>/release",
        views.HoldReleaseView.as_view(),
        name="budget-hold-release",
    ),
    path("spend", SpendReportView.as_view(), name="spend-report"),
]

_runs = "agents/<str:agent_id>/personas/<str:persona_id>/runs"

urlpatterns += [
    path(_runs, run_views.RunListView.as_view(), name="runs"),
    path(f"{_runs}/<str:run_id>", run_views.RunDetailView.as_view(), name="run-detail"),
    path(f"{_runs}/<str:run_id>/extend", run_views.RunExtendView.as_view(), name="run-extend"),
    path(f"{_runs}/<str:run_id>/close", run_views.RunCloseView.as_view(), name="run-close"),
]
