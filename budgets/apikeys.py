"""API keys: create, list, revoke. Keys are stored hashed; the raw key is shown once.

Two scopes: an *operator* key may do everything; an *agent* key may read its own agent's
personas and budgets, check, charge and release holds for them, and nothing else.
"""

from __future__ import annotations

from django.db.models import QuerySet

from budgets.models import ApiKey
from personas.ids import is_valid_id
from personas.models import Agent

NAME_MAX = 50  # the library's column


class ApiKeyError(ValueError):
    """Bad input for a key operation; the message is safe to show an operator."""


def create_key(
    *, scope: str, agent_id: str | None = None, name: str | None = None
) -> tuple[ApiKey, str]:
    """Create a key and return it with its raw value (the only time it exists in clear)."""
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
    else:
        raise ApiKeyError(f"unknown scope {scope!r}")
    name = (name or default_name).strip()
    if not name:
        raise ApiKeyError("the name may not be empty")
    if len(name) > NAME_MAX:
        raise ApiKeyError(f"the name is longer than {NAME_MAX} characters")
    key, raw = ApiKey.objects.create_key(name=name, scope=scope, agent=agent)
    assert isinstance(key, ApiKey)
    return key, raw


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
