"""API keys: create, list, revoke. Keys are stored hashed; the raw key is shown once.

Two scopes: an *operator* key may do everything; an *agent* key may read its own agent's
personas and budgets, check, charge and release holds for them, and nothing else. An agent
key may be narrowed to one persona of its agent: every other persona is then not found.
"""

from __future__ import annotations

from django.db.models import QuerySet

from budgets.models import ApiKey
from hal0.errors import ApiError
from personas.ids import is_valid_id
from personas.models import Agent
from personas.services import resolve_persona

NAME_MAX = 50  # the library's column


class ApiKeyError(ValueError):
    """Bad input for a key operation; the message is safe to show an operator."""


def create_key(
    *,
    scope: str,
    agent_id: str | None = None,
    persona_id: str | None = None,
    name: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its raw value (the only time it exists in clear).

    ``persona_id`` (agent keys only) narrows the key to that persona of its agent.
    """
    if persona_id is not None and scope != ApiKey.Scope.AGENT:
        raise ApiKeyError("only an agent key can be scoped to a persona (give --agent)")
    if scope == ApiKey.Scope.OPERATOR:
        if agent_id is not None:
            raise ApiKeyError("an operator key is not tied to an agent")
        agent = None
        default_name = "operator"
    elif scope == ApiKey.Scope.AGENT:
        if not is_valid_id(agent_id):
            raise ApiKeyError("an agent key needs a valid agent id")
        agent = Agent.objects.filter(pk=agent_id).first()
        if agent is None:
            raise ApiKeyError(f"no agent {agent_id!r}; run `manage.py reprovision {agent_id}`")
        default_name = f"agent {agent_id}"
        if persona_id is not None:
            _require_persona(agent, persona_id)
            default_name = f"persona {agent_id}/{persona_id}"
    else:
        raise ApiKeyError(f"unknown scope {scope!r}")
    name = (name or default_name).strip()
    if not name:
        raise ApiKeyError("the name may not be empty")
    if len(name) > NAME_MAX:
        raise ApiKeyError(f"the name is longer than {NAME_MAX} characters")
    key, raw = ApiKey.objects.create_key(
        name=name, scope=scope, agent=agent, persona_slug=persona_id or ""
    )
    assert isinstance(key, ApiKey)
    return key, raw


def _require_persona(agent: Agent, persona_id: str) -> None:
    # A persona exists iff its file does: resolve_persona imports a file added by hand.
    try:
        resolve_persona(agent, persona_id)
    except ApiError as exc:
        shown = persona_id if len(persona_id) <= 64 else persona_id[:64] + "..."
        raise ApiKeyError(
            f"agent {agent.id!r} has no persona {shown!r} (no personas/{shown}.toml)"
        ) from exc


def list_keys() -> QuerySet[ApiKey]:
    return ApiKey.objects.select_related("agent").order_by("created", "prefix")


def revoke_key(prefix: str) -> tuple[ApiKey, bool]:
    """Revoke the key with this prefix; ``(key, False)`` when it already was revoked."""
    key = ApiKey.objects.filter(prefix=prefix).first()
    if key is None:
        raise ApiKeyError(f"no API key with prefix {prefix[:16]!r}")
    if key.revoked:
        return key, False
    key.revoked = True
    key.save(update_fields=["revoked"])
    return key, True
