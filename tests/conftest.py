"""Shared fixtures: every test gets its own data folder under tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, settings: Any) -> Path:
    """Point HAL0_DATA_DIR at a fresh folder so no test touches var/data."""
    path = tmp_path / "data"
    path.mkdir()
    settings.HAL0_DATA_DIR = path
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    is_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    for item in items:
        if item.get_closest_marker("requires_postgres") and not is_postgres:
            item.add_marker(pytest.mark.skip(reason="needs DATABASE_URL=postgres://..."))
