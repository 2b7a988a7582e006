"""Provisioning (``manage.py reprovision``): agents, their folders, the seed personas
and the import of every persona file."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import tomlkit
from django.conf import settings
from django.utils import timezone
from tomlkit.exceptions import TOMLKitError

from personas import paths, seeds
from personas.ids import is_valid_id
from personas.models import Agent, Persona
from personas.services.lookup import _read_active, _shown
from personas.services.scopes import agent_scope, ensure_agent_file, initial_agent_text, sync_scope
from personas.services.sync import Outcome, _settled, _unreadable, sync_persona
from personas.toml_store import (
    PersonaMalformed,
    budget_spec_from_persona,
    decode,
    parse_persona_text,
    render_budget,
    signature,
    write_atomic,
)


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
    agent_file_created: bool = False
    # agent.toml is malformed (the last good agent caps stay): the message.
    agent_file_malformed: str | None = None

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

    _provision_agent_file(agent_id, agent, report, repair=repair, dry_run=dry_run)

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
        else:
            assert agent is not None
            result = sync_persona(agent, persona_id)
            if result is None:
                continue  # removed while we were running
            outcome = result.outcome
        if persona_id in repaired and outcome == "unchanged":
            # The file was rewritten even when the row's fields come out the same (a broken
            # file brought back to its last good caps): the count says so, as --dry-run does.
            outcome = "updated"
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


def _provision_agent_file(
    agent_id: str, agent: Agent | None, report: ProvisionReport, *, repair: bool, dry_run: bool
) -> None:
    """``agent.toml``: created with an empty budget when missing, never overwritten; with
    ``repair`` a malformed one is backed up and rewritten carrying the last good caps (a
    repair never lifts a cap, and a parseable file is the operator's, left alone)."""
    path = paths.agent_file(agent_id)
    if agent is None:  # dry run for a new agent
        report.agent_file_created = not path.exists()
        return
    report.agent_file_created = ensure_agent_file(agent, dry_run=dry_run)
    if dry_run:
        return
    scope = agent_scope(agent_id)
    row = sync_scope(scope)
    if row.load_error and repair:
        current = path.read_bytes()
        text = render_budget(
            initial_agent_text(agent_id, agent.display_name or agent_id),
            budget_spec_from_persona(row),
            kind="agent",
        )
        backup = _backup(path, timezone.now())
        report.backups.append(backup.name)
        write_atomic(backup, current, overwrite=False)
        write_atomic(path, text)
        row = sync_scope(scope)
    report.agent_file_malformed = row.load_error or None


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
