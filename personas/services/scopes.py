"""Agent and platform budgets: ``agents/<a>/agent.toml`` and ``platform.toml``.

The same rules as persona files: the file is the truth and the row (``Agent``,
``Platform``) caches its last good ``[agent.budget]`` / ``[platform.budget]`` with the
file's stat signature; a hand edit is picked up (and audited) when the signature moves; a
malformed file keeps the last good caps and sets ``load_error``; ``write_scope_budget`` is
the one function that writes these files (atomically, comments kept, audited).

Unlike a persona, a scope without a file exists: no file means no caps at that scope
(deleting the file lifts its caps on purpose, and that change is audited too).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from django.db import transaction
from django.utils import timezone

from hal0.errors import ApiError, BadRequest, Conflict
from personas import paths
from personas.models import Agent, BudgetChange, BudgetColumns, Platform
from personas.services.sync import FILE_EDIT_ACTOR, _set_budget, _unreadable
from personas.toml_store import (
    BudgetSpec,
    PersonaMalformed,
    budget_spec_from_persona,
    decode,
    parse_scope_text,
    render_budget,
    sha256_bytes,
    sha256_text,
    signature,
    write_atomic,
)

log = logging.getLogger("personas.services")

ScopeName = Literal["agent", "platform"]
# The signature a row keeps while its file does not exist.
NO_FILE = ""


@dataclass(frozen=True)
class ScopeFile:
    """Where one scope's budget lives and which row caches it."""

    kind: ScopeName
    agent_id: str | None = None

    @property
    def path(self) -> Path:
        if self.kind == "agent":
            assert self.agent_id is not None
            return paths.agent_file(self.agent_id)
        return paths.platform_file()

    @property
    def shown(self) -> str:
        """The file as messages name it: relative to the data folder."""
        if self.kind == "agent":
            assert self.agent_id is not None
            return paths.agent_display_name(self.agent_id)
        return paths.PLATFORM_FILE

    def locked_row(self) -> Agent | Platform:
        if self.kind == "agent":
            return Agent.objects.select_for_update().get(pk=self.agent_id)
        Platform.objects.get_or_create(pk=Platform.ID)
        return Platform.objects.select_for_update().get(pk=Platform.ID)

    def row(self) -> Agent | Platform | None:
        if self.kind == "agent":
            return Agent.objects.filter(pk=self.agent_id).first()
        return Platform.objects.filter(pk=Platform.ID).first()

    def audit(self, row: BudgetColumns, **fields: Any) -> None:
        if self.kind == "agent":
            BudgetChange.objects.create(scope="agent", agent_id=self.agent_id, **fields)
        else:
            BudgetChange.objects.create(scope="platform", **fields)


def agent_scope(agent_id: str) -> ScopeFile:
    return ScopeFile("agent", agent_id)


PLATFORM = ScopeFile("platform")


def file_signature(scope: ScopeFile) -> str:
    """The file's stat signature, :data:`NO_FILE` when there is none."""
    try:
        return signature(scope.path)
    except (FileNotFoundError, NotADirectoryError):
        return NO_FILE


def sync_scope(scope: ScopeFile, *, force: bool = False) -> Agent | Platform:
    """Bring the scope's row in line with its file (one ``os.stat`` when unchanged).

    The agent row must exist (``resolve_agent`` first); the platform row is created on
    first use.
    """
    sig = file_signature(scope)
    row = scope.row()
    if row is not None and row.file_signature == sig and not force:
        return row
    with transaction.atomic():
        # Locked: two requests that both saw the edit must not both apply (and audit) it.
        row = scope.locked_row()
        sig = file_signature(scope)
        if row.file_signature == sig and not force:
            return row
        if sig == NO_FILE:
            _apply(scope, row, BudgetSpec(), NO_FILE, "", display_name=None)
            return row
        try:
            data = scope.path.read_bytes()
        except OSError as exc:
            _mark_malformed(scope, row, _unreadable(exc), sig, "")
            return row
        sha = sha256_bytes(data)
        try:
            spec = parse_scope_text(decode(data), kind=scope.kind, agent_id=scope.agent_id)
        except PersonaMalformed as exc:
            _mark_malformed(scope, row, exc.message, sig, sha)
            return row
        _apply(scope, row, spec.budget, sig, sha, display_name=spec.display_name)
    return row


def _mark_malformed(scope: ScopeFile, row: BudgetColumns, message: str, sig: str, sha: str) -> None:
    # A malformed file never lifts a cap: the caps stay the last good ones.
    if row.load_error != message:
        log.warning("%s is malformed, last good caps stay: %s", scope.shown, message)
    row.load_error = message
    row.file_signature = sig
    row.content_sha256 = sha
    row.save(update_fields=["load_error", "file_signature", "content_sha256", "updated_at"])


