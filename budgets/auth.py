"""API authentication: ``Authorization: Bearer <key>`` and what each key may do.

Switched on for every API view in ``settings.REST_FRAMEWORK``. DRF runs authentication
and permissions before a view reads its body, so a missing or wrong key is a 401 even
when the body is malformed.

- no key: 401 ``auth.missing`` (unless ``HAL0_REQUIRE_API_KEY`` is off: then an
  anonymous request acts as an operator; for a local, hal0-compatible setup only)
- unknown, revoked or expired key, or a malformed header: 401 ``auth.invalid``
- an agent key on another agent's URL: 404 ``agent.unknown``, the same answer as for an
  agent that does not exist, so neither the data nor its existence leaks
- a persona-scoped agent key on another persona's URL: 404 ``persona.not_found``, the
  same answer as for a persona that does not exist
- an agent key changing a budget (PUT, or any write other than POST check/charge/release
  on its own agent), or reading the platform's budget: 403 ``auth.forbidden``

Models are imported inside functions: DRF loads these classes while Django is still
starting.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from hal0.errors import NotFound

if TYPE_CHECKING:
    from budgets.models import ApiKey

# Writing last_used_at on every request would turn each read into a write (and on SQLite
# take the database's write lock); once a minute is enough to tell a live key.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
# Agent keys may POST (check, charge, release a hold); other writes are operator-only.
AGENT_WRITE_METHODS = frozenset({"POST"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``request.user`` on every authenticated API request."""

    scope: str  # "operator" | "agent"
    agent_id: str | None  # set for agent keys only
    key_prefix: str | None  # None for the anonymous operator of an open local setup
    name: str
    # Set for an agent key scoped to one persona of its agent: it sees no other persona.
    persona_id: str | None = None

    is_authenticated = True
    is_anonymous = False

    @property
    def is_operator(self) -> bool:
        return self.scope == "operator"

    @property
    def actor(self) -> str:
        """How audit records name this caller (never the key itself)."""
        if self.key_prefix is None:
            return "anonymous (HAL0_REQUIRE_API_KEY off)"
        return f"key:{self.key_prefix} ({self.name})"

    def may_see_agent(self, agent_id: str) -> bool:
        return self.is_operator or self.agent_id == agent_id

    def may_see_persona(self, agent_id: str, persona_id: str) -> bool:
        if not self.may_see_agent(agent_id):
            return False
        return self.persona_id is None or self.persona_id == persona_id


OPEN_OPERATOR = Principal(scope="operator", agent_id=None, key_prefix=None, name="anonymous")


def principal_of(request: Any) -> Principal | None:
    user = getattr(request, "user", None)
    return user if isinstance(user, Principal) else None


def actor_of(request: Any) -> str:
    """The audit name of whoever made ``request``."""
    principal = principal_of(request)
    return principal.actor if principal else "anonymous"


def unknown_persona(agent_id: str, persona_id: str) -> NotFound:
    """The 404 for a persona this key may not see: word for word what
    ``personas.services.resolve_persona`` answers for a persona that does not exist."""
    shown = persona_id if len(persona_id) <= 64 else persona_id[:64] + "..."
    return NotFound(
        f"persona {shown!r} not found",
        code="persona.not_found",
        details={"agent_id": agent_id, "persona_id": persona_id},
    )


def unknown_agent(agent_id: str) -> NotFound:
    """The 404 for an agent this key may not see: word for word what
    ``personas.services.resolve_agent`` answers for an agent that does not exist."""
    shown = agent_id if len(agent_id) <= 64 else agent_id[:64] + "..."
    return NotFound(
        f"unknown agent {shown!r}", code="agent.unknown", details={"agent_id": agent_id}
    )


class BearerApiKeyAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Principal, ApiKey | None] | None:
        header = get_authorization_header(request).split()
        if not header:
            if not settings.HAL0_REQUIRE_API_KEY:
                return OPEN_OPERATOR, None
            return None  # the permission check answers 401 auth.missing
        if header[0].lower() != self.keyword or len(header) != 2:
            raise exceptions.AuthenticationFailed("expected 'Authorization: Bearer <key>'")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("invalid API key") from exc
        key = _lookup(raw)
        _touch(key)
        principal = Principal(
            scope=key.scope,
            agent_id=key.agent_id,
            key_prefix=key.prefix,
            name=key.name,
            persona_id=key.persona_slug or None,
        )
        return principal, key

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) when no credentials were sent.
        return 'Bearer realm="api"'


