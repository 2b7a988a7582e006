"""Lookups: agents and personas by id, the hot path's one-query read, a persona's spec.

A lookup costs one ``os.stat`` and one query while the persona's file is unchanged; a new
or edited file goes through ``sync_persona`` first.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection

from hal0.errors import BadRequest, NotFound
from personas import paths, seeds
from personas.ids import is_valid_id
from personas.models import Agent, Persona
from personas.services.sync import sync_persona
from personas.toml_store import (
    PersonaMalformed,
    PersonaSpec,
    decode,
    parse_persona_text,
    sha256_bytes,
    signature,
)


def _shown(value: object) -> str:
    """An id as messages quote it: short, and repr() so odd characters stay visible."""
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= 64 else text[:64] + "...")


def resolve_agent(agent_id: str) -> Agent:
    """The agent, or 404 ``agent.unknown`` (also for an id no agent could have)."""
    # Checked before anything else: an invalid id never reaches a query or a path.
    agent = Agent.objects.filter(id=agent_id).first() if is_valid_id(agent_id) else None
    if agent is None:
        raise NotFound(
            f"unknown agent {_shown(agent_id)}",
            code="agent.unknown",
            details={"agent_id": agent_id},
        )
    return agent


def _persona_not_found(agent_id: str, persona_id: str) -> NotFound:
    return NotFound(
        f"persona {_shown(persona_id)} not found",
        code="persona.not_found",
        details={"agent_id": agent_id, "persona_id": persona_id},
    )


def resolve_persona(agent: Agent, persona_id: str) -> Persona:
    """The persona, synced with its file; 404 ``persona.not_found`` when there is no file.

    A persona exists iff its file exists: a file added by hand is imported here, a hand
    edit is picked up (and audited), a malformed file keeps the last good caps and sets
    ``load_error``.
    """
    if not is_valid_id(persona_id):
        raise _persona_not_found(agent.id, persona_id)
    result = sync_persona(agent, persona_id)
    if result is None:
        raise _persona_not_found(agent.id, persona_id)
    return result.persona


# The hot path (every check and charge) looks a persona up with one plain SQL query: the
# ORM spends ~0.4 ms compiling a query, more than the whole budget check may take.
_HOT_COLUMNS = (
    "id",
    "agent_id",
    "slug",
    "daily_cap_nanos",
    "monthly_cap_nanos",
    "lifetime_cap_nanos",
    "per_call_cap_nanos",
    "daily_cap_tokens",
    "monthly_cap_tokens",
    "lifetime_cap_tokens",
    "per_call_cap_tokens",
    "hard_cap",
    "warn_at",
    "timezone",
    "paused",
    "budget_extra",
    "file_signature",
    "load_error",
    "has_good_budget",
)
_SIGNATURE_AT = _HOT_COLUMNS.index("file_signature")
_WARN_AT_QUANTUM = Decimal("0.0001")


@lru_cache(maxsize=4)
def _hot_persona_sql(vendor: str) -> str:
    qn = connection.ops.quote_name
    columns = ", ".join(qn(c) for c in _HOT_COLUMNS)
    table = qn(Persona._meta.db_table)
    return f"SELECT {columns} FROM {table} WHERE {qn('agent_id')} = %s AND {qn('slug')} = %s"  # noqa: S608


@lru_cache(maxsize=4)
def _lock_persona_sql(vendor: str) -> str:
    qn = connection.ops.quote_name
    columns = ", ".join(qn(c) for c in _HOT_COLUMNS)
    table = qn(Persona._meta.db_table)
    # SQLite has no row locks: there the IMMEDIATE transaction already holds the write lock.
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return f"SELECT {columns} FROM {table} WHERE {qn('id')} = %s{lock}"  # noqa: S608


def lock_persona(pk: int) -> Persona:
    """The persona's budget row re-read under its row lock, in one plain query.

    For the budget services' locked transactions (check with reserve, charge, release):
    callers must be inside ``transaction.atomic()``. Like ``find_persona``'s answer it
    holds the budget columns only: read it, never ``save()`` it.
    """
    with connection.cursor() as cursor:
        cursor.execute(_lock_persona_sql(connection.vendor), [pk])
        values = cursor.fetchone()
    if values is None:
        raise Persona.DoesNotExist(f"persona {pk} no longer exists")
    return _persona_from_row(values)


def _persona_from_row(values: tuple[Any, ...]) -> Persona:
    fields = dict(zip(_HOT_COLUMNS, values, strict=True))
    warn_at = fields["warn_at"]
    extra = fields["budget_extra"]
    fields.update(
        hard_cap=bool(fields["hard_cap"]),
        paused=bool(fields["paused"]),
        has_good_budget=bool(fields["has_good_budget"]),
        # SQLite hands decimals back as numbers; through str() they stay exact to 4 places.
        warn_at=None if warn_at is None else Decimal(str(warn_at)).quantize(_WARN_AT_QUANTUM),
        budget_extra=json.loads(extra) if isinstance(extra, str) else (extra or {}),
        timezone=fields["timezone"] or "",
        load_error=fields["load_error"] or "",
    )
    persona = Persona(**fields)
    persona._state.adding = False
    persona._state.db = connection.alias
    return persona


def persona_file_signature(agent_id: str, persona_id: str) -> str | None:
    """The persona file's stat signature, ``None`` for an invalid id or a missing file."""
    if not (is_valid_id(agent_id) and is_valid_id(persona_id)):
        return None
    # Same path as paths.persona_file (ids validated just above), without pathlib's cost.
    file = os.path.join(settings.HAL0_DATA_DIR, "agents", agent_id, "personas", persona_id)
    try:
        return signature(file + ".toml")
    except FileNotFoundError:
        return None