def _apply(
    scope: ScopeFile,
    row: BudgetColumns,
    spec: BudgetSpec,
    sig: str,
    sha: str,
    *,
    display_name: str | None,
    actor: str = FILE_EDIT_ACTOR,
    via: str = BudgetChange.Via.FILE,
) -> None:
    """Store ``spec`` as the row's caps and audit a change of them."""
    before = budget_spec_from_persona(row).to_api()
    _set_budget(row, spec)
    if display_name and isinstance(row, Agent):
        row.display_name = display_name[:200]
    row.load_error = ""
    row.has_good_budget = True
    row.file_signature = sig
    row.content_sha256 = sha
    row.loaded_at = timezone.now()
    row.save()
    after = spec.to_api()
    # Unlike a persona's first import, a scope existed (uncapped) before its file did, so
    # a file that brings caps is a change like any other; one without caps changes nothing.
    if before != after:
        scope.audit(row, actor=actor[:200], via=via, before=before, after=after)
        if via == BudgetChange.Via.FILE:
            log.info("%s: caps changed by a hand edit", scope.shown)


def require_good_scope_budget(scope: ScopeFile, row: BudgetColumns) -> None:
    """400 ``budget.malformed`` while the scope's file cannot be parsed."""
    if row.load_error:
        raise BadRequest(
            f"{scope.shown} is malformed: {row.load_error}",
            code="budget.malformed",
            details={"scope": scope.kind, "agent_id": scope.agent_id},
        )


def initial_agent_text(agent_id: str, display_name: str) -> str:
    """A new ``agent.toml``: the agent's id and name, an empty budget (no caps)."""
    name = display_name.replace("\\", "\\\\").replace('"', '\\"')
    return (
        "# Agent-wide budget: caps over all of this agent's personas together.\n"
        "# Same keys as [persona.budget]; a missing cap is no cap.\n"
        "[agent]\n"
        f'id = "{agent_id}"\n'
        f'display_name = "{name}"\n'
        "\n"
        "[agent.budget]\n"
        "hard_cap = true\n"
    )


INITIAL_PLATFORM_TEXT = (
    "# Platform-wide budget: caps over every agent and persona together.\n"
    "# Same keys as [persona.budget]; a missing cap is no cap.\n"
    "[platform.budget]\n"
    "hard_cap = true\n"
)


def _write_failed(scope: ScopeFile, exc: OSError) -> ApiError:
    reason = (exc.strerror or type(exc).__name__).lower()
    return ApiError(
        f"could not write {scope.shown}: {reason}; nothing was changed",
        code="budget.write_failed",
        status_code=503,
        details={"file": scope.shown},
    )


def write_scope_budget(
    scope: ScopeFile,
    spec: BudgetSpec,
    *,
    actor: str,
    via: str,
    expected_sha256: str | None = None,
) -> Agent | Platform:
    """Set an agent's or the platform's budget block: the one writer of these files.

    Creates the file when missing; rewrites only the budget block otherwise (comments and
    other tables stay), atomically; updates the row; audits a change. 409
    ``budget.conflict`` when ``expected_sha256`` no longer matches the file.
    """
    # A hand edit not seen yet is taken in (and audited) first, in its own transaction.
    sync_scope(scope)
    with transaction.atomic():
        # Writers of one file must not interleave read-modify-write: the row lock
        # serializes them on PostgreSQL; on SQLite the IMMEDIATE transaction does.
        row = scope.locked_row()
        sig = file_signature(scope)
        text: str | None = None
        sha = ""
        if sig != NO_FILE:
            try:
                data = scope.path.read_bytes()
            except OSError as exc:
                # Unreadable (a folder in its place, no permission): sync_scope above
                # marked it malformed, which says why; anything else is a failed write.
                require_good_scope_budget(scope, row)
                raise _write_failed(scope, exc) from exc
            sha = sha256_bytes(data)
            text = decode(data)
        if expected_sha256 is not None and expected_sha256 != sha:
            raise Conflict(
                f"{scope.shown} changed since it was read; nothing was written",
                code="budget.conflict",
                details={"budget": budget_spec_from_persona(row).to_api(), "sha256": sha},
            )
        if text is None:
            if scope.kind == "agent":
                agent_id = scope.agent_id or ""
                name = row.display_name if isinstance(row, Agent) else ""
                text = initial_agent_text(agent_id, name or agent_id)
            else:
                text = INITIAL_PLATFORM_TEXT
        elif row.load_error:
            # Writing over a broken file would throw away what the operator meant.
            require_good_scope_budget(scope, row)
        new_text = render_budget(text, spec, kind=scope.kind)
        if new_text != text or sig == NO_FILE:
            try:
                write_atomic(scope.path, new_text)
            except OSError as exc:
                # A full disk, a read-only mount: the old file is untouched (temp file
                # and rename) and the transaction rolls back, so caps, row and audit stay.
                raise _write_failed(scope, exc) from exc
            sig = signature(scope.path)
            sha = sha256_text(new_text)
        written = parse_scope_text(new_text, kind=scope.kind, agent_id=scope.agent_id).budget
        _apply(scope, row, written, sig, sha, display_name=None, actor=actor, via=via)
    return row


def ensure_agent_file(agent: Agent, *, dry_run: bool = False) -> bool:
    """Create ``agent.toml`` with an empty budget when missing; never overwrite one.

    Returns whether it was (or, with ``dry_run``, would be) created.
    """
    path = paths.agent_file(agent.id)
    if path.exists():
        return False
    if dry_run:
        return True
    try:
        write_atomic(
            path, initial_agent_text(agent.id, agent.display_name or agent.id), overwrite=False
        )
    except FileExistsError:
        return False  # the operator's file appeared just now: it is theirs
    return True
