"""Agents and personas: lookups, file sync, and the one writer of persona files.

The TOML file is the truth; the Persona row caches its last good parse plus the file's
stat signature, so a lookup costs one ``os.stat`` and one query while the file is
unchanged. ``write_budget`` is the only code that writes a persona file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import tomlkit
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from tomlkit.exceptions import TOMLKitError

from hal0.errors import BadRequest, Conflict, NotFound
from personas import paths, seeds
from personas.ids import is_valid_id
from personas.models import Agent, BudgetChange, Persona
from personas.toml_store import (
    KNOWN_KEYS,
    BudgetInvalid,
    BudgetSpec,
    PersonaMalformed,
    PersonaSpec,
    budget_spec_from_persona,
    decode,
    jsonable,
    parse_budget_mapping,
    parse_persona_text,
    render_budget,
    sha256_bytes,
    sha256_text,
    signature,
    write_atomic,
)

__all__ = [
    "SyncResult",
    "active_persona_id",
    "budget_spec_from_persona",
    "find_persona",
    "hot_persona_query",
    "hot_row_is_current",
    "list_personas",
    "parse_budget_body",
    "persona_file_signature",
    "persona_from_hot_row",
    "persona_spec",
    "require_good_budget",
    "resolve_agent",
    "resolve_persona",
    "sync_persona",
    "write_budget",
]

log = logging.getLogger(__name__)

FILE_EDIT_ACTOR = "file edit"
Outcome = Literal["created", "updated", "unchanged", "malformed"]


def _shown(value: object) -> str:
    """An id as messages quote it: short, and repr() so odd characters stay visible."""
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= 64 else text[:64] + "...")


# ---------------------------------------------------------------------------------------
# Lookups


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
    "hard_cap",
    "warn_at",
    "timezone",
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
        return signature(Path(file + ".toml"))
    except FileNotFoundError:
        return None


def hot_persona_query() -> tuple[str, str, int]:
    """For callers that fold the persona lookup into a larger query (the budget check):
    ``(columns, table, width)``. Select ``columns`` from ``table`` (aliased ``p``) where
    ``p.agent_id`` and ``p.slug`` match, and hand the first ``width`` values of the row
    to :func:`persona_from_hot_row` once :func:`hot_row_is_current` accepts them."""
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


# ---------------------------------------------------------------------------------------
# File -> row


@dataclass(frozen=True)
class SyncResult:
    persona: Persona
    outcome: Outcome


def sync_persona(agent: Agent, persona_id: str, *, force: bool = False) -> SyncResult | None:
    """Bring the row in line with the file; ``None`` when the file does not exist.

    Re-parses only when the stat signature differs from the row's (or ``force``).
    """
    path = paths.persona_file(agent.id, persona_id)
    try:
        sig = signature(path)
    except FileNotFoundError:
        return None
    row = Persona.objects.filter(agent=agent, slug=persona_id).first()
    if row is not None and row.file_signature == sig and not force:
        return SyncResult(row, _settled(row))
    with transaction.atomic():
        created = False
        if row is None:
            row, created = Persona.objects.get_or_create(agent=agent, slug=persona_id)
        # Lock the row: two requests that both saw the change must not both apply (and
        # audit) it. The second one finds the signature already current and stops.
        row = Persona.objects.select_for_update().get(pk=row.pk)
        try:
            sig = signature(path)
            data: bytes | None = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            # A folder, or a file this process may not read, where the persona should be:
            # malformed (the last good caps stay), never a 500.
            data, error = None, _unreadable(exc)
        if row.file_signature == sig and not created and not force:
            return SyncResult(row, _settled(row))
        if data is None:
            return SyncResult(row, _mark_malformed(row, error, sig, ""))
        return SyncResult(row, _apply_file(row, data, sig, created=created))


def _settled(row: Persona) -> Outcome:
    """The outcome for a file already read at its current signature.

    A file that was malformed when it was read (by a request, say) is still malformed:
    ``reprovision`` must report it and fail, whoever saw the breakage first.
    """
    return "malformed" if row.load_error else "unchanged"


def _set_budget(row: Persona, spec: BudgetSpec) -> None:
    row.daily_cap_nanos = spec.daily_nanos
    row.monthly_cap_nanos = spec.monthly_nanos
    row.lifetime_cap_nanos = spec.lifetime_nanos
    row.per_call_cap_nanos = spec.per_call_nanos
    row.hard_cap = spec.hard_cap
    row.warn_at = spec.warn_at
    row.timezone = spec.timezone or ""
    row.budget_extra = jsonable(spec.extra)


def _budget_state(row: Persona) -> tuple[dict[str, Any], Any]:
    return budget_spec_from_persona(row).to_api(), row.budget_extra


def _mark_malformed(row: Persona, message: str, sig: str, sha: str) -> Outcome:
    # A malformed file never lifts a cap: the caps stay the last good ones.
    if row.load_error != message:
        log.warning("persona %s is malformed, last good caps stay: %s", row, message)
    row.load_error = message
    row.file_signature = sig
    row.content_sha256 = sha
    row.save(update_fields=["load_error", "file_signature", "content_sha256", "updated_at"])
    return "malformed"


def _apply_file(row: Persona, data: bytes, sig: str, *, created: bool) -> Outcome:
    """Parse ``data`` (the file's bytes, read after ``sig`` was taken) into the locked row."""
    sha = sha256_bytes(data)
    try:
        spec = parse_persona_text(decode(data), stem=row.slug)
    except PersonaMalformed as exc:
        return _mark_malformed(row, exc.message, sig, sha)

    before = _budget_state(row) if row.has_good_budget else None
    was_malformed = bool(row.load_error)
    old_fields = (row.display_name, row.summary)
    _set_budget(row, spec.budget)
    row.display_name = spec.display_name[:200]
    row.summary = spec.summary
    row.load_error = ""
    row.has_good_budget = True
    row.file_signature = sig
    row.content_sha256 = sha
    row.loaded_at = timezone.now()
    row.save()
    after = _budget_state(row)
    if before is not None and before[0] != after[0]:
        # Someone changed the caps by editing the file: audit it like any other change.
        BudgetChange.objects.create(
            persona=row,
            actor=FILE_EDIT_ACTOR,
            via=BudgetChange.Via.FILE,
            before=before[0],
            after=after[0],
        )
        log.info("persona %s: caps changed by a hand edit of its file", row)
    if created:
        return "created"
    changed = was_malformed or before != after or old_fields != (row.display_name, row.summary)
    return "updated" if changed else "unchanged"


# ---------------------------------------------------------------------------------------
# Writes


def parse_budget_body(mapping: Any) -> BudgetSpec:
    """A PUT body -> spec; 400 ``budget.invalid`` naming the key and the reason.

    Unknown keys are refused here (unlike in the file): a typo such as ``daily_cap`` would
    otherwise replace the whole block without the cap the client meant to set.
    """
    if not isinstance(mapping, dict):
        raise BadRequest("request body must be a JSON object", code="budget.invalid_body")
    for key in mapping:
        if key not in KNOWN_KEYS:
            raise BadRequest(
                f"{_shown(key)} is not a budget key (known: {', '.join(KNOWN_KEYS)})",
                code="budget.invalid",
                details={"key": str(key)[:64]},
            )
    try:
        return parse_budget_mapping(mapping)
    except BudgetInvalid as exc:
        raise BadRequest(
            exc.message,
            code="budget.invalid",
            details={"key": exc.key} if exc.key else {},
        ) from exc


def write_budget(
    persona: Persona,
    spec: BudgetSpec,
    *,
    actor: str,
    via: str,
    expected_sha256: str | None = None,
) -> Persona:
    """Set a persona's ``[persona.budget]``: the one function that writes a persona file.

    Rewrites only that block (comments and other tables stay byte for byte), atomically;
    updates the row and records a ``BudgetChange``. 409 ``persona.conflict`` when
    ``expected_sha256`` is given and the file is no longer that version.
    """
    path = paths.persona_file(persona.agent_id, persona.slug)
    # Take in (and audit) a hand edit not seen yet, in its own transaction: it happened
    # whatever becomes of this write (a conflict below rolls back only the write).
    sync_persona(persona.agent, persona.slug)
    with transaction.atomic():
        # Two writers (API, admin, a command) must not interleave read-modify-write of one
        # file: the row lock serializes them on PostgreSQL; on SQLite the IMMEDIATE
        # transaction already holds the database write lock.
        row = Persona.objects.select_for_update().get(pk=persona.pk)
        try:
            sig = signature(path)
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise _persona_not_found(row.agent_id, row.slug) from exc
        sha = sha256_bytes(data)
        if row.file_signature != sig or row.content_sha256 != sha:
            # A hand edit that landed just now: take it in before writing over it.
            _apply_file(row, data, sig, created=False)
        if expected_sha256 is not None and expected_sha256 != sha:
            raise Conflict(
                "the persona's file changed since it was read; nothing was written",
                code="persona.conflict",
                details={
                    "budget": budget_spec_from_persona(row).to_api(),
                    "sha256": sha,
                    "load_error": row.load_error or None,
                },
            )
        require_good_budget(row)
        text = decode(data)
        new_text = render_budget(text, spec)
        before = budget_spec_from_persona(row).to_api()
        if new_text != text:
            write_atomic(path, new_text)
            # If the commit below fails, the row keeps the old signature, so the next
            # lookup re-reads the file: file and row never disagree for long.
            sig = signature(path)
            sha = sha256_text(new_text)
        written = parse_persona_text(new_text, stem=row.slug).budget
        _set_budget(row, written)
        row.file_signature = sig
        row.content_sha256 = sha
        row.loaded_at = timezone.now()
        row.save()
        after = written.to_api()
        if before != after:
            BudgetChange.objects.create(
                persona=row, actor=actor[:200], via=via, before=before, after=after
            )
    return row


# ---------------------------------------------------------------------------------------
# Provisioning (manage.py reprovision)


class InvalidAgentId(ValueError):
    """An agent id that could never name a folder; the command turns it into an error."""


@dataclass
class ProvisionReport:
    agent_id: str
    agent_created: bool = False
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    malformed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    backups: list[str] = field(default_factory=list)
    active: str | None = None

    def summary(self) -> str:
        return f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}"

    def count(self, outcome: Outcome) -> None:
        if outcome == "created":
            self.created += 1
        elif outcome == "updated":
            self.updated += 1
        elif outcome == "unchanged":
            self.unchanged += 1