_KEY_COLUMNS = (
    "id",
    "prefix",
    "hashed_key",
    "revoked",
    "expiry_date",
    "name",
    "scope",
    "agent_id",
    "persona_slug",
    "last_used_at",
)


@lru_cache(maxsize=4)
def _key_sql(vendor: str) -> str:
    from budgets.models import ApiKey

    qn = connection.ops.quote_name
    columns = ", ".join(qn(c) for c in _KEY_COLUMNS)
    table = qn(ApiKey._meta.db_table)
    return f"SELECT {columns} FROM {table} WHERE {qn('prefix')} = %s AND NOT {qn('revoked')}"  # noqa: S608


def _aware(value: Any) -> dt.datetime | None:
    # Plain SQL on SQLite gives naive UTC datetimes; the ORM would have made them aware.
    if isinstance(value, dt.datetime) and timezone.is_naive(value):
        return timezone.make_aware(value, dt.UTC)
    return value if isinstance(value, dt.datetime) else None


def _lookup(raw: str) -> ApiKey:
    """The live key for ``raw``, else 401 ``auth.invalid``.

    Same rules as the key library's ``get_from_key`` (find by the public prefix, compare
    hashes in constant time, revoked keys are not candidates), in one plain SQL query:
    this runs on every API request and the ORM's query compilation alone costs ~0.4 ms.
    """
    from budgets.models import ApiKey

    prefix, _, _ = raw.partition(".")
    with connection.cursor() as cursor:
        cursor.execute(_key_sql(connection.vendor), [prefix])
        values = cursor.fetchone()
    if values is None:
        raise exceptions.AuthenticationFailed("invalid API key")
    fields = dict(zip(_KEY_COLUMNS, values, strict=True))
    fields["revoked"] = bool(fields["revoked"])
    fields["expiry_date"] = _aware(fields["expiry_date"])
    fields["last_used_at"] = _aware(fields["last_used_at"])
    key = ApiKey(**fields)
    key._state.adding = False
    key._state.db = connection.alias
    generator = ApiKey.objects.key_generator
    if not generator.using_preferred_hasher(key.hashed_key):
        # A key hashed by an older scheme: let the library verify (and upgrade) it.
        try:
            found = ApiKey.objects.get_from_key(raw)
        except ApiKey.DoesNotExist as exc:
            raise exceptions.AuthenticationFailed("invalid API key") from exc
        assert isinstance(found, ApiKey)
        key = found
    elif not generator.verify(raw, key.hashed_key):
        raise exceptions.AuthenticationFailed("invalid API key")
    if key.has_expired:
        raise exceptions.AuthenticationFailed("invalid API key")
    return key


def _touch(key: ApiKey) -> None:
    from budgets.models import ApiKey

    now = timezone.now()
    last = key.last_used_at
    if last is not None and now - last < LAST_USED_RESOLUTION:
        return
    # Conditional on the value we read, so concurrent requests write it once.
    ApiKey.objects.filter(pk=key.pk, last_used_at=last).update(last_used_at=now)


class ApiKeyPermission(BasePermission):
    """Operator keys: everything. Agent keys: their own agent, reads and POSTs only."""

    def has_permission(self, request: Request, view: Any) -> bool:
        principal = principal_of(request)
        if principal is None:
            return False  # DRF turns this into 401 auth.missing (no credentials sent)
        if principal.is_operator:
            return True
        kwargs = getattr(view, "kwargs", {})
        agent_id = kwargs.get("agent_id")
        if agent_id is not None and agent_id != principal.agent_id:
            raise unknown_agent(str(agent_id))
        persona_id = kwargs.get("persona_id")
        if persona_id is not None and not principal.may_see_persona(str(agent_id), persona_id):
            # A persona-scoped key: another persona of its agent reads as one that does
            # not exist (before the body is looked at, as for another agent).
            raise unknown_persona(str(agent_id), str(persona_id))
        if getattr(view, "operator_only", False):
            raise exceptions.PermissionDenied("this needs an operator key")
        if request.method in SAFE_METHODS:
            return True
        if agent_id is not None and request.method in AGENT_WRITE_METHODS:
            return True
        raise exceptions.PermissionDenied("this needs an operator key")
