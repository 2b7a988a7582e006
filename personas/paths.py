"""Where an agent's files live. Paths are built only from ids that passed ``is_valid_id``.

An id can never hold ``/``, ``..`` or upper case, so every path below stays inside
``settings.HAL0_DATA_DIR``; a bad id is a programming error here (callers answer 404
before they get this far).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from personas.ids import is_valid_id

ACTIVE_FILE = "active.txt"


def _checked(value: str) -> str:
    if not is_valid_id(value):
        raise ValueError("invalid id")
    return value


def agents_root() -> Path:
    return Path(settings.HAL0_DATA_DIR) / "agents"


def agent_dir(agent_id: str) -> Path:
    return agents_root() / _checked(agent_id)


def personas_dir(agent_id: str) -> Path:
    return agent_dir(agent_id) / "personas"


def persona_file(agent_id: str, persona_id: str) -> Path:
    return personas_dir(agent_id) / f"{_checked(persona_id)}.toml"


def active_file(agent_id: str) -> Path:
    return personas_dir(agent_id) / ACTIVE_FILE


def display_name(agent_id: str, persona_id: str) -> str:
    """The file as messages name it: relative to the data folder, never absolute."""
    return f"agents/{agent_id}/personas/{persona_id}.toml"


AGENT_FILE = "agent.toml"
PLATFORM_FILE = "platform.toml"


def agent_file(agent_id: str) -> Path:
    return agent_dir(agent_id) / AGENT_FILE


def platform_file() -> Path:
    return Path(settings.HAL0_DATA_DIR) / PLATFORM_FILE


def agent_display_name(agent_id: str) -> str:
    return f"agents/{agent_id}/{AGENT_FILE}"
