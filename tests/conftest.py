"""Shared fixtures: every test gets its own data folder under tmp_path."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, settings: Any) -> Path:
    """Point HAL0_DATA_DIR at a fresh folder so no test touches var/data."""
    path = tmp_path / "data"
    path.mkdir()
    settings.HAL0_DATA_DIR = path
    return path


@pytest.fixture(autouse=True)
def open_api_by_default(settings: Any) -> None:
    """Tests not about authentication call the API without a key (an open local setup).

    The authentication tests (tests/api/test_auth*.py) switch keys back on; the
    ``api_client`` and ``agent_client`` fixtures below carry real keys either way.
    """
    settings.HAL0_REQUIRE_API_KEY = False


@pytest.fixture(autouse=True)
def refused_tally_in_the_test(settings: Any) -> Iterator[None]:
    """The refused-check tally (budgets.reports.refused) without its background thread:
    written only when a page reads it; what one test counted never reaches the next."""
    from budgets.reports import refused

    settings.HAL0_REFUSED_FLUSH_S = 0
    refused.discard()
    yield
    refused.discard()


@pytest.fixture
def operator_key(db: None) -> str:
    """A fresh operator API key (the raw value, as a client sends it)."""
    from budgets.apikeys import create_key

    return create_key(scope="operator", name="tests")[1]


@pytest.fixture
def api_client(operator_key: str) -> APIClient:
    """A DRF test client that sends an operator key: may do everything."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {operator_key}")
    return client


@pytest.fixture
def agent_client(db: None) -> Callable[[str], APIClient]:
    """``agent_client("hermes")``: a client with a key scoped to that (existing) agent."""
    from budgets.apikeys import create_key

    def make(agent_id: str) -> APIClient:
        raw = create_key(scope="agent", agent_id=agent_id)[1]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client

    return make


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    is_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    for item in items:
        if item.get_closest_marker("requires_postgres") and not is_postgres:
            item.add_marker(pytest.mark.skip(reason="needs DATABASE_URL=postgres://..."))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Django drops the SQLite test database file but not its WAL and shared-memory files,
    # which a connection still open in another thread leaves behind in the temp folder.
    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    sqlite = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
    if sqlite and name and not Path(name).exists():
        for suffix in ("-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------
# Agents and personas (real files under the test's data folder, real rows)


@pytest.fixture
def agent(db: None, data_dir: Path) -> Any:
    """The agent "hermes", provisioned: its seed personas (hermes, coder) on disk and in
    the database, ``active.txt`` pointing at hermes."""
    from personas.models import Agent
    from personas.services import provision_agent

    provision_agent("hermes")
    return Agent.objects.get(id="hermes")


@pytest.fixture
def make_persona(db: None, data_dir: Path) -> Callable[..., Any]:
    """``make_persona(agent_id="hermes", persona_id="coder", budget_toml="daily_usd = 1.0\\n")``

    Writes ``agents/<agent_id>/personas/<persona_id>.toml`` with those ``[persona.budget]``
    lines (``budget_toml=None``: no budget table at all), creates the agent row if needed,
    and returns the synced Persona row. ``extra_toml`` is appended after the budget block.
    Overwriting an existing persona (e.g. the seeded coder) is setup, not an operator's
    edit: it leaves no ``BudgetChange`` behind.
    """
    from personas import paths
    from personas.models import Agent, BudgetChange
    from personas.services import resolve_persona
    from personas.toml_store import write_atomic

    def make(
        agent_id: str = "hermes",
        persona_id: str = "coder",
        budget_toml: str | None = "",
        *,
        display_name: str | None = None,
        summary: str = "A persona made by a test.",
        extra_toml: str = "",
    ) -> Any:
        agent, _ = Agent.objects.get_or_create(id=agent_id)
        lines = [
            "[persona]",
            f'id = "{persona_id}"',
            f'display_name = "{display_name or persona_id.capitalize()}"',
            f'summary = "{summary}"',
            "",
        ]
        if budget_toml is not None:
            lines += ["[persona.budget]", budget_toml.rstrip("\n"), ""]
        text = "\n".join(lines) + "\n" + extra_toml
        last_audit = BudgetChange.objects.order_by("-id").values_list("id", flat=True).first()
        write_atomic(paths.persona_file(agent_id, persona_id), text)
        persona = resolve_persona(agent, persona_id)
        BudgetChange.objects.filter(persona=persona, id__gt=last_audit or 0).delete()
        return persona

    return make


# ---------------------------------------------------------------------------------------
# A data folder on a disk that fills up


class DataDisk:
    """The test's data folder on a disk that ``fill()`` fills and ``free()`` frees.

    A real 1 MiB tmpfs mounted on the data folder when the tests may mount one (root, as
    in CI): every write that needs a new block fails with ENOSPC, exactly as on a full
    disk. Elsewhere the writes of the persona writer and the mirror are made to fail with
    ENOSPC at the write call (``kind == "simulated"``).
    """

    def __init__(self, path: Path, kind: str) -> None:
        self.path = path
        self.kind = kind
        self._patches = pytest.MonkeyPatch()
        self._filler = path / "filler"
        self.full = False

    def fill(self) -> None:
        if self.kind == "tmpfs":
            block = b"\0" * 4096
            fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            try:
                with pytest.raises(OSError, match="No space left"):
                    _write_forever(fd, block)
            finally:
                os.close(fd)
        else:
            self._patches.setattr(os, "write", _no_space)
            self._patches.setattr(os, "fsync", _no_space)
        self.full = True

    def free(self) -> None:
        if self.kind == "tmpfs":
            self._filler.unlink(missing_ok=True)
        else:
            self._patches.undo()
        self.full = False


def _write_forever(fd: int, block: bytes) -> None:
    while True:
        os.write(fd, block)


def _no_space(*args: Any, **kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _mount_tmpfs(path: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture
def data_disk(data_dir: Path) -> Iterator[DataDisk]:
    mounted = _mount_tmpfs(data_dir)
    disk = DataDisk(data_dir, "tmpfs" if mounted else "simulated")
    try:
        yield disk
    finally:
        disk.free()
        if mounted:
            subprocess.run(["umount", "--lazy", str(data_dir)], check=False)