def all_agent_ids() -> list[str]:
    """Every agent folder under the data folder plus every agent row, sorted."""
    ids = set(Agent.objects.values_list("id", flat=True))
    root = paths.agents_root()
    if root.is_dir():
        ids.update(p.name for p in root.iterdir() if p.is_dir() and is_valid_id(p.name))
    return sorted(ids)


def misnamed_agent_folders() -> list[str]:
    """Folders under ``agents/`` whose names can never be an agent id (``--all`` skips them)."""
    root = paths.agents_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not is_valid_id(p.name))


def _repaired_seed_text(seed: seeds.Seed, current: str, row: Persona | None) -> str:
    """The seed's canonical text carrying the operator's ``[persona.budget]`` block.

    A parseable file gives its block verbatim (comments included); a malformed one gives
    the row's last good caps, so a repair never lifts a cap.
    """
    canonical = tomlkit.parse(seed.text)
    try:
        parse_persona_text(current, stem=seed.id)
        old_budget = tomlkit.parse(current)["persona"].get("budget")
    except (PersonaMalformed, TOMLKitError, KeyError, TypeError):
        old_budget = None
    if old_budget is not None:
        canonical["persona"]["budget"] = old_budget
        text = tomlkit.dumps(canonical)
    elif row is not None and row.has_good_budget:
        text = render_budget(seed.text, budget_spec_from_persona(row))
    else:
        text = seed.text
    return text.rstrip("\n") + "\n"


