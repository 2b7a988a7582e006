"""Agents and personas: lookups, file sync, and the one writer of persona files.

The TOML file is the truth; the Persona row caches its last good parse plus the file's
stat signature, so a lookup costs one ``os.stat`` and one query while the file is
unchanged. ``write_budget`` is the only code that writes a persona file.

The modules: ``lookup`` (agents and personas by id, the hot path's one-query read),
``sync`` (file -> row, hand edits audited), ``writer`` (``write_budget``) and
``provision`` (what ``manage.py reprovision`` runs). Callers import from here.
"""

from __future__ import annotations

from personas.services.lookup import (
    active_persona_id,
    find_persona,
    hot_persona_query,
    hot_row_is_current,
    list_personas,
    lock_persona,
    persona_file_signature,
    persona_from_hot_row,
    persona_spec,
    require_good_budget,
    resolve_agent,
    resolve_persona,
)
from personas.services.provision import (
    InvalidAgentId,
    ProvisionReport,
    all_agent_ids,
    describe_os_error,
    misnamed_agent_folders,
    provision_agent,
)
from personas.services.sync import FILE_EDIT_ACTOR, Outcome, SyncResult, sync_persona
from personas.services.writer import parse_budget_body, write_budget
from personas.toml_store import budget_spec_from_persona

__all__ = [
    "FILE_EDIT_ACTOR",
    "InvalidAgentId",
    "Outcome",
    "ProvisionReport",
    "SyncResult",
    "active_persona_id",
    "all_agent_ids",
    "budget_spec_from_persona",
    "describe_os_error",
    "find_persona",
    "hot_persona_query",
    "hot_row_is_current",
    "list_personas",
    "lock_persona",
    "misnamed_agent_folders",
    "parse_budget_body",
    "persona_file_signature",
    "persona_from_hot_row",
    "persona_spec",
    "provision_agent",
    "require_good_budget",
    "resolve_agent",
    "resolve_persona",
    "sync_persona",
    "write_budget",
]
