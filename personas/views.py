"""Read API for agents and personas. Views are thin: look up through the services, render.

Authentication and permissions come from ``REST_FRAMEWORK`` defaults (one setting for the
whole API); nothing here sets them. Every error leaves in the envelope (``hal0.errors``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from personas import openapi, services
from personas.models import Agent, Persona
from personas.toml_store import budget_spec_from_persona


def _visible(request: Request, agent_id: str) -> bool:
    """Whether the caller may see this agent (agent-scoped keys see only their own).

    The authenticated user is the API key's principal; ``personas`` does not import the
    auth code (``budgets``), it only asks the principal.
    """
    may_see = getattr(request.user, "may_see_agent", None)
    return bool(may_see(agent_id)) if callable(may_see) else True


def _persona_visible(request: Request, agent_id: str, persona_id: str) -> bool:
    """Whether the caller may see this persona (a persona-scoped key sees only its own)."""
    may_see = getattr(request.user, "may_see_persona", None)
    return bool(may_see(agent_id, persona_id)) if callable(may_see) else True


def _active(request: Request, agent_id: str) -> str | None:
    # A persona-scoped key is not told which other persona is active: null instead.
    active = services.active_persona_id(agent_id)
    if active is not None and not _persona_visible(request, agent_id, active):
        return None
    return active


def agent_data(agent: Agent, request: Request) -> dict[str, Any]:
    return {
        "id": agent.id,
        "display_name": agent.display_name or agent.id,
        "active_persona": _active(request, agent.id),
        "created_at": agent.created_at,
    }


def persona_summary(persona: Persona, active: str | None) -> dict[str, Any]:
    return {
        "id": persona.slug,
        "display_name": persona.display_name or persona.slug,
        "summary": persona.summary,
        "active": persona.slug == active,
        # The caps in force: while the file is malformed, the last good ones. A file that
        # was never valid has none; null says so instead of showing "no caps".
        "budget": (budget_spec_from_persona(persona).to_api() if persona.has_good_budget else None),
        "load_error": persona.load_error or None,
    }


class AgentListView(APIView):
    @extend_schema(
        operation_id="agents_list",
        summary="List agents",
        responses={200: openapi.AgentListSerializer, **openapi.error_responses()},
    )
    def get(self, request: Request) -> Response:
        agents = [a for a in Agent.objects.order_by("id") if _visible(request, a.id)]
        return Response({"agents": [agent_data(a, request) for a in agents]})


class AgentDetailView(APIView):
    @extend_schema(
        summary="One agent and its persona ids",
        responses={200: openapi.AgentDetailSerializer, **openapi.error_responses("agent.unknown")},
    )
    def get(self, request: Request, agent_id: str) -> Response:
        agent = services.resolve_agent(agent_id)
        data = agent_data(agent, request)
        personas = services.list_personas(agent)
        data["personas"] = [p.slug for p in personas if _persona_visible(request, agent.id, p.slug)]
        return Response(data)


class PersonaListView(APIView):
    @extend_schema(
        operation_id="agents_personas_list",
        summary="An agent's personas with their budget blocks",
        responses={200: openapi.PersonaListSerializer, **openapi.error_responses("agent.unknown")},
    )
    def get(self, request: Request, agent_id: str) -> Response:
        agent = services.resolve_agent(agent_id)
        personas = [
            p for p in services.list_personas(agent) if _persona_visible(request, agent.id, p.slug)
        ]
        active = _active(request, agent.id)
        return Response(
            {
                "agent_id": agent.id,
                "active": active,
                "personas": [persona_summary(p, active) for p in personas],
            }
        )


class PersonaDetailView(APIView):
    @extend_schema(
        summary="One persona: its fields, budget block, whether it is active",
        responses={
            200: openapi.PersonaDetailSerializer,
            **openapi.error_responses("agent.unknown", "persona.not_found"),
        },
    )
    def get(self, request: Request, agent_id: str, persona_id: str) -> Response:
        agent = services.resolve_agent(agent_id)
        persona = services.resolve_persona(agent, persona_id)
        data = persona_summary(persona, services.active_persona_id(agent.id))
        spec = None if persona.load_error else services.persona_spec(persona)
        data["agent_id"] = agent.id
        data["system_prompt"] = spec.system_prompt if spec else None
        data["preferred_upstream"] = spec.preferred_upstream if spec else None
        data["preferred_model"] = spec.preferred_model if spec else None
        return Response(data)
