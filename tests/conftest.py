"""Shared fixtures: every test gets its own data folder under tmp_path."""

from __future__ import annotations

from collections.abc import Callable
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