def hot_persona_query() -> tuple[str, str, int]:
    """For callers that fold the persona lookup into a larger query (the budget check):
    ``(columns, table, width)``. Select ``columns`` from ``table`` (aliased ``p``) where
    ``p.agent_id`` and ``p.slug`` match, and hand the first ``width`` values of the row
    to :func:`persona_from_hot_row` once :func:`hot_row_is_current` accepts them."""
    return _hot_persona_query(connection.vendor)


@lru_cache(maxsize=4)
def _hot_persona_query(vendor: str) -> tuple[str, str, int]:
    qn = connection.ops.quote_name
    columns = ", ".join(f"p.{qn(c)}" for c in _HOT_COLUMNS)
    return columns, qn(Persona._meta.db_table), len(_HOT_COLUMNS)


def hot_row_is_current(values: tuple[Any, ...] | None, sig: str) -> bool:
    """Does the row cache the file as it is now (same stat signature)?"""
    return values is not None and values[_SIGNATURE_AT] == sig


def persona_from_hot_row(values: tuple[Any, ...]) -> Persona:
    return _persona_from_row(values)


def find_persona(agent_id: str, persona_id: str) -> Persona:
    """``resolve_persona(resolve_agent(agent_id), persona_id)``, fast when nothing changed.

    One ``os.stat`` and one query when the file's signature matches the row; anything else
    (unknown agent or persona, a new or edited file) takes the full path, with its errors.
    """
    sig = persona_file_signature(agent_id, persona_id)
    if sig is not None:
        with connection.cursor() as cursor:
            cursor.execute(_hot_persona_sql(connection.vendor), [agent_id, persona_id])
            values = cursor.fetchone()
        if hot_row_is_current(values, sig):
            return _persona_from_row(values)
    return resolve_persona(resolve_agent(agent_id), persona_id)


def list_personas(agent: Agent) -> list[Persona]:
    """Every persona of the agent (one per file), synced, ordered by id."""
    folder = paths.personas_dir(agent.id)
    stems = sorted(p.stem for p in folder.glob("*.toml") if is_valid_id(p.stem))
    found = (sync_persona(agent, stem) for stem in stems)
    return [result.persona for result in found if result is not None]


class _NotTheRowsVersion(Exception):
    """The file changed after the row was synced: its spec is used once, never cached."""

    def __init__(self, spec: PersonaSpec) -> None:
        super().__init__()
        self.spec = spec


@lru_cache(maxsize=1024)
def _spec_of_version(agent_id: str, persona_id: str, sha256: str) -> PersonaSpec:
    # Keyed by the content hash the row was synced from: while the file is unchanged (its
    # stat signature matched, so the row is current) a request never re-parses it.
    # Exceptions are not cached, so a file that moved on is parsed again next time.
    data = paths.persona_file(agent_id, persona_id).read_bytes()
    spec = parse_persona_text(decode(data), stem=persona_id)
    if sha256_bytes(data) != sha256:
        raise _NotTheRowsVersion(spec)
    return spec


def persona_spec(persona: Persona) -> PersonaSpec | None:
    """The persona's file parsed (prompt, model...), ``None`` if unreadable.

    Parsed once per version of the file and worker; ``persona`` must be synced (it comes
    from ``resolve_persona``), so its ``content_sha256`` names the version on disk.
    """
    try:
        return _spec_of_version(persona.agent_id, persona.slug, persona.content_sha256)
    except _NotTheRowsVersion as stale:
        return stale.spec
    except (OSError, PersonaMalformed):
        return None


def require_good_budget(persona: Persona) -> None:
    """400 ``persona.malformed`` while the persona's file cannot be parsed."""
    if persona.load_error:
        raise BadRequest(
            f"persona file {paths.display_name(persona.agent_id, persona.slug)} is malformed: "
            f"{persona.load_error}",
            code="persona.malformed",
            details={"agent_id": persona.agent_id, "persona_id": persona.slug},
        )


def _read_active(agent_id: str) -> str | None:
    try:
        return paths.active_file(agent_id).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        return None


def active_persona_id(agent_id: str) -> str | None:
    """The active persona: what ``active.txt`` names if that persona exists, else hermes."""
    named = _read_active(agent_id)
    candidates = [c for c in (named, seeds.DEFAULT_ACTIVE) if c and is_valid_id(c)]
    existing = {c for c in candidates if paths.persona_file(agent_id, c).is_file()}
    return seeds.choose_active(named, existing)
