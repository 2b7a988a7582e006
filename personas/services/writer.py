"""Writes: ``write_budget``, the one function that writes a persona file, and the
parser of the budget bodies it is given."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from hal0.errors import ApiError, BadRequest, Conflict
from hal0.text import echoable
from personas import paths
from personas.models import BudgetChange, Persona
from personas.services.lookup import _persona_not_found, _shown, require_good_budget
from personas.services.sync import _apply_file, _set_budget, sync_persona
from personas.toml_store import (
    KNOWN_KEYS,
    BudgetInvalid,
    BudgetSpec,
    budget_spec_from_persona,
    decode,
    parse_budget_mapping,
    parse_persona_text,
    render_budget,
    sha256_bytes,
    sha256_text,
    signature,
    write_atomic,
)


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
                details={"key": echoable(str(key))},
            )
    try:
        return parse_budget_mapping(mapping)
    except BudgetInvalid as exc:
        raise BadRequest(
            exc.message,
            code="budget.invalid",
            details={"key": exc.key} if exc.key else {},
        ) from exc


def _write_failed(persona: Persona, exc: OSError) -> ApiError:
    shown = paths.display_name(persona.agent_id, persona.slug)
    reason = (exc.strerror or type(exc).__name__).lower()
    return ApiError(
        f"could not write {shown}: {reason}; nothing was changed",
        code="persona.write_failed",
        status_code=503,
        details={"file": shown},
    )


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
            try:
                write_atomic(path, new_text)
            except OSError as exc:
                # A full disk, a read-only mount: the old file is untouched (temp file and
                # rename) and the transaction rolls back, so caps, row and audit stay.
                raise _write_failed(row, exc) from exc
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
                persona=row,
                agent_id=row.agent_id,
                actor=actor[:200],
                via=via,
                before=before,
                after=after,
            )
    return row