def _backup(path: Path, now: dt.datetime) -> Path:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    backup = path.with_name(f"{path.name}.bak-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.bak-{stamp}-{n}")
    return backup


def _preview(agent_id: str, agent: Agent | None, persona_id: str) -> Outcome:
    """What syncing this file would do, without writing anything (``--dry-run``)."""
    path = paths.persona_file(agent_id, persona_id)
    row = None
    if agent is not None:
        row = Persona.objects.filter(agent=agent, slug=persona_id).first()
    if row is not None and row.file_signature == signature(path):
        return _settled(row)
    try:
        spec = parse_persona_text(decode(path.read_bytes()), stem=persona_id)
    except (PersonaMalformed, OSError):
        return "malformed"
    if row is None:
        return "created"
    same = (
        not row.load_error
        and row.has_good_budget
        and budget_spec_from_persona(row).to_api() == spec.budget.to_api()
        and (row.display_name, row.summary) == (spec.display_name, spec.summary)
    )
    return "unchanged" if same else "updated"


def provision_agent(
    agent_id: str, *, repair: bool = False, dry_run: bool = False
) -> ProvisionReport:
    """Create the agent and its folders, seed missing personas, import every persona file.

    Idempotent: a second run finds everything in place and changes nothing. ``repair``
    restores the seed personas' canonical text (keeping the operator's budget block, with a
    timestamped backup of the replaced file beside it). ``dry_run`` reports and writes
    nothing, neither files nor rows.
    """
    if not is_valid_id(agent_id):
        raise InvalidAgentId(
            f"invalid agent id {_shown(agent_id)}: use 1-64 lower-case letters, digits, "
            "'_' or '-', starting with a letter or digit"
        )
    report = ProvisionReport(agent_id=agent_id)
    folder = paths.personas_dir(agent_id)
    if not dry_run:
        # The folder first: when it cannot be made (a file in its way), no row is left
        # behind for an agent that has nowhere to keep its personas.
        folder.mkdir(parents=True, exist_ok=True)
    agent = Agent.objects.filter(id=agent_id).first()
    if agent is None:
        report.agent_created = True
        if not dry_run:
            agent, _ = Agent.objects.get_or_create(id=agent_id, defaults={"display_name": agent_id})

    # Seeds the operator does not have yet, or (repair) whose text drifted from canonical.
    new_seed_files: set[str] = set()
    repaired: set[str] = set()
    for seed in seeds.SEEDS.values():
        path = paths.persona_file(agent_id, seed.id)
        if not path.exists():
            try:
                if not dry_run:
                    write_atomic(path, seed.text, overwrite=False)
            except FileExistsError:
                pass  # the operator's file appeared just now: it is theirs, import it
            else:
                new_seed_files.add(seed.id)
                continue
        if not repair:
            continue  # never overwrite an operator's file
        row = Persona.objects.filter(agent=agent, slug=seed.id).first() if agent else None
        try:
            current_bytes = path.read_bytes()
        except OSError:
            # A folder (or an unreadable file) where the seed should be: nothing to back up
            # or replace safely. The import below reports it as malformed and fails the run.
            continue
        current = current_bytes.decode("utf-8", errors="replace")
        wanted = _repaired_seed_text(seed, current, row)
        if wanted.encode("utf-8") == current_bytes:
            continue
        backup = _backup(path, timezone.now())
        report.backups.append(backup.name)
        repaired.add(seed.id)
        if not dry_run:
            # Copy first, then replace: the operator's text exists on disk at every moment.
            write_atomic(backup, current_bytes, overwrite=False)
            write_atomic(path, wanted)

    # Import every persona file, including ones the operator added by hand.
    stems: set[str] = set(new_seed_files) if dry_run else set()
    if folder.is_dir():
        for file in folder.glob("*.toml"):
            if is_valid_id(file.stem):
                stems.add(file.stem)
            else:
                report.skipped.append(file.name)
    for persona_id in sorted(stems):
        if dry_run:
            outcome: Outcome = (
                "created" if persona_id in new_seed_files else _preview(agent_id, agent, persona_id)
            )
            if persona_id in repaired and outcome != "created":
                outcome = "updated"
        else:
            assert agent is not None
            result = sync_persona(agent, persona_id)
            if result is None:
                continue  # removed while we were running
            outcome = result.outcome
        if outcome == "malformed":
            message = _malformed_message(agent_id, agent, persona_id, dry_run)
            report.malformed.append((persona_id, message))
        else:
            report.count(outcome)

    # active.txt names an existing persona, else hermes.
    named = _read_active(agent_id)
    report.active = seeds.choose_active(named, stems)
    if not dry_run and report.active is not None and named != report.active:
        write_atomic(paths.active_file(agent_id), report.active + "\n")
    return report


def _malformed_message(agent_id: str, agent: Agent | None, persona_id: str, dry_run: bool) -> str:
    if not dry_run and agent is not None:
        row = Persona.objects.filter(agent=agent, slug=persona_id).first()
        if row is not None and row.load_error:
            return row.load_error
    try:
        path = paths.persona_file(agent_id, persona_id)
        parse_persona_text(decode(path.read_bytes()), stem=persona_id)
    except PersonaMalformed as exc:
        return exc.message
    except OSError as exc:
        return _unreadable(exc)
    return "malformed"


def describe_os_error(exc: OSError) -> str:
    """An OSError as an operator reads it: the reason and the file relative to the data
    folder, never the absolute path that ``str(exc)`` would show."""
    reason = exc.strerror or type(exc).__name__
    if not exc.filename:
        return reason
    try:
        where = Path(os.fsdecode(exc.filename)).relative_to(settings.HAL0_DATA_DIR)
    except ValueError:
        return f"{reason} (a file outside the data folder)"
    return f"{reason}: {where.as_posix()}"


def _unreadable(exc: OSError) -> str:
    # strerror only ("Is a directory"): str(exc) would carry the absolute path.
    return f"the file cannot be read ({exc.strerror or type(exc).__name__})"
