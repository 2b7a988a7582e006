"""File -> row: bring a persona's row in line with its file, auditing hand edits.

The TOML file is the truth; the Persona row caches its last good parse plus the file's
stat signature. A malformed file keeps the last good caps and sets ``load_error``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from django.db import transaction
from django.utils import timezone

from personas import paths
from personas.models import Agent, BudgetChange, BudgetColumns, Persona
from personas.toml_store import (
    BudgetSpec,
    PersonaMalformed,
    budget_spec_from_persona,
    decode,
    jsonable,
    parse_persona_text,
    sha256_bytes,
    signature,
)

# Logged under the package's name (the log format shows it), whichever module writes.
log = logging.getLogger("personas.services")

FILE_EDIT_ACTOR = "file edit"
Outcome = Literal["created", "updated", "unchanged", "malformed"]


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


def _set_budget(row: BudgetColumns, spec: BudgetSpec) -> None:
    """Copy a budget block onto a row's budget columns (a persona, agent or platform)."""
    row.daily_cap_nanos = spec.daily_nanos
    row.monthly_cap_nanos = spec.monthly_nanos
    row.lifetime_cap_nanos = spec.lifetime_nanos
    row.per_call_cap_nanos = spec.per_call_nanos
    row.daily_cap_tokens = spec.daily_tokens
    row.monthly_cap_tokens = spec.monthly_tokens
    row.lifetime_cap_tokens = spec.lifetime_tokens
    row.per_call_cap_tokens = spec.per_call_tokens
    row.hard_cap = spec.hard_cap
    row.warn_at = spec.warn_at
    row.timezone = spec.timezone or ""
    row.paused = spec.paused
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
            agent_id=row.agent_id,
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


def _unreadable(exc: OSError) -> str:
    # strerror only ("Is a directory"): str(exc) would carry the absolute path.
    return f"the file cannot be read ({exc.strerror or type(exc).__name__})"
