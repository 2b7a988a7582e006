"""Read API for agents and personas, mounted under /api/."""

from django.urls import URLPattern, URLResolver, path

from personas import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("agents", views.AgentListView.as_view(), name="agent-list"),
    path("agents/<str:agent_id>", views.AgentDetailView.as_view(), name="agent-detail"),
    path(
        "agents/<str:agent_id>/personas",
        views.PersonaListView.as_view(),
        name="persona-list",
    ),
    path(
        "agents/<str:agent_id>/personas/<str:persona_id>",
        views.PersonaDetailView.as_view(),
        name="persona-detail",
    ),
]
